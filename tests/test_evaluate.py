from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from hyperpilot.tools.errors import TaskSpecError, TrialFailed
from hyperpilot.tools.evaluate import (
    METRICS,
    baseline_score,
    cross_validate,
    cross_validate_oof,
    get_metric,
    is_better,
    make_folds,
    oob_applies,
    oob_validate,
    score_label_codes,
    score_pipeline,
    score_predictions,
    score_proba_codes,
)

Y_TRUE = np.array(["a", "b", "c", "a", "b", "c", "a", "a"])
Y_PRED = np.array(["a", "b", "b", "a", "c", "c", "b", "a"])
BIN_TRUE = np.array(["no", "yes", "yes", "no", "yes", "no"])
BIN_PRED = np.array(["no", "yes", "no", "no", "yes", "yes"])


@pytest.mark.parametrize(("metric", "expected"), [
    ("accuracy", skm.accuracy_score(Y_TRUE, Y_PRED)),
    ("balanced_accuracy", skm.balanced_accuracy_score(Y_TRUE, Y_PRED)),
    ("f1_macro", skm.f1_score(Y_TRUE, Y_PRED, average="macro")),
    ("f1_weighted", skm.f1_score(Y_TRUE, Y_PRED, average="weighted")),
])
def test_label_metrics_match_sklearn(metric: str, expected: float) -> None:
    assert score_predictions(metric, Y_TRUE, Y_PRED) == pytest.approx(expected)


@pytest.mark.parametrize(("metric", "function"), [
    ("f1", skm.f1_score), ("precision", skm.precision_score), ("recall", skm.recall_score),
])
def test_binary_metrics_use_the_positive_class(metric: str, function) -> None:
    default = score_predictions(metric, BIN_TRUE, BIN_PRED)
    flipped = score_predictions(metric, BIN_TRUE, BIN_PRED, positive_class="no")

    assert default == pytest.approx(function(BIN_TRUE, BIN_PRED, pos_label="yes"))
    assert flipped == pytest.approx(function(BIN_TRUE, BIN_PRED, pos_label="no"))


def test_positive_class_written_as_text_matches_numeric_labels() -> None:
    y_true, y_pred = np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])

    assert score_predictions("recall", y_true, y_pred, positive_class="1") == 0.5
    with pytest.raises(TaskSpecError, match="positive class 'maybe'"):
        score_predictions("recall", y_true, y_pred, positive_class="maybe")


def test_regression_metrics_in_natural_units() -> None:
    y_true, y_pred = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 2.0, 5.0])

    assert score_predictions("rmse", y_true, y_pred) == pytest.approx(math.sqrt(2.25 / 4))
    assert score_predictions("mae", y_true, y_pred) == pytest.approx(2.5 / 4)
    assert score_predictions("r2", y_true, y_pred) == pytest.approx(skm.r2_score(y_true, y_pred))


def test_probability_metrics_match_sklearn() -> None:
    classes = np.array(["a", "b", "c"])
    y_true = np.array(["a", "b", "c", "a", "c", "b"])
    proba = np.array([[.7, .2, .1], [.2, .5, .3], [.1, .3, .6], [.4, .4, .2], [.3, .3, .4],
                      [.5, .4, .1]])

    assert score_predictions("log_loss", y_true, proba=proba, classes=classes) == pytest.approx(
        skm.log_loss(y_true, proba, labels=classes))
    assert score_predictions("roc_auc", y_true, proba=proba, classes=classes) == pytest.approx(
        skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes))


def test_binary_roc_auc_from_probabilities_or_decision_scores() -> None:
    y_true = np.array(["no", "yes", "yes", "no", "yes"])
    p_yes = np.array([0.2, 0.9, 0.4, 0.6, 0.8])
    expected = skm.roc_auc_score(y_true == "yes", p_yes)
    classes = np.array(["no", "yes"])

    two_columns = np.column_stack([1 - p_yes, p_yes])
    assert score_predictions("roc_auc", y_true, proba=two_columns, classes=classes) == expected
    assert score_predictions("roc_auc", y_true, proba=p_yes - 0.5, classes=classes) == expected
    assert score_predictions("roc_auc", y_true, proba=two_columns, classes=classes,
                             positive_class="no") == pytest.approx(expected)


