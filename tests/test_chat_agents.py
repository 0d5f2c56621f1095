"""The intent and explain agents: rule-based routing, and answers held to the run's facts."""

from __future__ import annotations

import pytest

from hyperpilot.agents.explain import explain, explain_rules, fill
from hyperpilot.agents.intent import Intent, route, route_rules

COLUMNS = ["id", "tenure", "spend", "left"]


@pytest.mark.parametrize("text, has_spec, has_run, asking, expected", [
    ("I want to know who leaves", False, False, None, Intent(kind="task")),
    ("the left column", False, False, "target", Intent(kind="task", column="left")),
    ("go", True, False, None, Intent(kind="run")),
    ("no, optimise recall instead", True, False, None, Intent(kind="correct")),
    ("give gradient boosting 20 more trials", True, True, None,
     Intent(kind="more", trials=20, family="hist_gb")),
    ("try without the id column", True, True, None, Intent(kind="drop", column="id")),
    ("please predict data/new.csv", True, True, None, Intent(kind="predict", path="data/new.csv")),
    ("which features matter?", True, True, None,
     Intent(kind="explain", question="which features matter?")),
    ("what's the status", True, False, None, Intent(kind="status")),
    ("bye", False, False, None, Intent(kind="quit")),
])
def test_rules_route_what_people_say(text, has_spec, has_run, asking, expected) -> None:
    assert route_rules(text, COLUMNS, has_spec, has_run, asking) == expected


def test_an_llm_intent_naming_no_real_column_falls_back_to_the_rules(scripted) -> None:
    llm, _ = scripted([("Intent", {"kind": "drop", "column": "colour"})])
    decision = route("try without the id column", COLUMNS, True, True, None, llm)
    assert decision.source == "rules (fallback)" and decision.value.column == "id"


FACTS = {"best_model": "svm", "metric": "recall", "cv_score": 0.8123456, "cv_std": 0.05,
         "holdout_score": 0.79, "holdout_rows": 40, "baseline": 0.5, "best_trial": 3,
         "best_config": "{}", "runner_up": "linear", "runner_up_cv": 0.7,
         "verification": "request pass", "trials": 9, "failed_trials": 0,
         "families": "svm x6; linear x3", "stop_reason": "all done", "dropped": "",
         "importance": "tenure 0.2000 ± 0.0100"}


def test_answers_cite_facts_by_name_and_never_state_numbers() -> None:
    assert fill("{best_model} reached {cv_score}", FACTS) == "svm reached 0.8123"
    with pytest.raises(ValueError, match="do not exist"):
        fill("{best_model} beat {magic}", FACTS)
    with pytest.raises(ValueError, match="states a number"):
        fill("{best_model} reached 0.99", FACTS)


def test_an_invented_number_is_replaced_by_the_rule_based_answer(scripted) -> None:
    llm, _ = scripted([("Answer", {"text": "svm won with 0.97"})])
    decision = explain("why did svm win?", FACTS, llm)
    assert decision.source == "rules (fallback)" and "0.8123" in decision.value
    assert "0.97" not in decision.value


def test_the_rules_answer_the_part_asked_about() -> None:
    assert explain_rules("which features matter?", FACTS).startswith("Permutation importance")
    full = explain_rules("", FACTS)
    assert all(word in full for word in ("won", "holdout", "9 trials", "Permutation"))
