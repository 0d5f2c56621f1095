from __future__ import annotations

import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from hyperpilot.tools.constraints import check_constraints, measure_deployment
from hyperpilot.tools.data import load_table, profile_table
from hyperpilot.tools.errors import DataError
from hyperpilot.tools.preprocess import build_pipeline
from hyperpilot.tools.types import Constraints, DataProfile, DataSteps, DeploymentFacts


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, DataProfile]:
    frame = load_table("sklearn:breast_cancer")
    return frame, profile_table(frame, "diagnosis")


def saved(pipeline: Pipeline, frame: pd.DataFrame, folder: Path) -> Path:
    pipeline.fit(frame.drop(columns=["diagnosis"]), frame["diagnosis"])
    joblib.dump(pipeline, folder / "model.joblib")
    return folder / "model.joblib"


def test_measured_facts_describe_the_saved_model(cancer, tmp_path) -> None:
    frame, profile = cancer
    pipe = build_pipeline(profile, LogisticRegression(max_iter=500), steps=DataSteps(max_features=3))
    path = saved(pipe, frame, tmp_path)
    rows = pd.concat([frame] * 3, ignore_index=True).drop(columns=["diagnosis"])

    started = time.perf_counter()
    facts = measure_deployment(pipe, rows, path, profile)
    seconds = time.perf_counter() - started

    assert seconds < 5
    assert facts.batch_rows == 1000  # capped, from 1,707 rows
    assert facts.model_mb == path.stat().st_size / 1_000_000
    assert facts.n_features == 3 and facts.features == pipe.named_steps["select"].selected_
    assert 0 < facts.latency_ms_per_row_batch < facts.latency_ms_single_row
    assert (facts.model, facts.interpretable) == ("LogisticRegression", True)


def test_limits_around_the_measured_values_pass_or_fail(cancer, tmp_path) -> None:
    frame, profile = cancer
    pipe = build_pipeline(profile, RandomForestClassifier(n_estimators=30, random_state=0))
    path = saved(pipe, frame, tmp_path)
    facts = measure_deployment(pipe, frame.drop(columns=["diagnosis"]), path, profile)
    latency, size = facts.latency_ms_per_row_batch, facts.model_mb

    loose = check_constraints(facts, Constraints(max_latency_ms=latency * 3, max_model_mb=size * 1.5,
                                                 max_features=facts.n_features))
    tight = check_constraints(facts, Constraints(max_latency_ms=latency / 3, max_model_mb=size / 1.5,
                                                 max_features=facts.n_features - 1,
                                                 interpretable=True))

    assert [(r.name, r.ok) for r in loose] == [
        ("max_latency_ms", True), ("max_model_mb", True), ("max_features", True)]
    assert [(r.name, r.ok) for r in tight] == [
        ("max_latency_ms", False), ("max_model_mb", False), ("max_features", False),
        ("interpretable", False)]
    assert "is within" in loose[0].line and "exceeds" in tight[0].line
    assert "single-row call" in loose[0].line and "ms/row (batch of" in loose[0].line
    assert tight[1].measured == size and "RandomForestClassifier" in tight[3].line


def test_unconstrained_tasks_get_no_results() -> None:
    facts = DeploymentFacts(latency_ms_per_row_batch=0.5, latency_ms_single_row=2.0, batch_rows=10,
                            model_mb=1.0, n_features=4, features=["a", "b", "c", "d"])

    assert check_constraints(facts, Constraints()) == []


def test_a_value_at_its_limit_passes_and_the_line_says_so() -> None:
    facts = DeploymentFacts(latency_ms_per_row_batch=1.0, latency_ms_single_row=2.0, batch_rows=10,
                            model_mb=5.0, n_features=10, features=[f"f{i}" for i in range(10)])
    results = check_constraints(facts, Constraints(max_latency_ms=1, max_model_mb=5, max_features=10))

    assert all(r.ok for r in results)
    assert [r.line for r in results] == [
        "predict latency 1 ms/row (batch of 10) is within the 1 ms limit; "
        "a single-row call takes 2 ms",
        "model file 5 MB is within the 5 MB limit",
        "the model uses 10 input features, within the 10-feature limit",
    ]


def test_missing_model_file_and_empty_rows_are_one_line_errors(cancer, tmp_path) -> None:
    frame, profile = cancer
    pipe = build_pipeline(profile, LogisticRegression(max_iter=500))
    path = saved(pipe, frame, tmp_path)

    with pytest.raises(DataError, match="no saved model at"):
        measure_deployment(pipe, frame, tmp_path / "absent.joblib", profile)
    with pytest.raises(DataError, match="no rows"):
        measure_deployment(pipe, frame.iloc[:0], path, profile)


class SleepyModel(BaseEstimator):
    """Takes ``seconds`` per ``predict`` call whatever the rows: a known latency."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds

    def fit(self, X: pd.DataFrame, y: pd.Series) -> SleepyModel:
        self.fitted_ = True
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        time.sleep(self.seconds)
        return np.zeros(len(X))


def test_latency_is_measured_right_and_a_slow_model_stays_within_the_budget(cancer, tmp_path) -> None:
    frame, profile = cancer
    pipe = Pipeline([("model", SleepyModel(0.05))])
    path = saved(pipe, frame, tmp_path)

    started = time.perf_counter()
    facts = measure_deployment(pipe, frame.head(200), path, profile, budget_s=0.4)

    assert time.perf_counter() - started < 1.2
    assert facts.latency_ms_single_row == pytest.approx(50, rel=0.5)
    assert facts.latency_ms_per_row_batch == pytest.approx(50 / 200, rel=0.5)
    assert facts.n_features == len(profile.features) and not facts.interpretable
