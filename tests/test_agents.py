"""The agents' two policies: rules without an LLM, and the LLM's answer checked against facts."""

from __future__ import annotations

import pandas as pd
import pytest

from hyperpilot.agents.data_agent import (
    choose_metric,
    choose_positive_class,
    choose_target,
    infer_target_rules,
    resolve_task_type,
)
from hyperpilot.agents.model_agent import RangeChange, SpaceDraft, choose_space, narrowed
from hyperpilot.agents.planner import allocate, eligible_families, make_plans
from hyperpilot.agents.request import RequestDraft, parse_request, parse_request_rules
from hyperpilot.agents.tuner.agent import next_family, warm_start
from hyperpilot.tools.data import load_table, profile_table
from hyperpilot.tools.errors import TaskSpecError
from hyperpilot.tools.space import FloatDim, SearchSpace
from hyperpilot.tools.types import Budget, Constraints, TaskSpec, TrialRecord, TrialState
from hyperpilot.tools.zoo import get_model

IRIS_COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)",
                "petal width (cm)", "species"]


@pytest.mark.parametrize("text, metric", [
    ("predict the species of iris flowers, optimise macro F1", "f1_macro"),
    ("classify churn, maximise balanced accuracy", "balanced_accuracy"),
    ("predict default with the best ROC AUC", "roc_auc"),
    ("estimate house prices; minimise RMSE", "rmse"),
    ("predict churn, optimise recall for the positive class", "recall"),
    ("predict y with the best r-squared", "r2"),
    ("predict the label", None),
])
def test_rules_find_the_metric(text: str, metric: str | None) -> None:
    assert parse_request_rules(text, ["y"]).metric == metric


def test_rules_find_the_target_near_the_cue_word() -> None:
    draft = parse_request_rules("predict the species of iris flowers from petal width",
                                IRIS_COLUMNS)
    assert draft.is_ml and draft.target == "species"
    assert parse_request_rules("predict the petal widths", IRIS_COLUMNS).target == \
        "petal width (cm)"


def test_rules_read_constraints_and_reject_non_ml_text() -> None:
    draft = parse_request_rules("predict churn, under 2 ms per row, at most 10 features, "
                                "interpretable", ["churn"])
    assert (draft.max_latency_ms, draft.max_features, draft.interpretable) == (2.0, 10, True)
    assert not parse_request_rules("write a poem about the sea", ["a"]).is_ml


def test_llm_request_is_used_when_it_names_a_real_column(scripted) -> None:
    llm, fake = scripted([{"is_ml": True, "target": "species", "metric": "accuracy"}])
    decision = parse_request("what kind of flower is it?", IRIS_COLUMNS, llm)
    assert decision.source == "llm" and decision.value.target == "species"
    assert "what kind of flower" in fake.calls[0][0][-1]["content"]


def test_llm_request_naming_a_missing_column_falls_back_to_rules(scripted) -> None:
    llm, _ = scripted([{"is_ml": True, "target": "colour"}])
    decision = parse_request("predict the species", IRIS_COLUMNS, llm)
    assert decision.source == "rules (fallback)" and "colour" in decision.note
    assert decision.value.target == "species"


def test_llm_saying_not_ml_while_naming_a_real_column_is_read_as_ml(scripted) -> None:
    llm, _ = scripted([{"is_ml": False, "target": "species", "metric": "accuracy"}])
    decision = parse_request("predict the species", IRIS_COLUMNS, llm)
    assert decision.source == "llm"
    assert decision.value.is_ml and decision.value.target == "species"


def test_invalid_llm_output_is_reasked_then_falls_back(scripted) -> None:
    llm, fake = scripted(["not json", "{\"target\": 3}", "still not json"])
    decision = parse_request("predict the species", IRIS_COLUMNS, llm)
    assert decision.source == "rules (fallback)" and len(fake.calls) == 3
    assert llm.usage.calls == 3


def test_target_inference_rules() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3, 4], "label": [0, 1, 0, 1], "b": [1, 1, 2, 2]})
    assert infer_target_rules(frame) == "label"
    assert infer_target_rules(frame.drop(columns="label")) == "b"


def test_llm_target_choice_is_checked(scripted) -> None:
    frame = pd.DataFrame({"x": range(20), "outcome_flag": [0, 1] * 10})
    draft = RequestDraft(is_ml=True)
    llm, _ = scripted([{"target": "outcome flag", "reason": "binary outcome"}])
    assert choose_target("guess", draft, frame, "f.csv", llm).value == "outcome_flag"
    llm, _ = scripted([{"target": "nothing"}])
    decision = choose_target("guess", draft, frame, "f.csv", llm)
    assert decision.source == "rules (fallback)" and decision.value == "outcome_flag"


def test_task_type_honours_the_text_only_when_the_data_allows() -> None:
    codes = pd.Series([0, 1, 2] * 10, name="grade")
    assert resolve_task_type("regression", codes) == "regression"
    assert resolve_task_type(None, codes) == "multiclass"
    with pytest.raises(TaskSpecError, match="not numeric"):
        resolve_task_type("regression", pd.Series(["a", "b"] * 10, name="kind"))


def test_metric_must_fit_the_task() -> None:
    profile = profile_table(load_table("sklearn:iris"), "species")
    assert choose_metric(None, profile) == "accuracy"
    with pytest.raises(TaskSpecError, match="does not fit a multiclass task"):
        choose_metric("rmse", profile)
    with pytest.raises(TaskSpecError, match="unknown metric"):
        choose_metric("happiness", profile)


def test_positive_class_defaults_to_the_minority() -> None:
    profile = profile_table(load_table("sklearn:breast_cancer"), "diagnosis")
    assert choose_positive_class(None, profile) == "malignant"
    assert choose_positive_class("Benign", profile) == "benign"