def test_directions_and_unknown_metric() -> None:
    assert get_metric("rmse").direction == "minimize"
    assert get_metric("log_loss").direction == "minimize"
    assert get_metric("mae").direction == "minimize"
    assert get_metric("roc_auc").direction == "maximize"
    assert all(m.low < m.high for m in METRICS.values())
    with pytest.raises(TaskSpecError, match="unknown metric 'auc'; choose one of .*roc_auc"):
        get_metric("auc")


def test_is_better_follows_direction() -> None:
    assert is_better(0.9, 0.8, "maximize") and not is_better(0.9, 0.8, "minimize")
    assert is_better(1.0, None, "minimize")
    assert not is_better(float("nan"), 0.1, "maximize")


def test_make_folds_stratifies_and_covers_every_row_once() -> None:
    y = np.array(["a"] * 40 + ["b"] * 20)
    folds = make_folds(y, "binary", n_splits=5, seed=0)

    assert len(folds) == 5
    assert sorted(np.concatenate([test for _, test in folds])) == list(range(60))
    for train, test in folds:
        assert (y[test] == "b").sum() == 4
        assert set(train).isdisjoint(test)


def test_make_folds_shrinks_to_the_smallest_class() -> None:
    y = np.array([0] * 30 + [1] * 3)

    assert len(make_folds(y, "binary", n_splits=5, seed=0)) == 3
    assert len(make_folds(np.array([0] * 30 + [1]), "binary", n_splits=5, seed=0)) == 2


def test_make_folds_regression_and_seed() -> None:
    y = np.linspace(0, 1, 25)
    first, again = make_folds(y, "regression", 5, seed=1), make_folds(y, "regression", 5, seed=1)

    assert len(first) == 5
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0][1], make_folds(y, "regression", 5, seed=2)[0][1])


class Exploding(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        raise RuntimeError("out of cheese\nsecond line " + "x" * 500)


def classification_frame() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=90), "b": rng.normal(size=90)})
    y = pd.Series(np.repeat(["x", "y", "z"], 30))
    return X, y


def test_cross_validate_turns_a_failing_fit_into_one_line_trial_failed() -> None:
    X, y = classification_frame()
    folds = make_folds(y, "multiclass", 3, seed=0)

    with pytest.raises(TrialFailed) as info:
        cross_validate(Exploding(), X, y, folds, "accuracy")
    reason = str(info.value)
    assert reason.startswith("fold 0: RuntimeError: out of cheese second line")
    assert "\n" not in reason and len(reason) < 220


class Huge(RegressorMixin, BaseEstimator):
    def fit(self, X, y):
        return self

    def predict(self, X):
        return np.full(len(X), 1e308)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_cross_validate_rejects_non_finite_scores() -> None:
    X, y = pd.DataFrame({"a": np.arange(20.0)}), pd.Series(np.arange(20.0))

    with pytest.raises(TrialFailed, match="fold 0: rmse is inf, not a finite"):
        cross_validate(Huge(), X, y, make_folds(y, "regression", 2, 0), "rmse")


def test_cross_validate_scores_each_fold_and_hides_convergence_warnings() -> None:
    X, y = classification_frame()
    X["a"] += (y == "x") * 3
    folds = make_folds(y, "multiclass", 3, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = cross_validate(LogisticRegression(max_iter=1), X, y, folds, "accuracy")

    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]


def test_log_loss_without_probabilities_fails_the_trial() -> None:
    X, y = classification_frame()
    folds = make_folds(y, "multiclass", 3, seed=0)

    with pytest.raises(TrialFailed, match="probabilities"):
        cross_validate(SVC(), X, y, folds, "log_loss")


