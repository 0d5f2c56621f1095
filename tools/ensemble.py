"""Out-of-fold model combination: greedy ensemble selection, decision thresholds, calibration.

Every choice here is made on out-of-fold (OOF) predictions of the run's shared CV folds and
scored as CV scores are (the mean over folds of the metric on each fold's test rows), so a
choice is comparable with a single trial's CV score. The estimators are plain scikit-learn
estimators that ``joblib.load(...).predict(raw_rows)`` serves. No LLM here.

- ``greedy_selection``: Caruana et al. (2004), forward selection with replacement, started
  from the best single model; weights are how often each model was picked.
- ``tune_threshold``: the positive-class probability cut-off for binary f1 and balanced
  accuracy. Precision and recall are left at 0.5: alone, each is maximised by a degenerate
  cut-off (predict almost nothing, or everything, positive).
- ``fit_calibration``: Platt scaling (binary) or temperature scaling (multiclass) of the
  probabilities, for log loss only: both are monotone, so they cannot change ROC AUC.
Thresholds and calibrations are judged by cross-fitting: fitted on the other folds' OOF rows,
scored on the held fold, so the estimate they must beat is never scored on its own fit.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline

from hyperpilot.tools.evaluate import (
    fold_predictions,
    get_metric,
    is_better,
    oof_fold_scores,
    resolve_positive_class,
    score_predictions,
)
from hyperpilot.tools.preprocess import features_used
from hyperpilot.tools.types import DataProfile

THRESHOLD_METRICS = ("f1", "balanced_accuracy")
CALIBRATION_METRICS = ("log_loss",)
THRESHOLD_CANDIDATES = 101
_EPS = 1e-12
Tests = Sequence[np.ndarray]


# --- scoring OOF predictions ---------------------------------------------------------------

def blend(predictions: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The weighted mean of prediction arrays of one shape (zero weights are skipped).

    Args:
        predictions: per model, values (1-D) or class-probability columns (2-D).
        weights: one non-negative weight per model, not all zero.
    """
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("blend needs at least one positive weight")
    out = np.zeros_like(np.asarray(predictions[0], dtype=float))
    for prediction, weight in zip(predictions, weights, strict=True):
        if weight:
            out += weight * np.asarray(prediction, dtype=float)
    return out / total


