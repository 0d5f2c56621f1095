from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from threadpoolctl import threadpool_limits

from hyperpilot.tools.errors import TaskSpecError
from hyperpilot.tools.preprocess import build_pipeline
from hyperpilot.tools.types import ColumnProfile, DataProfile, TaskType
from hyperpilot.tools.zoo import ZOO, get_model, models_for


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # OpenMP thread teams only add waiting on data this small, worst on a busy machine.
    with threadpool_limits(limits=1):
        yield


CASES = [(name, task) for name, entry in ZOO.items() for task in entry.task_types]


def make_data(task: TaskType) -> tuple[pd.DataFrame, pd.Series, DataProfile]:
    if task == "regression":
        frame = load_diabetes(as_frame=True).frame.sample(80, random_state=0)
    else:
        frame = load_iris(as_frame=True).frame
        if task == "binary":
            frame = frame[frame["target"] > 0].assign(
                target=lambda f: f["target"].map({1: "versicolor", 2: "virginica"}))
        frame = frame.groupby("target").head(20)
    features = [c for c in frame.columns if c != "target"]
    profile = DataProfile(
        n_rows=len(frame), n_columns=frame.shape[1], target="target", task_type=task,
        features=features,
        columns=[ColumnProfile(name=c, dtype="float64", kind="numeric", missing_fraction=0.0,
                               n_unique=int(frame[c].nunique())) for c in features],
    )
    return frame, frame["target"], profile


def leaf_params(estimator: object) -> dict[str, object]:
    params = estimator.get_params(deep=True)  # type: ignore[attr-defined]
    return {k: v for k, v in params.items() if not hasattr(v, "get_params")}


@pytest.mark.parametrize(("name", "task"), CASES)
def test_defaults_are_inside_the_space(name: str, task: TaskType) -> None:
    entry = get_model(name)

    assert entry.space(task).contains(entry.defaults(task))


@pytest.mark.parametrize(("name", "task"), CASES)
def test_random_configs_build_and_fit(name: str, task: TaskType) -> None:
    entry = get_model(name)
    X, y, profile = make_data(task)
    rng = np.random.default_rng(0)
    for config in [entry.defaults(task), entry.space(task).sample(rng)]:
        estimator = entry.build(task, config, seed=0, needs_proba=task != "regression")
        pipe = build_pipeline(profile, estimator, scale=entry.scale)

        pipe.fit(X, y)

        assert pipe.predict(X).shape == (len(X),)
        if task != "regression":
            assert pipe.predict_proba(X).shape == (len(X), y.nunique())
        assert leaf_params(clone(estimator)) == leaf_params(estimator)


@pytest.mark.parametrize(("name", "classifier", "regressor"), [
    ("random_forest", RandomForestClassifier, RandomForestRegressor),
    ("extra_trees", ExtraTreesClassifier, ExtraTreesRegressor),
])
def test_forest_defaults_are_scikit_learns(name: str, classifier: type, regressor: type) -> None:
    entry = get_model(name)
    for task, reference in [("binary", classifier()), ("regression", regressor())]:
        params = entry.build(task, entry.defaults(task), seed=3).get_params()

        assert params == {**reference.get_params(), "random_state": 3, "n_jobs": 1}


def test_svm_gives_probabilities_only_when_asked() -> None:
    X, y, profile = make_data("binary")
    entry = get_model("svm")
    plain = build_pipeline(profile, entry.build("binary", {}, seed=0)).fit(X, y)
    calibrated = build_pipeline(profile, entry.build("binary", {}, seed=0, needs_proba=True))

    assert not hasattr(plain, "predict_proba")
    assert calibrated.fit(X, y).predict_proba(X).shape == (len(X), 2)


def test_build_fills_missing_keys_with_defaults_and_rejects_unknown_ones() -> None:
    entry = get_model("hist_gb")
    model = entry.build("regression", {"learning_rate": 0.05}, seed=1)

    assert model.get_params()["learning_rate"] == 0.05
    assert model.get_params()["max_iter"] == 100
    assert model.get_params()["early_stopping"] is False
    with pytest.raises(TaskSpecError, match="hist_gb"):
        entry.build("regression", {"n_trees": 5}, seed=1)


def test_unknown_model_names_the_choices() -> None:
    with pytest.raises(TaskSpecError, match="unknown model 'xgboost'.*hist_gb"):
        get_model("xgboost")


def test_models_for_each_task() -> None:
    expected = {"linear", "random_forest", "extra_trees", "hist_gb", "lightgbm", "svm", "knn",
                "torch_mlp"}
    for task in ("binary", "multiclass", "regression"):
        assert set(models_for(task)) == expected


def test_every_entry_describes_itself() -> None:
    for entry in ZOO.values():
        assert entry.summary and "\n" not in entry.summary
        assert entry.cost in ("low", "medium", "high")
        assert entry.max_rows is None or entry.max_rows > 1000


@pytest.mark.parametrize(("task", "cls"), [("binary", LGBMClassifier), ("regression", LGBMRegressor)])
def test_lightgbm_defaults_are_lightgbms_own(task: TaskType, cls: type) -> None:
    built = get_model("lightgbm").build(task, {}, seed=0)
    ours, theirs = built.get_params(), cls().get_params()
    for name in ("n_estimators", "num_leaves", "learning_rate", "min_child_samples",
                 "subsample", "colsample_bytree", "subsample_freq", "class_weight"):
        assert ours[name] == theirs[name], name
    assert ours["reg_alpha"] <= 1e-4 and ours["reg_lambda"] <= 1e-4
    assert ours["n_jobs"] == 1 and ours["verbose"] == -1
    # LightGBM's own 255 histogram bins by default; the search may refine them
    assert ours["max_bin"] == 255
    bins = next(d for d in get_model("lightgbm").space(task).dims if d.name == "max_bin")
    assert bins.low < 255 < 1000 <= bins.high
    assert get_model("lightgbm").build(task, {"max_bin": 1023}, seed=0).get_params()["max_bin"] == 1023


def test_lightgbm_is_deterministic_and_samples_rows_when_asked() -> None:
    X, y, profile = make_data("binary")
    config = {"subsample": 0.7, "colsample_bytree": 0.5, "n_estimators": 30,
              "min_child_samples": 3, "class_weight": "balanced"}
    fits = [build_pipeline(profile, get_model("lightgbm").build("binary", config, seed=3))
            .fit(X, y) for _ in range(2)]
    assert fits[0].named_steps["model"].get_params()["subsample_freq"] == 1
    first, second = (f.predict_proba(X) for f in fits)
    np.testing.assert_array_equal(first, second)
    assert (fits[0].predict(X) == y).mean() > 0.8
