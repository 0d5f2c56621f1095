"""Successive halving: the pruner's rule, rebuilding it from stored trials, and CV by rungs."""

from __future__ import annotations

import numpy as np
import pytest

from hyperpilot.agents.tuner.agent import TrainingData, build_model_pipeline, run_trial
from hyperpilot.agents.tuner.halving import (
    FoldHalving,
    SuccessiveHalving,
    evaluate_with_halving,
    fold_pruner,
    rung_scores,
)
from hyperpilot.tools.data import load_table, profile_table
from hyperpilot.tools.errors import TrialFailed
from hyperpilot.tools.evaluate import make_folds
from hyperpilot.tools.types import Budget, Config, DataProfile, TaskSpec, TrialRecord, TrialState
from hyperpilot.tools.zoo import get_model

# --- the rule ---------------------------------------------------------------------------


def test_nothing_stops_before_a_rung_holds_min_trials() -> None:
    pruner = SuccessiveHalving("maximize", eta=3, min_trials=3)
    assert not pruner.report(0, 1, 0.9)
    assert not pruner.report(1, 1, 0.1)  # far worse, but only two scores at the rung
    assert pruner.report(2, 1, 0.2)  # three scores: only the best one goes on
    assert pruner.scores(1) == {0: 0.9, 1: 0.1, 2: 0.2}


def test_the_top_share_goes_on_and_the_rest_stops() -> None:
    pruner = SuccessiveHalving("maximize", eta=2, min_trials=1)
    for number, score in enumerate([0.5, 0.6, 0.7, 0.8, 0.9]):
        pruner.record(number, 1, score)
    verdict = pruner.judge(5, 1, 0.75)  # 6 scores, top 3 go on: 0.9, 0.8, 0.75
    assert not verdict.stop
    verdict = pruner.judge(6, 1, 0.55)
    assert verdict.stop and verdict.rung == 1 and verdict.score == 0.55
    assert "rung 1" in verdict.reason and "top 3 of 7" in verdict.reason
    assert not pruner.report(7, 1, 0.8)  # a tie with the bar goes on


def test_minimize_keeps_the_lowest_scores() -> None:
    pruner = SuccessiveHalving("minimize", eta=3, min_trials=3)
    for number, loss in enumerate([0.2, 0.3, 0.4]):
        pruner.record(number, 4, loss)
    assert not pruner.report(3, 4, 0.1)
    assert pruner.report(4, 4, 0.35)


def test_rungs_are_judged_apart() -> None:
    pruner = SuccessiveHalving("maximize", eta=3, min_trials=2)
    pruner.record(0, 1, 0.9)
    assert not pruner.report(1, 2, 0.1)  # nothing else reached rung 2 yet


@pytest.mark.parametrize(("kwargs", "match"), [({"direction": "up"}, "direction"),
                                               ({"eta": 1.0}, "eta"),
                                               ({"min_trials": 0}, "min_trials")])
def test_bad_settings_raise(kwargs: dict[str, object], match: str) -> None:
    settings: dict[str, object] = {"direction": "maximize"} | kwargs
    with pytest.raises(ValueError, match=match):
        SuccessiveHalving(**settings)  # type: ignore[arg-type]


def test_a_non_finite_score_is_refused() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        SuccessiveHalving("maximize").report(0, 1, float("nan"))


# --- fold fidelity ------------------------------------------------------------------------

def test_rung_scores_are_means_of_the_first_folds() -> None:
    assert rung_scores([0.2, 0.4, 0.9], (1, 2, 5)) == {1: 0.2, 2: pytest.approx(0.3)}


def test_a_pruner_is_rebuilt_from_complete_and_pruned_trials() -> None:
    history = [
        TrialRecord(number=0, model="m", config={}, state=TrialState.COMPLETE, score=0.5,
                    fold_scores=[0.6, 0.4, 0.5]),
        TrialRecord(number=1, model="m", config={}, state=TrialState.PRUNED,
                    fold_scores=[0.1]),
        TrialRecord(number=2, model="m", config={}, state=TrialState.FAIL,
                    fold_scores=[0.9, 0.9], error="boom"),
    ]
    pruner = fold_pruner(history, FoldHalving(rungs=(1, 2)), "maximize")
    assert pruner.scores(1) == {0: 0.6, 1: 0.1}
    assert pruner.scores(2) == {0: pytest.approx(0.5)}


Setting = tuple[TaskSpec, DataProfile, TrainingData]


@pytest.fixture(scope="module")
def digits() -> Setting:
    frame = load_table("sklearn:digits").iloc[:400]
    profile = profile_table(frame, "digit")
    task = TaskSpec(text="predict the digit", task_type="multiclass", target="digit",
                    metric="accuracy", direction="maximize", budget=Budget(trials=10))
    X, y = frame.drop(columns=["digit"]), frame["digit"]
    return task, profile, TrainingData(X, y, make_folds(y.to_numpy(), "multiclass", 5, 0))


def pipeline(config: Config, digits: Setting) -> object:
    task, profile, _ = digits
    return build_model_pipeline("linear", config, task, profile, seed=0)


GOOD: Config = {"C": 1.0, "class_weight": None}
BAD: Config = {"C": 1e-3, "class_weight": None}


def test_a_losing_config_stops_after_the_first_fold(digits: Setting) -> None:
    task, _, data = digits
    pruner = SuccessiveHalving("maximize", eta=3, min_trials=3)
    full = evaluate_with_halving(pipeline(GOOD, digits), data, task, 0, pruner, (1, 2))
    assert full.stopped is None and len(full.fold_scores) == 5
    for number, c in enumerate([0.5, 0.2], start=1):
        pruner.record(number, 1, c)  # two mediocre earlier trials at rung 1
    losing = evaluate_with_halving(pipeline(BAD, digits), data, task, 3, pruner, (1, 2))
    assert losing.stopped is not None and losing.stopped.rung == 1
    assert len(losing.fold_scores) == 1 and losing.stopped.score == losing.fold_scores[0]
    assert losing.fold_scores[0] < full.fold_scores[0]


def test_fold_numbers_in_a_failure_count_from_the_full_cv(digits: Setting) -> None:
    task, _, data = digits
    broken = TrainingData(data.X, data.y, [*data.folds[:2], (data.folds[2][0], np.array([10**6]))])
    with pytest.raises(TrialFailed, match="^fold 2:"):
        evaluate_with_halving(pipeline(GOOD, digits), broken, task, 0,
                              SuccessiveHalving("maximize"), (1, 2))


def test_run_trial_prunes_only_when_asked(digits: Setting) -> None:
    task, profile, data = digits
    space = get_model("linear").space("multiclass")
    settings = FoldHalving(eta=3, min_trials=3, rungs=(1, 2))
    history: list[TrialRecord] = []
    for config in (GOOD, {"C": 10.0, "class_weight": None}):  # two strong trials first
        history.append(run_trial("linear", space, [config], history, task, profile, data, 0,
                                 halving=settings))
    assert [r.state for r in history] == [TrialState.COMPLETE] * 2
    plain = run_trial("linear", space, [BAD], history, task, profile, data, 0)
    assert plain.state is TrialState.COMPLETE and len(plain.fold_scores) == 5
    pruned = run_trial("linear", space, [BAD], history, task, profile, data, 0, halving=settings)
    assert pruned.state is TrialState.PRUNED and pruned.score is None
    assert pruned.fold_scores == plain.fold_scores[:1]
    assert pruned.tuner["pruned_rung"] == 1 and pruned.error.startswith("pruned at rung 1")
    assert pruned.seconds < plain.seconds
