"""Several plans: the planner's k plans, successive halving between them, revisions after
failed checks, and measured constraints, as a user of ``hyperpilot run`` sees them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hyperpilot.agents.planner import (
    affordable_plans,
    halving_stages,
    make_plans,
    plan_capacity,
    plans_rules,
)
from hyperpilot.pipelines.cli import main
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task
from hyperpilot.tools.data import load_table, profile_table
from hyperpilot.tools.types import Budget, Constraints, TaskSpec
from hyperpilot.tools.zoo import ZOO


def _task(trials: int = 30, **constraints: object) -> TaskSpec:
    return TaskSpec(text="predict the class", task_type="multiclass", target="cultivar",
                    metric="accuracy", direction="maximize", budget=Budget(trials=trials),
                    constraints=Constraints(**constraints))


@pytest.mark.parametrize("budget,k", [(30, 3), (12, 2), (7, 1), (100, 5), (40, 4)])
def test_halving_spends_the_budget_and_halves_the_plans(budget: int, k: int) -> None:
    stages = halving_stages(budget, k)
    kept = [n for n, _ in stages]
    assert kept[0] == k and kept[-1] == 1 and kept == sorted(kept, reverse=True)
    assert budget - k < sum(n * t for n, t in stages) <= budget
    assert plan_capacity(budget, k) == sum(t for _, t in stages)


def test_small_budgets_run_fewer_plans() -> None:
    assert affordable_plans(30, 3) == 3
    assert affordable_plans(12, 3) == 2
    assert affordable_plans(5, 3) == 1


def test_rule_plans_differ_and_cite_what_they_used() -> None:
    frame = load_table("sklearn:wine")
    profile = profile_table(frame, "cultivar")
    plans = plans_rules(_task(), profile, k=3)
    assert [p.id for p in plans] == ["plan-1", "plan-2", "plan-3"]
    shapes = {(tuple(sorted(p.trials)), tuple(sorted(p.steps.items()))) for p in plans}
    assert len(shapes) == 3
    assert all(p.sources for p in plans)
    assert all(sum(p.trials.values()) == plan_capacity(30, 3) for p in plans)


def test_a_numeric_scaling_plan_holds_only_families_that_scale() -> None:
    """A quantile map is a no-op for tree families: their plan would repeat the first one's."""
    profile = profile_table(load_table("sklearn:wine"), "cultivar")
    quantile = [p for p in plans_rules(_task(), profile, k=5) if p.steps.get("numeric")]
    assert quantile and all(ZOO[name].scale for p in quantile for name in p.trials)


def test_a_feature_limit_reaches_every_plan() -> None:
    profile = profile_table(load_table("sklearn:wine"), "cultivar")
    plans = plans_rules(_task(max_features=4), profile, k=3)
    assert all(p.steps.get("max_features") == 4 for p in plans)


def test_llm_plans_are_checked_and_topped_up_by_rules(scripted) -> None:
    profile = profile_table(load_table("sklearn:wine"), "cultivar")
    llm, fake = scripted([{"plans": [
        {"families": [{"name": "svm", "share": 2}, {"name": "xgboost"}],
         "steps": {"numeric": "quantile", "max_features": 999}, "cites": ["nonexistent"]},
        {"families": [{"name": "made_up"}]},
    ]}])
    decision = make_plans(_task(), profile, llm, k=3)
    plans = decision.value
    assert decision.source == "llm" and len(plans) == 3
    # the LLM's plan is taken as written; the forest rides in rule-based first plans
    assert plans[0].trials == {"svm": plan_capacity(30, 3)}
    assert plans[0].steps == {"numeric": "quantile"} and plans[0].sources == []
    assert {p.source for p in plans[1:]} == {"rules"}
    assert [p.id for p in plans] == ["plan-1", "plan-2", "plan-3"]


def test_the_first_plan_always_holds_the_default_forest_unless_a_constraint_rules_it_out() -> None:
    profile = profile_table(load_table("sklearn:wine"), "cultivar")
    for plan in [plans_rules(_task(), profile, k=3)[0],
                 plans_rules(_task(), profile, k=3, excluded=("svm", "linear", "knn"))[0]]:
        assert "random_forest" in plan.trials and sum(plan.trials.values()) == plan_capacity(30, 3)
    assert all("random_forest" not in p.trials
               for p in plans_rules(_task(interpretable=True), profile, k=3))
    assert all("random_forest" not in p.trials
               for p in plans_rules(_task(), profile, k=3, excluded=("random_forest",)))