def test_roc_auc_falls_back_to_decision_function_for_binary() -> None:
    X, y = classification_frame()
    keep = y != "z"
    X, y = X[keep], y[keep]
    X["a"] += (y == "y") * 3
    model = SVC().fit(X, y)

    assert score_pipeline(model, X, y, "roc_auc") > 0.9


def test_unknown_positive_class_is_the_users_error_not_a_failed_trial() -> None:
    X, y = classification_frame()
    keep = y != "z"
    folds = make_folds(y[keep], "binary", 3, seed=0)

    with pytest.raises(TaskSpecError):
        cross_validate(DummyClassifier(), X[keep], y[keep], folds, "f1", positive_class="z")


def test_baseline_on_balanced_three_classes_is_a_third() -> None:
    X, y = classification_frame()
    folds = make_folds(y, "multiclass", 5, seed=0)

    assert baseline_score(X, y, folds, "multiclass", "accuracy") == pytest.approx(1 / 3, abs=0.05)
    assert baseline_score(X, y, folds, "multiclass", "roc_auc") == pytest.approx(0.5)


def test_regression_baseline_has_about_zero_r2() -> None:
    y = pd.Series(np.random.default_rng(0).normal(size=100))
    X = pd.DataFrame({"a": np.zeros(100)})
    folds = make_folds(y, "regression", 5, seed=0)

    assert -0.2 < baseline_score(X, y, folds, "regression", "r2") <= 0.0


def _forest_data(task: str):
    from sklearn.datasets import load_diabetes, load_iris
    X, y = (load_diabetes if task == "regression" else load_iris)(return_X_y=True, as_frame=True)
    return X, y


@pytest.mark.parametrize(("task", "metric"), [("multiclass", "accuracy"), ("multiclass", "roc_auc"),
                                              ("regression", "rmse")])
def test_a_bagged_forest_is_scored_out_of_bag_on_the_runs_folds(task: str, metric: str) -> None:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _forest_data(task)
    forest = (RandomForestRegressor if task == "regression" else RandomForestClassifier)(
        n_estimators=60, random_state=0, n_jobs=1)
    pipeline = Pipeline([("prep", StandardScaler()), ("model", forest)])
    folds = make_folds(y.to_numpy(), task, 5, 0)
    assert oob_applies(pipeline, folds, len(y), metric)
    scores, oof = oob_validate(pipeline, X, y, folds, metric, task_type=task)
    cv_scores, cv_oof = cross_validate_oof(pipeline, X, y, folds, metric, task_type=task)
    assert len(scores) == 5 and oof.shape == cv_oof.shape and np.isfinite(oof).all()
    # the same folds' rows, predicted by trees that never saw them: close to the CV estimate
    assert np.mean(scores) == pytest.approx(np.mean(cv_scores), rel=0.15)
    # each fold's score is the metric on that fold's out-of-bag predictions
    test = folds[0][1]
    if task == "regression":
        first = score_predictions(metric, y.to_numpy()[test], y_pred=oof[test])
    elif metric == "roc_auc":
        first = score_predictions(metric, y.to_numpy()[test], proba=oof[test], classes=np.unique(y))
    else:
        first = score_predictions(metric, y.to_numpy()[test], y_pred=np.unique(y)[oof[test].argmax(1)])
    assert scores[0] == pytest.approx(first)


