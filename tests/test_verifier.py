"""The verifier's checks are measured: they fail when the facts are bad."""

from __future__ import annotations

import joblib
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from hyperpilot.agents.request import RequestDraft
from hyperpilot.agents.verifier import (
    check_execution,
    check_implementation,
    check_request,
    review_rules,
)
from hyperpilot.tools.artifacts import save_frame, save_model
from hyperpilot.tools.data import load_table
from hyperpilot.tools.evaluate import score_pipeline
from hyperpilot.tools.types import TaskSpec, TrialRecord, TrialState

TASK = TaskSpec(text="t", task_type="multiclass", target="species", metric="accuracy",
                direction="maximize")


def _trial(score: float | None) -> TrialRecord:
    state = TrialState.COMPLETE if score is not None else TrialState.FAIL
    return TrialRecord(number=0, model="linear", config={}, state=state, score=score)


def test_request_check_names_what_is_wrong() -> None:
    assert check_request(RequestDraft(is_ml=True), [], TASK).status == "pass"
    failed = check_request(RequestDraft(is_ml=False), [], None)
    assert failed.status == "fail" and "does not ask to predict" in failed.reasons[0]
    failed = check_request(RequestDraft(is_ml=True), ["target 'x' not found"], None)
    assert failed.reasons == ["target 'x' not found"]


def test_execution_fails_below_the_baseline_and_on_leakage() -> None:
    good = check_execution(TASK, [_trial(0.9)], _trial(0.9), 0.9, 0.33, 0.33, {})
    assert good.status == "pass"
    weak = check_execution(TASK, [_trial(0.3)], _trial(0.3), 0.35, 0.33, 0.33, {})
    assert weak.status == "fail" and "no better than the trivial baseline" in weak.reasons[0]
    leaky = check_execution(TASK, [_trial(0.9)], _trial(0.9), 0.9, 0.33, 0.33, {"f": "copy"})
    assert leaky.status == "fail" and "'f' leaks the target" in leaky.reasons[0]
    broken = check_execution(TASK, [_trial(0.9)], _trial(0.9), 1.7, 0.33, 0.33, {})
    assert broken.status == "fail" and "not a finite accuracy" in broken.reasons[0]


@pytest.fixture()
def saved(tmp_path):
    frame = load_table("sklearn:iris")
    model = LogisticRegression(max_iter=500).fit(frame.drop(columns="species"), frame["species"])
    save_model(model, tmp_path / "model.joblib")
    save_frame(frame.iloc[::5], tmp_path / "holdout.parquet")
    rows = frame.iloc[::5]
    score = score_pipeline(model, rows.drop(columns="species"), rows["species"], "accuracy")
    return tmp_path, score


def test_implementation_check_reproduces_the_score_in_a_fresh_process(saved) -> None:
    folder, score = saved
    result, measured = check_implementation(folder / "model.joblib", folder / "holdout.parquet",
                                            TASK, score)
    assert result.status == "pass" and measured["rows"] == 30


def test_implementation_check_catches_a_swapped_or_broken_artifact(saved) -> None:
    folder, score = saved
    frame = pd.read_parquet(folder / "holdout.parquet")
    dummy = DummyClassifier().fit(frame.drop(columns="species"), frame["species"])
    joblib.dump(dummy, folder / "model.joblib")
    result, _ = check_implementation(folder / "model.joblib", folder / "holdout.parquet", TASK,
                                     score)
    assert result.status == "fail" and "not" in result.reasons[0]
    (folder / "model.joblib").write_bytes(b"not a model")
    result, _ = check_implementation(folder / "model.joblib", folder / "holdout.parquet", TASK,
                                     score)
    assert result.status == "fail" and "reloading the model failed" in result.reasons[0]


def test_rule_review_flags_measured_concerns() -> None:
    facts = {"cv_score": 0.95, "holdout_score": 0.80, "direction": "maximize", "failed_trials": 2,
             "holdout_rows": 30, "baseline": 0.94, "model": "svm", "metric": "accuracy"}
    concerns = " ".join(review_rules(facts).concerns)
    for phrase in ("worse than CV", "2 trial(s) failed", "only 30 rows", "only 0.0100"):
        assert phrase in concerns