def _task(trials: int = 30, interpretable: bool = False, task_type: str = "multiclass") -> TaskSpec:
    return TaskSpec(text="t", task_type=task_type, target="species", metric="accuracy",
                    direction="maximize", budget=Budget(trials=trials),
                    constraints=Constraints(interpretable=interpretable))


def test_planner_rules_depend_on_data_size_and_constraints() -> None:
    small = profile_table(load_table("sklearn:iris"), "species")
    assert "torch_mlp" not in eligible_families(_task(), small)
    assert "torch_mlp" in eligible_families(_task(), small, cuda=True)
    assert eligible_families(_task(interpretable=True), small) == ["linear"]
    big = small.model_copy(update={"n_rows": 200_000})
    assert "svm" not in eligible_families(_task(), big)
    decision = make_plans(_task(trials=7), small, None)
    assert decision.source == "rules" and len(decision.value) == 1
    trials = decision.value[0].trials
    # two planned families, and one trial of the default forest that rides in every first plan
    assert sum(trials.values()) == 7 and len(trials) == 3 and trials["random_forest"] == 1


def test_allocation_sums_to_the_budget() -> None:
    assert allocate({"a": 3, "b": 1}, 8) == {"a": 6, "b": 2}
    assert sum(allocate({"a": 1, "b": 1, "c": 1}, 10).values()) == 10


def test_llm_plan_keeps_only_eligible_families(scripted) -> None:
    profile = profile_table(load_table("sklearn:iris"), "species")
    llm, _ = scripted([{"plans": [{"families": [{"name": "svm", "share": 2}, {"name": "xgboost"},
                                                {"name": "linear", "share": 1}],
                                   "rationale": "small"}]}])
    [plan] = make_plans(_task(trials=9), profile, llm).value
    assert plan.source == "llm" and plan.trials == {"svm": 6, "linear": 3}
    assert plan.rationale == "small"
    llm, _ = scripted([{"plans": [{"families": [{"name": "xgboost"}]}]}])
    decision = make_plans(_task(), profile, llm)
    assert decision.source == "rules (fallback)"
    assert {p.source for p in decision.value} == {"rules"}


def test_model_agent_narrowing_is_safe() -> None:
    space = SearchSpace(dims=[FloatDim(name="C", low=1e-3, high=1e3, log=True)])
    keep_default = narrowed(space, SpaceDraft(narrow=[RangeChange(name="C", low=0.1, high=100)]),
                            {"C": 1.0})
    assert (keep_default["C"].low, keep_default["C"].high) == (0.1, 100)
    excludes_default = narrowed(space, SpaceDraft(narrow=[RangeChange(name="C", low=5, high=50)]),
                                {"C": 1.0})
    assert excludes_default == space
    too_narrow = narrowed(space, SpaceDraft(narrow=[RangeChange(name="C", low=0.9, high=1.1)]),
                          {"C": 1.0})
    assert too_narrow == space


def test_model_agent_caps_knn_neighbours_by_rows() -> None:
    profile = profile_table(load_table("sklearn:iris").sample(30, random_state=0), "species")
    space = choose_space("knn", _task(), profile, n_train=20, llm=None).value
    assert space["n_neighbors"].high <= 15


def test_warm_start_repairs_llm_configs_and_keeps_the_defaults_first(scripted) -> None:
    profile = profile_table(load_table("sklearn:iris"), "species")
    space = get_model("linear").space("multiclass")
    strong = get_model("linear").strong_defaults("multiclass")
    llm, _ = scripted([{"configs": [{"C": 5000}, {"C": 1.0, "class_weight": None}, {"gamma": 1},
                                    {"C": 0.01, "class_weight": "balanced"}]}])
    configs = warm_start("linear", space, _task(), profile, llm, n=3).value
    proposed = [{"C": 1000.0, "class_weight": strong[0]["class_weight"]},
                {"C": 1.0, "class_weight": None}, {"C": 0.01, "class_weight": "balanced"}]
    start = [get_model("linear").defaults("multiclass")]
    start += [c for c in strong if c not in start]
    assert configs == start + [c for c in proposed if c not in start]


def test_log_loss_keeps_classes_unweighted_in_the_space_and_the_warm_start() -> None:
    profile = profile_table(load_table("sklearn:breast_cancer"), "diagnosis")
    loss = _task(task_type="binary").model_copy(update={"metric": "log_loss",
                                                       "direction": "minimize"})
    for family in ("hist_gb", "extra_trees", "lightgbm"):
        # hist_gb and extra_trees have a class-weighted first portfolio config
        weighted = get_model(family).strong_defaults("binary")
        assert any(c["class_weight"] == "balanced" for c in weighted)
        space = choose_space(family, loss, profile, 400, None).value
        configs = warm_start(family, space, loss, profile, None).value
        assert configs and all(c["class_weight"] is None for c in configs)
        assert configs[0] == get_model(family).defaults("binary")
        accuracy = choose_space(family, _task(task_type="binary"), profile, 400, None).value
        assert any(c["class_weight"] == "balanced"
                   for c in warm_start(family, accuracy, _task(task_type="binary"), profile,
                                       None).value)


def test_next_family_spreads_trials_by_share() -> None:
    def rec(n: int, model: str) -> TrialRecord:
        return TrialRecord(number=n, model=model, config={}, state=TrialState.COMPLETE, score=1)

    allocation = {"a": 2, "b": 1}
    assert next_family(allocation, []) == "a"
    assert next_family(allocation, [rec(0, "a")]) == "b"
    assert next_family(allocation, [rec(0, "a"), rec(1, "b")]) == "a"
    assert next_family(allocation, [rec(0, "a"), rec(1, "b"), rec(2, "a")]) is None
