"""Choosing and shipping the final model: ensembles, their limits, and a run that ends with one."""

from __future__ import annotations

import json
import time

import joblib
import numpy as np
import pandas as pd
import pytest

from hyperpilot.agents.tuner.agent import TrainingData
from hyperpilot.pipelines.graph.final_model import choose_final
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task
from hyperpilot.tools.ensemble import WeightedEnsemble
from hyperpilot.tools.types import Constraints, TaskSpec, TrialRecord, TrialState


def _setting(constraints: Constraints | None = None):
    y = pd.Series(np.linspace(0.0, 10.0, 40))
    data = TrainingData(X=pd.DataFrame({"x": np.arange(40.0)}), y=y,
                        folds=[(np.setdiff1d(np.arange(40), t), t)
                               for t in [np.arange(i, 40, 4) for i in range(4)]])
    task = TaskSpec(text="t", task_type="regression", target="y", metric="rmse",
                    direction="minimize", constraints=constraints or Constraints())
    trials = [TrialRecord(number=i, model=m, config={}, state=TrialState.COMPLETE, score=s,
                          seconds=30.0, plan_id="p") for i, (m, s) in
              enumerate([("linear", 1.0), ("knn", 2.0)])]
    arrays = {0: y.to_numpy() + 1.0, 1: y.to_numpy() - 2.0}
    return trials, task, data, lambda plan, number: arrays[number]


def test_the_ensemble_is_chosen_when_it_beats_the_best_trial() -> None:
    trials, task, data, oof = _setting()
    choice = choose_final(trials, trials[0], task, data, oof, None)
    assert choice.kind == "ensemble" and [m.weight for m in choice.members] == [2, 1]
    assert choice.cv_score == pytest.approx(0.0, abs=1e-12)


def test_the_ensemble_is_dropped_when_its_refit_would_pass_the_deadline() -> None:
    trials, task, data, oof = _setting()
    choice = choose_final(trials, trials[0], task, data, oof, time.time() + 5)
    assert choice.kind == "single" and choice.members[0].trial == 0
    assert "time limit" in choice.notes[0]


def test_time_ordered_folds_still_get_an_ensemble_and_a_threshold() -> None:
    """The earliest rows are never tested in time order; their NaN OOF rows are left out."""
    from hyperpilot.tools.evaluate import make_folds

    trials, task, data, _ = _setting()
    folds = make_folds(data.y.to_numpy(), "regression", 4, 0, time_ordered=True)
    data = TrainingData(X=data.X, y=data.y, folds=folds)
    untested = np.setdiff1d(np.arange(40), np.concatenate([t for _, t in folds]))
    assert len(untested) > 0
    arrays = {0: data.y.to_numpy() + 1.0, 1: data.y.to_numpy() - 2.0}
    for array in arrays.values():
        array[untested] = np.nan
    choice = choose_final(trials, trials[0], task, data, lambda plan, n: arrays[n], None)
    assert choice.kind == "ensemble" and [m.weight for m in choice.members] == [2, 1]
    # a binary task in time order: the threshold is tuned on the tested rows alone
    y = pd.Series(np.where(np.arange(40) % 3 == 0, "yes", "no"))
    binary = TrainingData(X=data.X, y=y, folds=folds)
    proba = np.column_stack([np.full(40, 0.6), np.full(40, 0.4)])
    proba[y.to_numpy() == "yes"] = [0.6, 0.4]  # "no" wins every row at 0.5: F1 of "yes" is 0
    proba[y.to_numpy() == "no"] = [0.7, 0.3]
    proba[untested] = np.nan
    f1 = task.model_copy(update={"task_type": "binary", "metric": "f1", "direction": "maximize",
                                 "positive_class": "yes"})
    record = trials[0].model_copy(update={"score": 0.0})
    chosen = choose_final([record], record, f1, binary, lambda plan, n: proba, None)
    assert chosen.threshold is not None and 0.3 < chosen.threshold <= 0.4
    assert chosen.cv_score == pytest.approx(1.0)


def test_no_ensemble_for_an_interpretable_task() -> None:
    trials, task, data, oof = _setting(Constraints(interpretable=True))
    choice = choose_final(trials, trials[0], task, data, oof, None)
    assert choice.kind == "single" and "interpretable" in choice.notes[0]


def test_a_run_ends_with_a_verified_ensemble(tmp_path) -> None:
    out = tmp_path / "run"
    state = run_task("predict the species of iris flowers, optimise log loss", "sklearn:iris",
                     out, RunOptions(llm="none", trials=6, seed=0))
    assert state["status"] == "ok"
    result = json.loads((out / "result.json").read_text())
    final = result["final_model"]
    assert final["kind"] == "ensemble" and len(final["members"]) >= 2
    assert final["cv_score"] < result["best"]["cv_score"]  # log loss: lower is better
    model = joblib.load(out / "model.joblib")
    assert isinstance(model, WeightedEnsemble)
    assert result["verification"]["implementation"] == "pass"
    holdout = pd.read_parquet(out / "holdout.parquet")
    from sklearn.metrics import log_loss

    # The saved ensemble was refit on the holdout rows too, after they scored it: it must
    # reproduce its own score on them, and report that it saw every row.
    shipped = result["shipped"]
    assert shipped["holdout_included"] and shipped["rows"] == 150
    proba = model.predict_proba(holdout.drop(columns=["species"]))
    assert log_loss(holdout["species"], proba, labels=model.classes_) == pytest.approx(
        shipped["holdout_score"], abs=1e-12)
    assert shipped["holdout_score"] < result["holdout"]["score"]  # it has seen those rows
    report = (out / "report.md").read_text()
    assert "greedy ensemble" in report and "refit on all 150 rows" in report
    assert len(list((out / "oof").glob("*.npy"))) == state_trials_complete(state)


def test_without_refit_all_the_saved_model_is_the_one_the_holdout_scored(tmp_path) -> None:
    out = tmp_path / "run"
    state = run_task("predict the species of iris flowers, optimise log loss", "sklearn:iris",
                     out, RunOptions(llm="none", trials=6, seed=0, refit_all=False))
    assert state["status"] == "ok"
    result = json.loads((out / "result.json").read_text())
    assert result["shipped"] == {"rows": 120, "holdout_included": False,
                                 "note": "fitted on the training rows only (--no-refit-all)"}
    model = joblib.load(out / "model.joblib")
    holdout = pd.read_parquet(out / "holdout.parquet")
    from sklearn.metrics import log_loss

    proba = model.predict_proba(holdout.drop(columns=["species"]))
    assert log_loss(holdout["species"], proba, labels=model.classes_) == pytest.approx(
        result["holdout"]["score"], abs=1e-12)


def state_trials_complete(state: dict) -> int:
    return sum(t["state"] == "COMPLETE" for t in state["trials"])


def test_the_refit_on_every_row_may_use_the_verification_time_measuring_showed_spare() -> None:
    from hyperpilot.pipelines.graph.finish import VERIFY_RESERVE_SECONDS, refit_deadline

    # measuring took 1 s: verifying takes about 3 s (the floor), not the 8 s reserved
    assert refit_deadline(100.0, 1.0) == pytest.approx(100.0 + VERIFY_RESERVE_SECONDS - 3.0)
    assert refit_deadline(100.0, 2.5) == pytest.approx(100.0 + VERIFY_RESERVE_SECONDS - 5.0)
    assert refit_deadline(100.0, 30.0) == 100.0  # never earlier than the reserve allowed
    assert refit_deadline(None, 1.0) is None
