"""What a report's plots are drawn from: the holdout predictions of the model the holdout
scored, and its permutation importances within a time budget. Both are taken before the
model is refit on every row (which would have seen the holdout). No LLM here.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from hyperpilot.tools.evaluate import score_pipeline
from hyperpilot.tools.importance import MAX_ROWS, permutation_importance

# Shuffles per feature, most and fewest (a spread needs two); rows, fewest.
REPEATS, MIN_REPEATS, MIN_ROWS = 5, 2, 200
ROW_MARGIN = 0.8


class Importance(BaseModel):
    """Permutation importances (largest first), how they were taken, or why not."""

    table: list[dict[str, Any]] = Field(default_factory=list)
    rows: int = 0
    repeats: int = 0
    seconds: float = 0.0
    note: str = ""


def holdout_predictions(model: Any, X: pd.DataFrame, y: pd.Series) -> tuple[pd.DataFrame, list[Any]]:
    """The true and predicted value of each holdout row and, for a classifier with
    ``predict_proba``, one ``proba_<i>`` column per class; with the classes in that order
    (empty for a regressor or a classifier without probabilities)."""
    frame = pd.DataFrame({"true": np.asarray(y), "predicted": np.asarray(model.predict(X))})
    classes = getattr(model, "classes_", None)
    if classes is None or not hasattr(model, "predict_proba"):
        return frame, []
    proba = np.asarray(model.predict_proba(X), dtype=float)
    columns = pd.DataFrame(proba, columns=[f"proba_{i}" for i in range(proba.shape[1])])
    return pd.concat([frame, columns], axis=1), [_plain(c) for c in classes]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def repeats_within(budget: float, n_features: int, call_seconds: float) -> int:
    """How many shuffles of each of ``n_features`` columns fit ``budget`` seconds at
    ``call_seconds`` a scoring call (one for the unshuffled score, one per shuffle), at most
    ``REPEATS``; 0 when fewer than ``MIN_REPEATS`` fit."""
    fits = int((budget - call_seconds) / max(n_features * call_seconds, 1e-12))
    return min(fits, REPEATS) if fits >= MIN_REPEATS else 0


def bounded_importance(model: Any, X: pd.DataFrame, y: pd.Series, features: list[str],
                       metric: str, positive_class: Any, budget: float,
                       seed: int = 0) -> Importance:
    """Permutation importance of ``model`` on holdout rows within ``budget`` seconds: one
    scoring call is timed on up to ``MAX_ROWS`` rows, and as many shuffles as fit are taken
    (at most ``REPEATS``); when two do not fit, on fewer rows (timed again, at least
    ``MIN_ROWS``); else an empty table with the reason.

    Args:
        model: the fitted model, taking raw columns; never fitted on ``X``.
        X: holdout rows, raw columns; y: their targets.
        features: the columns to shuffle.
        metric: the run's metric; positive_class: its positive label, if binary.
        budget: the seconds the importances may take, the timing included.
        seed: seeds the row sample and the shuffles.
    """
    if not features or len(X) == 0:
        return Importance(note="no features or no holdout rows to shuffle")
    started = time.perf_counter()
    rows = min(len(X), MAX_ROWS)
    while True:
        X_rows, y_rows = _sample(X, y, rows, seed)
        call = time_scoring(model, X_rows, y_rows, metric, positive_class)
        left = budget - (time.perf_counter() - started)
        repeats = repeats_within(left, len(features), call)
        if repeats:
            break
        # A call costs about its rows' share (a fixed part makes it more: the margin), so
        # fewer rows, timed again, if that may fit.
        fewer = int(ROW_MARGIN * rows * left / max((len(features) * MIN_REPEATS + 1) * call, 1e-12))
        if rows <= MIN_ROWS or fewer < MIN_ROWS or left <= 0:
            need = (len(features) * MIN_REPEATS + 1) * call
            return Importance(note=f"not computed: shuffling {len(features)} columns would take "
                                   f"about {math.ceil(need)} s, more than the {max(left, 0):.0f} "
                                   "s left for it")
        rows = min(fewer, rows - 1)
    table = permutation_importance(model, X_rows, y_rows, features, metric, positive_class,
                                   n_repeats=repeats, seed=seed)
    return Importance(table=table, rows=rows, repeats=repeats,
                      seconds=round(time.perf_counter() - started, 3),
                      note=f"{repeats} shuffles of each column on {rows} holdout rows")


def _sample(X: pd.DataFrame, y: pd.Series, rows: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    if rows >= len(X):
        return X, y
    picked = np.sort(np.random.default_rng(seed).choice(len(X), rows, replace=False))
    return X.iloc[picked], y.iloc[picked]


def time_scoring(model: Any, X: pd.DataFrame, y: pd.Series, metric: str,
                 positive_class: Any) -> float:
    """Seconds one scoring call of ``model`` on these rows takes, as a shuffle's would."""
    started = time.perf_counter()
    score_pipeline(model, X.copy(), y, metric, positive_class)
    return time.perf_counter() - started