def decode(prediction: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    """Labels (the most probable class) from probability columns; values pass through."""
    return prediction if classes is None else np.asarray(classes)[np.argmax(prediction, axis=1)]


def score_oof(prediction: np.ndarray, y: Any, tests: Tests, metric: str,
              classes: np.ndarray | None, positive_class: Any = None) -> float:
    """The mean over folds of ``metric`` on each fold's test rows of ``prediction``.

    Args:
        prediction: OOF predictions (``fold_predictions`` layout) for every row of ``y``.
        y: the true targets.
        tests: each fold's test row positions.
        metric: a name from ``METRICS``.
        classes: the probability columns' labels; None for regression.
        positive_class: the positive label for binary metrics.
    """
    return float(np.mean(oof_fold_scores(prediction, y, tests, metric, classes, positive_class)))


# --- greedy ensemble selection -----------------------------------------------------------

@dataclass(frozen=True)
class Selection:
    """Integer weights per candidate (how often it was picked) and the blend's OOF score."""

    weights: list[int]
    score: float
    path: list[float]
    # Whether the budget kept a candidate out in some round.
    priced_out: bool = False

    @property
    def members(self) -> list[int]:
        return [i for i, w in enumerate(self.weights) if w]


def greedy_selection(oofs: Sequence[np.ndarray], y: Any, tests: Tests, metric: str,
                     classes: np.ndarray | None, positive_class: Any = None,
                     rounds: int = 20, costs: Sequence[float] | None = None,
                     budget: float = math.inf, task_type: str = "") -> Selection:
    """Caruana's greedy selection with replacement over the candidates' OOF predictions.

    Starts from the best single candidate; each round adds the candidate (possibly one
    already in) whose addition scores best; the returned weights are those of the best
    round (the earlier on a tie), so the result is never worse than the best single one.
    With ``costs`` (each candidate's refit seconds), a candidate not yet in joins only while
    the members' costs together stay within ``budget``: the ensemble that can be refitted in
    the time left, not a better one that cannot (the best single one is always allowed).

    Args:
        oofs: each candidate's OOF predictions, one layout for all.
        y: the true targets; tests: each fold's test row positions.
        metric: a name from ``METRICS``; classes, positive_class: as for ``score_oof``.
        rounds: the most picks in all.
        costs: each candidate's cost to include (seconds to refit it); None: no limit.
        budget: the most the members may cost together.
        task_type: with "binary" and a threshold metric, blends are scored at their tuned
            threshold (``decided_score``), as the shipped model decides.
    """
    if not oofs:
        raise ValueError("greedy selection needs at least one candidate")
    direction = get_metric(metric).direction

    def score(prediction: np.ndarray) -> float:
        return decided_score(prediction, y, tests, metric, classes, positive_class, task_type)

    singles = [score(o) for o in oofs]
    first = _best_index(singles, direction)
    counts = [0] * len(oofs)
    counts[first] = 1
    spent = 0.0 if costs is None else float(costs[first])
    total = np.asarray(oofs[first], dtype=float).copy()
    best_counts, best_score, path = list(counts), singles[first], [singles[first]]
    priced_out = False
    for step in range(2, rounds + 1):
        allowed = [counts[i] > 0 or costs is None or spent + costs[i] <= budget
                   for i in range(len(oofs))]
        priced_out = priced_out or not all(allowed)
        ruled_out = -math.inf if direction == "maximize" else math.inf
        tried = [score((total + o) / step) if ok else ruled_out
                 for o, ok in zip(oofs, allowed, strict=True)]
        pick = _best_index(tried, direction)
        if costs is not None and counts[pick] == 0:
            spent += float(costs[pick])
        counts[pick] += 1
        total += oofs[pick]
        path.append(tried[pick])
        if is_better(tried[pick], best_score, direction):
            best_counts, best_score = list(counts), tried[pick]
    return Selection(weights=best_counts, score=best_score, path=path, priced_out=priced_out)


def _best_index(scores: Sequence[float], direction: str) -> int:
    best = 0
    for i, value in enumerate(scores):
        if is_better(value, scores[best], direction):
            best = i
    return best


# --- decision thresholds -------------------------------------------------------------------

@dataclass(frozen=True)
class ThresholdChoice:
    """A cut-off on the positive-class probability, its cross-fitted OOF score, and the
    score of the plain most-probable-class decision on the same rows."""

    threshold: float
    score: float
    default_score: float
    # Each fold's score at the cut-off chosen on the other folds (``score`` is their mean).
    fold_scores: tuple[float, ...] = ()

    @property
    def helps(self) -> bool:
        """Whether the cut-off beats the most-probable-class decision on the same rows."""
        return is_better(self.score, self.default_score, "maximize")


def thresholds_apply(task_type: str, metric: str, classes: np.ndarray | None) -> bool:
    """Whether predictions for this task are cut at a tuned threshold (binary f1 and
    balanced accuracy)."""
    return task_type == "binary" and metric in THRESHOLD_METRICS and classes is not None \
        and len(classes) == 2


def tested_rows(oof: np.ndarray, y: Any, tests: Sequence[np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The OOF predictions, targets and fold test positions of the rows some fold tests.

    Shuffled K-fold tests every row; time-ordered folds never test the earliest stretch,
    whose OOF rows are NaN. Choices cross-fitted over "the other folds' rows" must not see
    those, so they get the tested rows alone, the test positions renumbered to match.
    """
    y = np.asarray(y)
    tested = np.unique(np.concatenate(list(tests)))
    if len(tested) == len(y):
        return oof, y, list(tests)
    position = np.full(len(y), -1)
    position[tested] = np.arange(len(tested))
    return oof[tested], y[tested], [position[test] for test in tests]


def decided_score(prediction: np.ndarray, y: Any, tests: Tests, metric: str,
                  classes: np.ndarray | None, positive_class: Any = None,
                  task_type: str = "binary") -> float:
    """``score_oof`` of the decision the model would ship: at the tuned threshold (its
    cross-fitted score) where thresholds apply and the cut-off helps, else as it stands."""
    if thresholds_apply(task_type, metric, classes):
        found = tune_threshold(*tested_rows(prediction, y, tests), metric, classes,  # type: ignore[arg-type]
                               positive_class)
        return max(found.score, found.default_score)
    return score_oof(prediction, y, tests, metric, classes, positive_class)


def tune_threshold(proba: np.ndarray, y: Any, tests: Tests, metric: str, classes: np.ndarray,
                   positive_class: Any = None) -> ThresholdChoice:
    """The cut-off that maximises ``metric`` on OOF probabilities (binary f1 or balanced
    accuracy), with its cross-fitted score: each fold scored at the cut-off chosen on the
    other folds.

    Args:
        proba: OOF class probabilities, columns in ``classes`` order.
        y: the true labels; tests: each fold's test row positions.
        metric: "f1" or "balanced_accuracy".
        classes: the two labels; positive_class: the positive one (default: the last).
    """
    if metric not in THRESHOLD_METRICS or len(classes) != 2:
        raise ValueError(f"thresholds are tuned for binary {' or '.join(THRESHOLD_METRICS)}")
    pos = resolve_positive_class(positive_class, classes)
    p = proba[:, list(classes).index(pos)]
    is_pos = np.asarray(y) == pos
    cuts = np.unique(np.quantile(p, np.linspace(0.0, 1.0, THRESHOLD_CANDIDATES)))
    rows = np.arange(len(p))
    crossed = []
    for test in tests:
        rest = np.setdiff1d(rows, test)
        chosen = cuts[int(np.argmax(_binary_scores(p[rest], is_pos[rest], cuts, metric)))]
        crossed.append(float(_binary_scores(p[test], is_pos[test], np.array([chosen]), metric)[0]))
    default = score_oof(proba, y, tests, metric, classes, positive_class)
    threshold = float(cuts[int(np.argmax(_binary_scores(p, is_pos, cuts, metric)))])
    return ThresholdChoice(threshold=threshold, score=float(np.mean(crossed)),
                           default_score=default, fold_scores=tuple(crossed))


def _binary_scores(p: np.ndarray, is_pos: np.ndarray, cuts: np.ndarray, metric: str) -> np.ndarray:
    """``metric`` of predicting positive where ``p >= cut``, for every cut at once."""
    order = np.argsort(p)
    sorted_p, sorted_pos = p[order], is_pos[order].astype(float)
    # Rows at or above a cut: everything from the first index whose p >= cut.
    start = np.searchsorted(sorted_p, cuts, side="left")
    pos_above = np.concatenate([np.cumsum(sorted_pos[::-1])[::-1], [0.0]])[start]
    n_above = len(p) - start
    n_pos = float(sorted_pos.sum())
    tp, fp = pos_above, n_above - pos_above
    fn, tn = n_pos - tp, (len(p) - n_pos) - fp
    if metric == "f1":
        denominator = 2 * tp + fp + fn
        return np.where(denominator > 0, 2 * tp / np.maximum(denominator, _EPS), 0.0)
    recall_pos = tp / max(n_pos, _EPS)
    recall_neg = tn / max(len(p) - n_pos, _EPS)
    return (recall_pos + recall_neg) / 2


# --- probability calibration ---------------------------------------------------------------

@dataclass(frozen=True)
class CalibrationChoice:
    """A calibration map (method and parameters), its cross-fitted OOF log loss, and the
    uncalibrated log loss on the same rows."""

    method: str
    params: list[float]
    score: float
    default_score: float


def fit_calibration(proba: np.ndarray, y: Any, classes: np.ndarray) -> tuple[str, list[float]]:
    """Platt scaling of the last class's log-odds (two labels), else one temperature.

    Args:
        proba: class probabilities, columns in ``classes`` order.
        y: the true labels; classes: the labels.
    """
    index = np.searchsorted(classes, np.asarray(y))
    if len(classes) == 2:
        z, hit = _logit(proba[:, 1]), (index == 1).astype(float)

        def loss(ab: np.ndarray) -> float:
            s = ab[0] * z + ab[1]
            return float(np.mean(np.logaddexp(0.0, s) - hit * s))

        found = minimize(loss, np.array([1.0, 0.0]), method="L-BFGS-B")
        return "platt", [float(v) for v in found.x]
    logs = np.log(np.clip(proba, _EPS, 1.0))

    def nll(log_t: float) -> float:
        scaled = logs / math.exp(log_t)
        scaled -= scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        return float(np.mean(log_norm - scaled[np.arange(len(index)), index]))

    found_t = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
    return "temperature", [float(math.exp(found_t.x))]


def calibrate(proba: np.ndarray, method: str, params: Sequence[float]) -> np.ndarray:
    """Apply a calibration map from ``fit_calibration`` to probability columns."""
    if method == "platt":
        last = 1.0 / (1.0 + np.exp(-(params[0] * _logit(proba[:, 1]) + params[1])))
        return np.column_stack([1.0 - last, last])
    if method == "temperature":
        scaled = np.log(np.clip(proba, _EPS, 1.0)) / params[0]
        scaled -= scaled.max(axis=1, keepdims=True)
        out = np.exp(scaled)
        return out / out.sum(axis=1, keepdims=True)
    raise ValueError(f"unknown calibration {method!r}")


def choose_calibration(proba: np.ndarray, y: Any, tests: Tests,
                       classes: np.ndarray) -> CalibrationChoice:
    """The calibration fitted on all OOF rows, with its cross-fitted log loss (each fold
    calibrated by a map fitted on the other folds) and the uncalibrated log loss."""
    y = np.asarray(y)
    rows = np.arange(len(y))
    crossed = []
    for test in tests:
        rest = np.setdiff1d(rows, test)
        method, params = fit_calibration(proba[rest], y[rest], classes)
        crossed.append(score_predictions("log_loss", y[test],
                                         proba=calibrate(proba[test], method, params),
                                         classes=classes))
    method, params = fit_calibration(proba, y, classes)
    return CalibrationChoice(method=method, params=params, score=float(np.mean(crossed)),
                             default_score=score_oof(proba, y, tests, "log_loss", classes))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


# --- the estimators that are saved -------------------------------------------------------

class WeightedEnsemble(BaseEstimator):
    """Members fitted on the same rows, combined by integer weights: the weighted mean of
    their class probabilities (one-hot labels for a member without ``predict_proba``) or of
    their predicted values."""

    def __init__(self, members: Sequence[Any] = (), weights: Sequence[int] = (),
                 task_type: str = "binary") -> None:
        self.members = members
        self.weights = weights
        self.task_type = task_type

    def fit(self, X: Any, y: Any) -> WeightedEnsemble:
        if len(self.members) != len(self.weights) or not any(self.weights):
            raise ValueError("an ensemble needs one weight per member, not all zero")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.members_ = [clone(m).fit(X, y) for m in self.members]
        if self.task_type != "regression":
            self.classes_ = np.unique(np.asarray(y))
        return self

    def _blend(self, X: Any) -> np.ndarray:
        classes = None if self.task_type == "regression" else self.classes_
        return blend([fold_predictions(m, X, classes) for m in self.members_], self.weights)

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.task_type == "regression":
            raise AttributeError("a regression ensemble has no predict_proba")
        return self._blend(X)

    def predict(self, X: Any) -> np.ndarray:
        if self.task_type == "regression":
            return self._blend(X)
        return decode(self._blend(X), self.classes_)


class ThresholdClassifier(BaseEstimator):
    """A binary classifier that predicts the positive class where its probability reaches
    ``threshold`` (instead of the most probable class)."""

    def __init__(self, estimator: Any = None, threshold: float = 0.5,
                 positive_class: Any = None) -> None:
        self.estimator = estimator
        self.threshold = threshold
        self.positive_class = positive_class

    def fit(self, X: Any, y: Any) -> ThresholdClassifier:
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = np.unique(np.asarray(y))
        if len(self.classes_) != 2:
            raise ValueError("a decision threshold needs exactly two classes")
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return fold_predictions(self.estimator_, X, self.classes_)

    def predict(self, X: Any) -> np.ndarray:
        pos = resolve_positive_class(self.positive_class, self.classes_)
        column = list(self.classes_).index(pos)
        other = self.classes_[1 - column]
        return np.where(self.predict_proba(X)[:, column] >= self.threshold, pos, other)


class CalibratedModel(BaseEstimator):
    """A classifier whose probabilities pass through a map fitted on out-of-fold ones."""

    def __init__(self, estimator: Any = None, method: str = "temperature",
                 params: Sequence[float] = (1.0,)) -> None:
        self.estimator = estimator
        self.method = method
        self.params = params

    def fit(self, X: Any, y: Any) -> CalibratedModel:
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = np.unique(np.asarray(y))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return calibrate(fold_predictions(self.estimator_, X, self.classes_), self.method,
                         self.params)

    def predict(self, X: Any) -> np.ndarray:
        return decode(self.predict_proba(X), self.classes_)


def base_pipelines(model: Any) -> list[Any]:
    """The fitted preprocessing + estimator pipelines inside a saved model (itself when it
    is one): an ensemble's members, a threshold's or calibration's estimator."""
    if isinstance(model, WeightedEnsemble):
        return [p for member in model.members_ for p in base_pipelines(member)]
    if isinstance(model, ThresholdClassifier | CalibratedModel):
        return base_pipelines(model.estimator_)
    return [model]


def model_features(model: Any, profile: DataProfile) -> list[str]:
    """The raw input columns a fitted model really uses (all members' together, in the
    profile's order).

    Args:
        model: a fitted pipeline, ensemble, or threshold / calibration wrapper.
        profile: the data profile the pipelines were built from.
    """
    used = {f for p in base_pipelines(model) for f in features_used(p, profile)}
    return [f for f in profile.features if f in used] + sorted(used - set(profile.features))


def final_estimators(model: Any) -> list[Any]:
    """The last step of each pipeline inside ``model``."""
    return [p.steps[-1][1] if isinstance(p, Pipeline) else p for p in base_pipelines(model)]