def test_out_of_bag_scoring_only_where_it_is_honest() -> None:
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.feature_selection import SelectKBest
    from sklearn.pipeline import Pipeline

    X, y = _forest_data("multiclass")
    folds = make_folds(y.to_numpy(), "multiclass", 5, 0)
    forest = RandomForestClassifier(n_estimators=20)
    plain = Pipeline([("model", forest)])
    assert oob_applies(plain, folds, len(y), "accuracy")
    assert not oob_applies(Pipeline([("model", ExtraTreesClassifier(bootstrap=False))]), folds, len(y),
                           "accuracy")
    # a step fitted on the labels would have seen every row's target
    assert not oob_applies(Pipeline([("select", SelectKBest(k=2)), ("model", forest)]), folds, len(y),
                           "accuracy")
    # time-ordered folds never test the first rows: out of bag would predict the past from the future
    ordered = make_folds(y.to_numpy(), "multiclass", 3, 0, time_ordered=True)
    assert not oob_applies(plain, ordered, len(y), "accuracy")
    # a third of the trees give coarse probabilities, too harsh for log loss
    assert not oob_applies(plain, folds, len(y), "log_loss")
    # weighted classes weight the bootstrap: a rare class's rows are nearly never out of bag
    for weights in ("balanced", {0: 1.0, 1: 5.0, 2: 1.0}):
        weighted = Pipeline([("model", RandomForestClassifier(20, class_weight=weights))])
        assert not oob_applies(weighted, folds, len(y), "accuracy")
    subsample = Pipeline([("model", RandomForestClassifier(20, class_weight="balanced_subsample"))])
    assert oob_applies(subsample, folds, len(y), "accuracy")


def test_rows_no_tree_left_out_are_scored_fold_by_fold_not_as_zeros() -> None:
    """scikit-learn gives a row that every tree saw an out-of-bag prediction of zeros; for a
    rare class coded first that reads as right. Pure noise must score as noise."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 4)), columns=list("abcd"))
    y = pd.Series(np.where(rng.random(600) < 0.1, "bad", "good"))
    folds = make_folds(y.to_numpy(), "binary", 5, 0)
    # two trees leave about 40% of the rows in both samples
    few = Pipeline([("model", RandomForestClassifier(2, random_state=0))])
    assert oob_applies(few, folds, len(y), "balanced_accuracy")
    scores, oof = oob_validate(few, X, y, folds, "balanced_accuracy", task_type="binary")
    cv_scores, cv_oof = cross_validate_oof(few, X, y, folds, "balanced_accuracy", task_type="binary")
    assert scores == cv_scores and np.array_equal(oof, cv_oof)
    assert np.mean(scores) < 0.6


@pytest.mark.parametrize("n_classes", [2, 3, 4])
def test_code_scorers_agree_with_the_label_scorers(n_classes: int) -> None:
    """Ensemble selection scores class codes; every metric must read as the labels do."""
    rng = np.random.default_rng(n_classes)
    labels = np.array([f"c{i}" for i in range(n_classes)])
    positive = 1 if n_classes == 2 else -1
    label_metrics = ["accuracy", "balanced_accuracy", "f1_macro", "f1_weighted"]
    label_metrics += ["f1", "precision", "recall"] if n_classes == 2 else []
    for _ in range(60):
        rows = int(rng.integers(n_classes + 2, 50))
        true = rng.integers(0, n_classes, rows)
        true[:n_classes] = np.arange(n_classes)
        pred = np.zeros(rows, dtype=int) if rng.random() < 0.3 else rng.integers(0, n_classes, rows)
        proba = np.round(rng.dirichlet(np.ones(n_classes), rows), 1)
        proba[0] = np.eye(n_classes)[-1]  # a confident miss: log loss must clip the zero
        proba /= proba.sum(axis=1, keepdims=True)
        pos = labels[positive]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for metric in label_metrics:
                expected = score_predictions(metric, labels[true], y_pred=labels[pred],
                                             classes=labels, positive_class=pos)
                got = score_label_codes(metric, true, pred, n_classes, positive)
                assert got == pytest.approx(expected, abs=1e-12), metric
            for metric in ("roc_auc", "log_loss"):
                expected = score_predictions(metric, labels[true], proba=proba, classes=labels,
                                             positive_class=pos)
                assert score_proba_codes(metric, true, proba, positive) == \
                    pytest.approx(expected, abs=1e-9), metric