def test_boosting_leads_the_plan_on_large_categorical_data() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60_000), "b": rng.choice(list("xyzw"), 60_000),
                          "c": rng.choice(list("pq"), 60_000)})
    frame["y"] = np.where(frame["a"] > 0, "up", "down")
    profile = profile_table(frame, "y")
    task = _task().model_copy(update={"target": "y", "task_type": "binary"})
    first = plans_rules(task, profile, k=3)[0]
    assert {"lightgbm", "hist_gb"} <= set(first.trials)
    assert first.trials["lightgbm"] >= max(v for n, v in first.trials.items() if n != "lightgbm")


def test_three_plans_run_side_by_side_and_the_best_gets_more(tmp_path: Path) -> None:
    out = tmp_path / "wine"
    assert main(["run", "predict the wine cultivar, optimise accuracy", "--data", "sklearn:wine",
                 "--out", str(out), "--llm", "none", "--trials", "18", "--plans", "3",
                 "--no-experience"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert [p["id"] for p in result["plans"]] == ["plan-1", "plan-2", "plan-3"]
    assert all({"id", "cites", "models", "best_cv"} <= set(p) for p in result["plans"])
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 18 and len({t["number"] for t in trials}) == 18
    per_plan = {p["id"]: p["trials"] for p in result["plans"]}
    winner = result["plan"]["id"]
    assert per_plan[winner] == max(per_plan.values()) and sorted(per_plan.values())[0] == 2
    assert result["revisions"] == [] and result["status"] == "ok"
    report = (out / "report.md").read_text()
    assert "## The plans" in report and "Successive halving across plans" in report


def _leaky_churn(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """Weak real signal, plus a column that copies the target with 3% of it flipped: the
    screen before tuning (near-perfect single features only) lets it through."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 4))
    churn = (X[:, 0] + 0.8 * X[:, 1] + rng.normal(scale=1.5, size=rows) > 0).astype(int)
    refund = np.where(rng.random(rows) < 0.03, 1 - churn, churn)
    return pd.DataFrame({"tenure": X[:, 0], "calls": X[:, 1], "age": X[:, 2], "spend": X[:, 3],
                         "refund_issued": refund, "churn": churn})


def test_an_injected_leak_is_caught_and_the_plan_revised(tmp_path: Path) -> None:
    frame = _leaky_churn()
    state = run_task("predict churn, optimise accuracy", "churn table", tmp_path / "run",
                     RunOptions(llm="none", trials=6, experience=None), frame=frame)
    assert "refund_issued" not in state["profile"]["features"]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert len(result["revisions"]) == 1
    assert "refund_issued" in result["revisions"][0]["reason"]
    assert "dropped refund_issued" in result["revisions"][0]["changed"]
    assert result["status"] == "ok" and "refund_issued" in result["dropped"]
    assert [p["id"] for p in result["plans"]] == ["plan-1", "rev1-plan-1"]
    assert "## Revisions" in (tmp_path / "run" / "report.md").read_text()


def test_a_feature_limit_is_met_and_measured(tmp_path: Path) -> None:
    state = run_task("predict the cultivar with at most 3 features, optimise accuracy", "sklearn:wine",
                     tmp_path / "run",
                     RunOptions(llm="none", trials=6, experience=None))
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["task"]["constraints"]["max_features"] == 3
    assert result["deployment"]["n_features"] <= 3 and state["status"] == "ok"
    assert any(r.startswith("feature limit 3") for r in result["verification"]["reasons"]["request"])
    assert any(c["name"] == "max_features" and c["ok"]
               for c in result["deployment"]["constraints"])


def test_an_impossible_latency_says_why_no_model_met_it(tmp_path: Path) -> None:
    state = run_task("predict the cultivar in under 0.000001 ms per row, optimise accuracy",
                     "sklearn:wine", tmp_path / "run",
                     RunOptions(llm="none", trials=4, experience=None, revisions=1))
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert state["status"] == "failed" and result["verification"]["execution"] == "fail"
    assert len(result["revisions"]) == 1 and "ruled out" in result["revisions"][0]["changed"]
    assert any("constraint not met" in r for r in result["verification"]["reasons"]["execution"])
    assert "## Revisions" in (tmp_path / "run" / "report.md").read_text()
