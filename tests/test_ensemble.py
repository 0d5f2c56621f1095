"""Out-of-fold predictions, greedy ensembles, decision thresholds and calibration."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from hyperpilot.tools.artifacts import reload_and_score, save_frame, save_model
from hyperpilot.tools.ensemble import (
    ThresholdClassifier,
    WeightedEnsemble,
    _binary_scores,
    calibrate,
    choose_calibration,
    greedy_selection,
    score_oof,
    tune_threshold,
)
from hyperpilot.tools.evaluate import (
    cross_validate,
    cross_validate_oof,
    make_folds,
    score_pipeline,
)


def _tests(n: int, k: int = 5) -> list[np.ndarray]:
    return [np.arange(i, n, k) for i in range(k)]


def test_greedy_selection_finds_the_weights_that_cancel_the_errors() -> None:
    y = np.linspace(0.0, 10.0, 40)
    over, under, noise = y + 1.0, y - 2.0, y + np.sin(np.arange(40)) * 3
    picked = greedy_selection([noise, over, under], y, _tests(40), "rmse", None, rounds=10)
    # Starts from the best single one (over, rmse 1), then 2 x over + 1 x under is exact.
    assert picked.weights == [0, 2, 1]
    assert picked.score == pytest.approx(0.0, abs=1e-12)
    assert picked.path[0] == pytest.approx(1.0)


def test_greedy_selection_takes_only_members_whose_refits_fit_the_time_left() -> None:
    y = np.linspace(0.0, 10.0, 40)
    over, under, far_under = y + 1.0, y - 2.0, y - 3.0
    oofs = [over, under, far_under]
    free = greedy_selection(oofs, y, _tests(40), "rmse", None, rounds=10)
    assert free.weights == [2, 1, 0] and not free.priced_out
    # "under" takes 50 s to refit; with 20 s left the cheaper one joins (3 x over + 1 x it)
    timed = greedy_selection(oofs, y, _tests(40), "rmse", None, rounds=10, costs=[5.0, 50.0, 10.0],
                             budget=20.0)
    assert timed.weights == [3, 0, 1] and timed.priced_out
    assert timed.score == pytest.approx(0.0, abs=1e-12)
    # the best single one ships whatever it costs
    alone = greedy_selection(oofs, y, _tests(40), "rmse", None, rounds=10, costs=[30.0, 50.0, 10.0],
                             budget=20.0)
    assert alone.members == [0] and alone.score == pytest.approx(1.0)


def test_greedy_selection_keeps_the_best_single_model_when_blending_only_hurts() -> None:
    y = np.linspace(0.0, 1.0, 20)
    picked = greedy_selection([y + 0.01, y + 0.5], y, _tests(20), "mae", None, rounds=5)
    assert picked.weights == [1, 0] and picked.members == [0]
    assert picked.score == pytest.approx(0.01)


def test_scores_of_oof_probabilities_are_the_mean_over_folds() -> None:
    rng = np.random.default_rng(0)
    y = np.array(["a", "b"] * 20)
    p = rng.uniform(size=40)
    proba = np.column_stack([1 - p, p])
    tests = _tests(40)
    expected = np.mean([roc_auc_score(y[t] == "b", p[t]) for t in tests])
    assert score_oof(proba, y, tests, "roc_auc", np.array(["a", "b"])) == pytest.approx(expected)


def test_counted_binary_scores_match_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    p, is_pos = rng.uniform(size=300), rng.uniform(size=300) < 0.3
    cuts = np.array([0.0, 0.2, 0.5, 0.77, 1.0, 1.5])
    f1 = _binary_scores(p, is_pos, cuts, "f1")
    balanced = _binary_scores(p, is_pos, cuts, "balanced_accuracy")
    for i, cut in enumerate(cuts):
        assert f1[i] == pytest.approx(f1_score(is_pos, p >= cut, zero_division=0))
        assert balanced[i] == pytest.approx(balanced_accuracy_score(is_pos, p >= cut))


def test_a_threshold_is_tuned_when_positives_score_low() -> None:
    rng = np.random.default_rng(2)
    y = np.where(rng.uniform(size=400) < 0.2, "yes", "no")
    # The model ranks well but its probabilities of "yes" rarely pass 0.5.
    p = np.clip(np.where(y == "yes", 0.35, 0.1) + rng.normal(0, 0.08, 400), 0, 1)
    proba = np.column_stack([1 - p, p])
    found = tune_threshold(proba, y, _tests(400), "f1", np.array(["no", "yes"]), "yes")
    assert 0.1 < found.threshold < 0.4
    assert found.score > found.default_score + 0.3


def test_calibration_helps_overconfident_probabilities_and_keeps_their_order() -> None:
    rng = np.random.default_rng(3)
    y = np.where(rng.uniform(size=300) < 0.5, 1, 0)
    logit = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1.5, 300)
    p = 1 / (1 + np.exp(-4 * logit))  # four times too sharp
    proba = np.column_stack([1 - p, p])
    classes = np.array([0, 1])
    choice = choose_calibration(proba, y, _tests(300), classes)
    assert choice.method == "platt" and choice.score < choice.default_score - 0.1
    fixed = calibrate(proba, choice.method, choice.params)
    assert log_loss(y, fixed) < log_loss(y, proba)
    assert roc_auc_score(y, fixed[:, 1]) == pytest.approx(roc_auc_score(y, p))


def test_temperature_calibration_for_several_classes() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 300)
    scores = np.eye(3)[y] * 2 + rng.normal(0, 1.5, (300, 3))
    sharp = np.exp(5 * scores)
    proba = sharp / sharp.sum(axis=1, keepdims=True)
    choice = choose_calibration(proba, y, _tests(300), np.arange(3))
    assert choice.method == "temperature" and choice.params[0] > 1.5
    assert choice.score < choice.default_score


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300),
                      "c": rng.normal(size=300)})
    X["target"] = np.where(X["a"] + 0.5 * X["b"] ** 2 + rng.normal(0, 0.7, 300) > 0.8,
                           "yes", "no")
    return X


def test_cross_validation_with_oof_scores_like_cross_validate(frame: pd.DataFrame) -> None:
    X, y = frame.drop(columns="target"), frame["target"]
    folds = make_folds(y, "binary", 4, seed=0)
    model = make_pipeline(StandardScaler(), LogisticRegression())
    scores, oof = cross_validate_oof(model, X, y, folds, "f1", "yes", "binary")
    assert scores == pytest.approx(cross_validate(model, X, y, folds, "f1", "yes"))
    assert oof.shape == (300, 2) and np.allclose(oof.sum(axis=1), 1.0)
    # A model without predict_proba gives its labels, one-hot.
    from sklearn.svm import LinearSVC
    _, hard = cross_validate_oof(LinearSVC(), X, y, folds, "f1", "yes", "binary")
    assert set(np.unique(hard)) == {0.0, 1.0} and np.allclose(hard.sum(axis=1), 1.0)


def test_an_ensemble_artifact_reloads_and_reproduces_its_holdout_score(
        frame: pd.DataFrame, tmp_path) -> None:
    train, holdout = frame.iloc[:220], frame.iloc[220:]
    members = [make_pipeline(StandardScaler(), LogisticRegression()),
               DecisionTreeClassifier(max_depth=4, random_state=0),
               make_pipeline(StandardScaler(), KNeighborsClassifier(15))]
    model = WeightedEnsemble(members, [2, 1, 1], "binary").fit(
        train.drop(columns="target"), train["target"])
    expected = score_pipeline(model, holdout.drop(columns="target"), holdout["target"],
                              "log_loss")
    save_model(model, tmp_path / "model.joblib")
    save_frame(holdout, tmp_path / "holdout.parquet")
    report = reload_and_score(tmp_path / "model.joblib", tmp_path / "holdout.parquet", "target",
                              "log_loss")
    assert report["score"] == pytest.approx(expected, abs=1e-12)
    loaded = joblib.load(tmp_path / "model.joblib")
    proba = np.mean([m.predict_proba(holdout.drop(columns="target")) for m in
                     [loaded.members_[0], loaded.members_[0], loaded.members_[1],
                      loaded.members_[2]]], axis=0)
    assert np.allclose(loaded.predict_proba(holdout.drop(columns="target")), proba)
    assert set(loaded.predict(holdout.drop(columns="target"))) <= {"yes", "no"}


def test_the_threshold_decides_what_predict_says(frame: pd.DataFrame) -> None:
    X, y = frame.drop(columns="target"), frame["target"]
    model = ThresholdClassifier(LogisticRegression(), 0.2, "yes").fit(X, y)
    p_yes = model.predict_proba(X)[:, 1]
    assert list(model.classes_) == ["no", "yes"]
    assert (model.predict(X) == np.where(p_yes >= 0.2, "yes", "no")).all()
    plain = LogisticRegression().fit(X, y).predict(X)
    assert (model.predict(X) == "yes").sum() > (plain == "yes").sum()


def test_permutation_importance_and_feature_count_see_through_an_ensemble(
        frame: pd.DataFrame) -> None:
    from hyperpilot.tools.ensemble import model_features
    from hyperpilot.tools.importance import permutation_importance
    from hyperpilot.tools.types import DataProfile

    X, y = frame.drop(columns="target"), frame["target"]
    model = ThresholdClassifier(WeightedEnsemble(
        [LogisticRegression(), DecisionTreeClassifier(max_depth=3, random_state=0)], [1, 1],
        "binary"), 0.4, "yes").fit(X, y)
    table = permutation_importance(model, X, y, ["a", "b", "c"], "f1", "yes", n_repeats=2)
    assert table[0]["feature"] == "a" and table[0]["importance"] > 0.05
    profile = DataProfile.model_construct(features=["a", "b", "c"])
    assert model_features(model, profile) == ["a", "b", "c"]


def test_a_trial_for_balanced_accuracy_is_scored_at_its_tuned_threshold() -> None:
    """On a rare class, most-probable-class balanced accuracy is about 0.5 for every config;
    the trial's folds are scored at the cut-off chosen on the other folds instead."""
    from hyperpilot.agents.tuner.agent import TrainingData, build_model_pipeline, evaluate_trial
    from hyperpilot.tools.data import profile_table
    from hyperpilot.tools.types import TaskSpec

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 4)), columns=["a", "b", "c", "d"])
    y = pd.Series(np.where(X["a"] + rng.normal(scale=1.5, size=600) > 2.6, "bad", "good"))
    task = TaskSpec(text="t", task_type="binary", target="y", metric="balanced_accuracy",
                    direction="maximize", positive_class="bad")
    profile = profile_table(X.assign(y=y), "y")
    data = TrainingData(X, y, make_folds(y.to_numpy(), "binary", 5, 0))
    pipeline = build_model_pipeline("linear", {"C": 1.0}, task, profile, seed=0)
    outcome = evaluate_trial(data, pipeline, task, 0, None, ())
    plain, oof = cross_validate_oof(pipeline, X, y, data.folds, "balanced_accuracy", "bad", "binary")
    tests = [test for _, test in data.folds]
    found = tune_threshold(oof, y, tests, "balanced_accuracy", np.array(["bad", "good"]), "bad")
    assert found.helps and np.mean(plain) < 0.6
    assert outcome.fold_scores == pytest.approx(list(found.fold_scores))
    assert np.mean(outcome.fold_scores) > np.mean(plain) + 0.1
    # accuracy takes no threshold: its trials score as they stand
    as_is = evaluate_trial(data, pipeline, task.model_copy(update={"metric": "accuracy"}), 0, None, ())
    assert as_is.fold_scores == pytest.approx(
        cross_validate_oof(pipeline, X, y, data.folds, "accuracy", "bad", "binary")[0])
