"""Metrics, cross-validation folds, scoring of fitted pipelines and a trivial baseline."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn import metrics as skm
from sklearn.base import BaseEstimator, clone
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

from hyperpilot.tools.errors import HyperpilotError, TaskSpecError, TrialFailed
from hyperpilot.tools.types import Direction, TaskType

logger = logging.getLogger(__name__)

Folds = list[tuple[np.ndarray, np.ndarray]]
_CLASSIFICATION: tuple[TaskType, ...] = ("binary", "multiclass")
_REASON_CHARS = 200


@dataclass(frozen=True)
class Metric:
    """A metric: how to read it (direction, range) and what it needs (labels or probabilities)."""

    name: str
    direction: Direction
    task_types: tuple[TaskType, ...]
    needs_proba: bool
    low: float
    high: float
    description: str


METRICS: Mapping[str, Metric] = MappingProxyType({m.name: m for m in [
    Metric("accuracy", "maximize", _CLASSIFICATION, False, 0.0, 1.0,
           "fraction of rows whose predicted label is right"),
    Metric("balanced_accuracy", "maximize", _CLASSIFICATION, False, 0.0, 1.0,
           "mean recall over classes; robust to class imbalance"),
    Metric("f1", "maximize", ("binary",), False, 0.0, 1.0,
           "harmonic mean of precision and recall of the positive class"),
    Metric("f1_macro", "maximize", _CLASSIFICATION, False, 0.0, 1.0,
           "unweighted mean of per-class F1; every class counts equally"),
    Metric("f1_weighted", "maximize", _CLASSIFICATION, False, 0.0, 1.0,
           "per-class F1 averaged with class frequencies as weights"),
    Metric("precision", "maximize", ("binary",), False, 0.0, 1.0,
           "fraction of predicted positives that are positive"),
    Metric("recall", "maximize", ("binary",), False, 0.0, 1.0,
           "fraction of actual positives that are found"),
    Metric("roc_auc", "maximize", _CLASSIFICATION, True, 0.0, 1.0,
           "area under the ROC curve (one-vs-rest macro average for multiclass)"),
    Metric("log_loss", "minimize", _CLASSIFICATION, True, 0.0, math.inf,
           "cross-entropy of the predicted probabilities; rewards calibration"),
    Metric("r2", "maximize", ("regression",), False, -math.inf, 1.0,
           "coefficient of determination; 0 is as good as predicting the mean"),
    Metric("rmse", "minimize", ("regression",), False, 0.0, math.inf,
           "root mean squared error, in target units; punishes large errors"),
    Metric("mae", "minimize", ("regression",), False, 0.0, math.inf,
           "mean absolute error, in target units; robust to outliers"),
]})


def get_metric(name: str) -> Metric:
    """Look up a metric by name.

    Args:
        name: one of the keys of ``METRICS``, e.g. "f1_macro" or "rmse".
    """
    if name not in METRICS:
        raise TaskSpecError(f"unknown metric {name!r}; choose one of {', '.join(METRICS)}")
    return METRICS[name]


def is_better(a: float, b: float | None, direction: Direction) -> bool:
    """Whether score ``a`` is strictly better than ``b`` (``b`` None: anything finite is).

    Args:
        a: the new score.
        b: the score to beat, or None when there is none yet.
        direction: "maximize" or "minimize".
    """
    if not math.isfinite(a):
        return False
    if b is None or not math.isfinite(b):
        return True
    return a > b if direction == "maximize" else a < b


def resolve_positive_class(positive_class: Any, classes: Any) -> Any:
    """The entry of ``classes`` meaning the positive class; by default the last (sorted) one.

    A positive class written as text ("1", "yes") matches the label it prints as.

    Args:
        positive_class: the label from the task, or None.
        classes: the labels in the order of the model's probability columns.
    """
    labels = list(classes)
    if positive_class is None:
        return labels[-1]
    for label in labels:
        if label == positive_class or str(label) == str(positive_class):
            return label
    raise TaskSpecError(f"positive class {positive_class!r} is not one of the labels {labels}")


def score_predictions(
    metric: str,
    y_true: Any,
    y_pred: Any = None,
    proba: Any = None,
    classes: Any = None,
    positive_class: Any = None,
) -> float:
    """Score predictions in the metric's natural units (rmse and log_loss are positive).

    Args:
        metric: a name from ``METRICS``.
        y_true: the true labels or values.
        y_pred: predicted labels or values; needed unless the metric needs probabilities.
        proba: for roc_auc/log_loss, probabilities with one column per class in ``classes``
            order; a 1-D array means scores of the last class (e.g. ``decision_function``).
        classes: the label of each ``proba`` column (``model.classes_``); defaults to the
            sorted labels of ``y_true``.
        positive_class: the positive label of binary f1, precision, recall and roc_auc;
            defaults to the last of ``classes``.
    """
    spec = get_metric(metric)
    y_true = np.asarray(y_true)
    if spec.needs_proba:
        if proba is None:
            raise ValueError(f"metric {metric!r} needs probabilities, got none")
        labels = np.unique(y_true) if classes is None else np.asarray(classes)
        return _score_proba(metric, y_true, np.asarray(proba, dtype=float), labels, positive_class)
    if y_pred is None:
        raise ValueError(f"metric {metric!r} needs predictions, got none")
    return _score_labels(metric, y_true, np.asarray(y_pred), classes, positive_class)


def _score_labels(metric: str, y_true: np.ndarray, y_pred: np.ndarray, classes: Any,
                  positive_class: Any) -> float:
    if metric in ("f1", "precision", "recall"):
        labels = np.unique(np.concatenate([y_true, y_pred])) if classes is None else classes
        function = {"f1": skm.f1_score, "precision": skm.precision_score,
                    "recall": skm.recall_score}[metric]
        pos = resolve_positive_class(positive_class, labels)
        return float(function(y_true, y_pred, pos_label=pos, average="binary", zero_division=0))
    simple = {
        "accuracy": skm.accuracy_score,
        "balanced_accuracy": skm.balanced_accuracy_score,
        "r2": skm.r2_score,
        "rmse": skm.root_mean_squared_error,
        "mae": skm.mean_absolute_error,
    }
    if metric in simple:
        return float(simple[metric](y_true, y_pred))
    average = metric.removeprefix("f1_")
    return float(skm.f1_score(y_true, y_pred, average=average, zero_division=0))


def score_label_codes(metric: str, true: np.ndarray, pred: np.ndarray, n_classes: int,
                      positive: int = -1) -> float:
    """A label metric from class codes (positions in the sorted labels), as
    ``score_predictions`` gives it for the labels, from one confusion matrix: what ensemble
    selection scores thousands of times, without scikit-learn's per-call checks.

    Args:
        metric: accuracy, balanced_accuracy, f1, precision, recall, f1_macro or f1_weighted.
        true: the true class codes (ints in ``range(n_classes)``).
        pred: the predicted class codes.
        n_classes: the number of labels.
        positive: the positive class's code for f1, precision and recall (-1: the last).
    """
    counts = np.bincount(true * n_classes + pred, minlength=n_classes * n_classes)
    matrix = counts.reshape(n_classes, n_classes).astype(float)
    hits, actual, predicted = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    if metric == "accuracy":
        return float(hits.sum() / max(len(true), 1))
    if metric == "balanced_accuracy":
        seen = actual > 0
        return float(np.mean(hits[seen] / actual[seen]))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        recall = np.where(actual > 0, hits / actual, 0.0)
        f1 = np.where(actual + predicted > 0, 2 * hits / (actual + predicted), 0.0)
    pos = positive % n_classes
    if metric in ("f1", "precision", "recall"):
        return float({"f1": f1, "precision": precision, "recall": recall}[metric][pos])
    present = (actual + predicted) > 0
    if metric == "f1_macro":
        return float(np.mean(f1[present]))
    if metric == "f1_weighted":
        return float(np.sum(f1 * actual) / max(actual.sum(), 1))
    raise ValueError(f"{metric!r} is not a label metric")


def score_proba_codes(metric: str, true: np.ndarray, proba: np.ndarray, positive: int = -1) -> float:
    """roc_auc or log_loss from class codes and one probability column per class, as
    ``score_predictions`` gives them, without scikit-learn's per-call checks (ensemble
    selection scores thousands of blends).

    ROC AUC is the Mann-Whitney statistic on tied-averaged ranks (of the positive class's
    column for two classes, else the macro mean over classes, one against the rest); log
    loss clips the probabilities to [eps, 1 - eps] as scikit-learn does.

    Args:
        metric: "roc_auc" or "log_loss".
        true: the true class codes (ints in ``range(proba.shape[1])``).
        proba: the probabilities, one column per class in code order.
        positive: the positive class's code for binary ROC AUC (-1: the last).
    """
    n_classes = proba.shape[1]
    if metric == "log_loss":
        eps = np.finfo(proba.dtype).eps
        picked = np.clip(proba, eps, 1 - eps)[np.arange(len(true)), true]
        return float(-np.mean(np.log(picked)))
    if metric != "roc_auc":
        raise ValueError(f"{metric!r} is not a probability metric")
    columns = [positive % n_classes] if n_classes == 2 else range(n_classes)
    return float(np.mean([_auc(proba[:, c], true == c) for c in columns]))


def _auc(score: np.ndarray, is_pos: np.ndarray) -> float:
    n_pos = int(is_pos.sum())
    n_neg = len(is_pos) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC needs both classes among the rows")
    ranks = rankdata(score)
    return float((ranks[is_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def oof_fold_scores(prediction: np.ndarray, y: Any, tests: Sequence[np.ndarray], metric: str,
                    classes: np.ndarray | None, positive_class: Any = None) -> list[float]:
    """``metric`` on each fold's test rows of out-of-fold predictions, as CV scores are.

    Classification predictions are probability columns in ``classes`` order (labels: the most
    probable class), scored on class codes (``score_label_codes``, ``score_proba_codes``):
    ensemble selection scores thousands of blends and scikit-learn's per-call checks would
    dominate. Regression predictions are values.

    Args:
        prediction: OOF predictions (``fold_predictions`` layout) for every row of ``y``.
        y: the true targets.
        tests: each fold's test row positions.
        metric: a name from ``METRICS``.
        classes: the probability columns' labels (sorted); None for regression.
        positive_class: the positive label for binary metrics.
    """
    y = np.asarray(y)
    if classes is None:
        return [score_predictions(metric, y[test], y_pred=prediction[test]) for test in tests]
    codes = np.searchsorted(classes, y)
    pos = list(classes).index(resolve_positive_class(positive_class, classes))
    if get_metric(metric).needs_proba:
        return [score_proba_codes(metric, codes[t], prediction[t], pos) for t in tests]
    picks = np.argmax(prediction, axis=1)
    return [score_label_codes(metric, codes[t], picks[t], len(classes), pos) for t in tests]


def _score_proba(metric: str, y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray,
                 positive_class: Any) -> float:
    if proba.ndim == 1:  # scores of the last class
        if metric == "log_loss":
            proba = np.column_stack([1.0 - proba, proba])
        else:
            pos = resolve_positive_class(positive_class, classes)
            sign = 1.0 if pos == classes[-1] else -1.0
            return float(skm.roc_auc_score(y_true == pos, sign * proba))
    if metric == "log_loss":
        return float(skm.log_loss(y_true, proba, labels=classes))
    if len(classes) == 2:
        pos = resolve_positive_class(positive_class, classes)
        column = list(classes).index(pos)
        return float(skm.roc_auc_score(y_true == pos, proba[:, column]))
    return float(skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro",
                                   labels=classes))


def score_pipeline(pipeline: BaseEstimator, X: Any, y: Any, metric: str,
                   positive_class: Any = None) -> float:
    """Score a fitted pipeline on ``X``, ``y`` with ``metric``.

    roc_auc uses ``predict_proba`` and falls back to ``decision_function`` for binary
    tasks; log_loss needs ``predict_proba``; every other metric uses ``predict``.

    Args:
        pipeline: a fitted estimator or pipeline.
        X: the features (a data frame with the columns the pipeline was fitted on).
        y: the true labels or values.
        metric: a name from ``METRICS``.
        positive_class: the positive label for binary metrics; defaults to the last class.
    """
    spec = get_metric(metric)
    if not spec.needs_proba:
        return score_predictions(metric, y, y_pred=pipeline.predict(X), classes=_classes(pipeline),
                                 positive_class=positive_class)
    classes = _classes(pipeline)
    return score_predictions(metric, y, proba=_proba_or_scores(pipeline, X, metric, classes),
                             classes=classes, positive_class=positive_class)


def _proba_or_scores(pipeline: BaseEstimator, X: Any, metric: str, classes: Any) -> np.ndarray:
    if hasattr(pipeline, "predict_proba"):
        return np.asarray(pipeline.predict_proba(X))
    binary = classes is not None and len(classes) == 2
    if metric == "roc_auc" and binary and hasattr(pipeline, "decision_function"):
        return np.asarray(pipeline.decision_function(X))
    raise ValueError(f"{metric} needs predicted probabilities, which this model cannot give")


def _classes(pipeline: BaseEstimator) -> np.ndarray | None:
    return getattr(pipeline, "classes_", None)


def make_folds(y: Any, task_type: TaskType, n_splits: int, seed: int,
               time_ordered: bool = False) -> Folds:
    """Shuffled cross-validation folds: stratified for classification, plain for regression.

    For classification ``n_splits`` shrinks to the smallest class count (at least 2). With
    ``time_ordered`` the rows are taken to be in time order and each fold tests on a later
    stretch than all of its training rows (an expanding window, ``TimeSeriesSplit``).

    Args:
        y: the target of the rows to split.
        task_type: "binary", "multiclass" or "regression".
        n_splits: the wanted number of folds (2 or more).
        seed: the shuffling seed.
        time_ordered: split in row order, training on the past only.
    """
    if n_splits < 2:
        raise TaskSpecError(f"cross-validation needs at least 2 folds, got {n_splits}")
    y = np.asarray(y)
    if time_ordered:
        n = min(n_splits, len(y) - 1)
        if n < 2:
            raise TaskSpecError(f"{len(y)} rows are too few for time-ordered folds")
        return list(TimeSeriesSplit(n).split(np.zeros(len(y))))
    if task_type == "regression":
        splitter: KFold | StratifiedKFold = KFold(min(n_splits, len(y)), shuffle=True,
                                                  random_state=seed)
        return list(splitter.split(np.zeros(len(y))))
    smallest = int(np.unique(y, return_counts=True)[1].min())
    n = max(2, min(n_splits, smallest))
    if n < n_splits:
        logger.warning("using %d folds instead of %d: the smallest class has %d rows",
                       n, n_splits, smallest)
    splitter = StratifiedKFold(n, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # the warning about a class rarer than n is logged above
        warnings.simplefilter("ignore", UserWarning)
        return list(splitter.split(np.zeros(len(y)), y))


def _take(data: Any, index: np.ndarray) -> Any:
    return data.iloc[index] if hasattr(data, "iloc") else np.asarray(data)[index]


def _fit_and_score(pipeline: BaseEstimator, X: Any, y: Any, fold: tuple[np.ndarray, np.ndarray],
                   metric: str, positive_class: Any) -> float:
    train, test = fold
    model = _fit(pipeline, X, y, train)
    return score_pipeline(model, _take(X, test), _take(y, test), metric, positive_class)


def fold_predictions(model: BaseEstimator, X: Any, classes: np.ndarray | None) -> np.ndarray:
    """What a fitted model predicts for ``X``, as an ensemble can average it.

    Regression: the predicted values (1-D). Classification: one column per label of
    ``classes`` (the sorted labels of the whole target): the class probabilities when the
    model has ``predict_proba``, else its predicted labels one-hot encoded.

    Args:
        model: a fitted estimator or pipeline.
        X: the rows to predict.
        classes: every label of the task, sorted; None for regression.
    """
    if classes is None:
        return np.asarray(model.predict(X), dtype=float)
    out = np.zeros((len(X), len(classes)))
    columns = np.searchsorted(classes, np.asarray(_classes(model)))
    if hasattr(model, "predict_proba"):
        out[:, columns] = np.asarray(model.predict_proba(X), dtype=float)
    else:
        out[np.arange(len(X)), np.searchsorted(classes, np.asarray(model.predict(X)))] = 1.0
    return out


def oof_classes(y: Any, task_type: TaskType) -> np.ndarray | None:
    """The column labels of out-of-fold predictions: the sorted labels, or None for regression.

    Args:
        y: the whole target.
        task_type: "binary", "multiclass" or "regression".
    """
    return None if task_type == "regression" else np.unique(np.asarray(y))


def cross_validate_oof(pipeline: BaseEstimator, X: Any, y: Any, folds: Folds, metric: str,
                       positive_class: Any = None, task_type: TaskType = "binary"
                       ) -> tuple[list[float], np.ndarray]:
    """``cross_validate``, plus the out-of-fold predictions of ``fold_predictions``.

    Returns the fold scores (as ``cross_validate`` gives them) and one row of predictions
    per row of ``y``; rows in none of the folds' test parts are NaN. Takes and returns plain
    data, so it can run in another process.

    Args:
        pipeline: an unfitted estimator or pipeline (it is cloned, never changed).
        X: the features, indexed by the folds' row positions.
        y: the target.
        folds: (train, test) row positions.
        metric: a name from ``METRICS``.
        positive_class: the positive label for binary metrics.
        task_type: "binary", "multiclass" or "regression" (sets the predictions' shape).
    """
    classes = oof_classes(y, task_type)
    oof = np.full(len(y) if classes is None else (len(y), len(classes)), np.nan)
    scores = []
    for number, fold in enumerate(folds):
        try:
            model = _fit(pipeline, X, y, fold[0])
            test_X, test_y = _take(X, fold[1]), _take(y, fold[1])
            score = score_pipeline(model, test_X, test_y, metric, positive_class)
            oof[fold[1]] = fold_predictions(model, test_X, classes)
        except HyperpilotError:
            raise
        except Exception as error:
            raise TrialFailed(_reason(number, error)) from error
        scores.append(_checked(score, metric, number))
    return scores, oof


_FORESTS = (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier,
            ExtraTreesRegressor)
# Pipeline steps that never look at the target: fitting them on every row leaks no labels.
_LABEL_FREE_STEPS = frozenset({"prep", "model"})


def oob_applies(pipeline: BaseEstimator, folds: Folds, n_rows: int, metric: str) -> bool:
    """Whether a trial of ``pipeline`` can be scored out of bag instead of fold by fold.

    It can when its model is a bagged forest (``bootstrap=True``), its other steps never
    see the target (no feature selection or screening fitted on the labels), the folds'
    test parts cover every row once (shuffled K-fold, not time-ordered splits, where a row
    must be predicted from the past only), the metric is not log loss: a row's
    out-of-bag probabilities come from about a third of the trees, coarse enough that a
    zero for the true class costs far more than the whole forest's would; and the classes
    are not reweighted before the bootstrap (``class_weight="balanced"`` or a dict): the
    forest then draws its bootstrap in proportion to the weights, so a rare class's rows are
    in nearly every tree's sample and nearly never out of bag.

    Args:
        pipeline: the unfitted trial pipeline.
        folds: the run's (train, test) folds.
        n_rows: the number of training rows the folds index.
        metric: the run's metric.
    """
    if metric == "log_loss":
        return False
    steps = getattr(pipeline, "named_steps", None)
    model = steps.get("model") if steps is not None else None
    if model is None or set(steps) - _LABEL_FREE_STEPS:
        return False
    if not (isinstance(model, _FORESTS) and getattr(model, "bootstrap", False)):
        return False
    if getattr(model, "class_weight", None) not in (None, "balanced_subsample"):
        return False
    tested = np.concatenate([test for _, test in folds]) if folds else np.array([], dtype=int)
    return len(tested) == n_rows and np.array_equal(np.sort(tested), np.arange(n_rows))


def oob_validate(pipeline: BaseEstimator, X: Any, y: Any, folds: Folds, metric: str,
                 positive_class: Any = None, task_type: TaskType = "binary"
                 ) -> tuple[list[float], np.ndarray]:
    """``cross_validate_oof`` for a bagged forest, from one fit instead of one per fold.

    The forest is fitted once on every row; each row's prediction comes from the trees
    whose bootstrap sample left it out (its out-of-bag prediction, an honest estimate of
    how the model does on unseen rows). Those predictions are scored on each fold's test
    rows, so the fold scores compare with other trials' and the out-of-fold array feeds
    ensembles as theirs does. Call it only where ``oob_applies``.

    Args:
        pipeline: an unfitted pipeline whose "model" step is a bagged forest.
        X: the features.
        y: the target.
        folds: the run's folds; their test parts must cover every row once.
        metric: a name from ``METRICS``.
        positive_class: the positive label for binary metrics.
        task_type: "binary", "multiclass" or "regression".
    """
    classes = oof_classes(y, task_type)
    model = clone(pipeline).set_params(model__oob_score=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", UserWarning)  # "some inputs do not have OOB scores"
            model.fit(X, y)
        forest = model.named_steps["model"]
        if not every_row_out_of_bag(forest, len(y)):
            # scikit-learn predicts 0 for a row no tree left out: a made-up value, not an
            # estimate (a class-0 row would score as right); score fold by fold instead
            return cross_validate_oof(pipeline, X, y, folds, metric, positive_class, task_type)
        if classes is None:
            oof = np.asarray(forest.oob_prediction_, dtype=float)
        else:
            oof = np.full((len(y), len(classes)), np.nan)
            oof[:, np.searchsorted(classes, forest.classes_)] = forest.oob_decision_function_
    except HyperpilotError:
        raise
    except Exception as error:
        raise TrialFailed(_reason(0, error)) from error
    if not np.isfinite(oof).all():  # a row that every tree saw: score it fold by fold instead
        return cross_validate_oof(pipeline, X, y, folds, metric, positive_class, task_type)
    scores = oof_fold_scores(oof, y, [test for _, test in folds], metric, classes, positive_class)
    return [_checked(score, metric, number) for number, score in enumerate(scores)], oof


def every_row_out_of_bag(forest: Any, n_rows: int) -> bool:
    """Whether each of ``n_rows`` training rows was left out of at least one tree's sample."""
    left_out = np.zeros(n_rows, dtype=bool)
    for in_bag in forest.estimators_samples_:
        out = np.ones(n_rows, dtype=bool)
        out[in_bag] = False
        left_out |= out
        if left_out.all():
            return True
    return bool(left_out.all())


def _fit(pipeline: BaseEstimator, X: Any, y: Any, train: np.ndarray) -> BaseEstimator:
    model = clone(pipeline)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(_take(X, train), _take(y, train))


def _checked(score: float, metric: str, number: int) -> float:
    spec = get_metric(metric)
    if not (math.isfinite(score) and spec.low <= score <= spec.high):
        raise TrialFailed(f"fold {number}: {metric} is {score}, not a finite valid score")
    return score


def _reason(number: int, error: BaseException) -> str:
    text = " ".join(f"{type(error).__name__}: {error}".split())
    if len(text) > _REASON_CHARS:
        text = text[: _REASON_CHARS - 3] + "..."
    return f"fold {number}: {text}"


def cross_validate(pipeline: BaseEstimator, X: Any, y: Any, folds: Folds, metric: str,
                   positive_class: Any = None) -> list[float]:
    """Fit a clone of ``pipeline`` on each fold's training rows and score its test rows.

    Raises ``TrialFailed`` with a one-line reason when a fit or score raises or a score is
    not finite and inside the metric's range; a ``HyperpilotError`` (e.g. an unknown
    positive class) passes through, since no other trial would do better.

    Args:
        pipeline: an unfitted estimator or pipeline (it is cloned, never changed).
        X: the features, a data frame or array indexed by the folds' row positions.
        y: the target, a series or array.
        folds: (train, test) row positions, e.g. from ``make_folds``.
        metric: a name from ``METRICS``.
        positive_class: the positive label for binary metrics; defaults to the last class.
    """
    get_metric(metric)
    scores = []
    for number, fold in enumerate(folds):
        try:
            score = _fit_and_score(pipeline, X, y, fold, metric, positive_class)
        except HyperpilotError:
            raise
        except Exception as error:
            raise TrialFailed(_reason(number, error)) from error
        scores.append(_checked(score, metric, number))
    return scores


def baseline_score(X: Any, y: Any, folds: Folds, task_type: TaskType, metric: str,
                   positive_class: Any = None) -> float:
    """Mean cross-validated score of a trivial model: class priors, or the mean target.

    Args:
        X: the features (ignored by the trivial model, but kept for the same folds).
        y: the target.
        folds: the same folds the real models are scored on.
        task_type: "binary", "multiclass" or "regression".
        metric: a name from ``METRICS``.
        positive_class: the positive label for binary metrics; defaults to the last class.
    """
    return float(np.mean(cross_validate(_trivial(task_type), X, y, folds, metric, positive_class)))


def baseline_holdout(X: Any, y: Any, X_holdout: Any, y_holdout: Any, task_type: TaskType,
                     metric: str, positive_class: Any = None) -> float:
    """The holdout score of the trivial model of ``baseline_score``, fitted on ``X``, ``y``."""
    dummy = _trivial(task_type).fit(X, y)
    return score_pipeline(dummy, X_holdout, y_holdout, metric, positive_class)


def _trivial(task_type: TaskType) -> BaseEstimator:
    return DummyRegressor(strategy="mean") if task_type == "regression" \
        else DummyClassifier(strategy="prior")
