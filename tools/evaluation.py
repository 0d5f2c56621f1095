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

from hyperpilot.tools.importance import MAX_ROWS, permutation_importance

# Shuffles per feature, most and fewest (a spread needs two); rows, fewest.
REPEATS, MIN_REPEATS, MIN_ROWS = 5, 2, 200


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


def importance_shape(n_features: int, n_rows: int, seconds_per_row: float,
                     budget: float) -> tuple[int, int] | None:
    """How many rows and shuffles per feature fit ``budget`` seconds, at one predict call per
    shuffle and ``seconds_per_row`` a row: the most rows (up to ``MAX_ROWS``) at ``REPEATS``,
    then fewer shuffles, down to ``MIN_ROWS`` and ``MIN_REPEATS``; None when even that
    does not fit."""
    rows = min(n_rows, MAX_ROWS)
    for repeats in range(REPEATS, MIN_REPEATS - 1, -1):
        calls = n_features * repeats + 1
        fits = int(budget / max(calls * seconds_per_row, 1e-12))
        if fits >= min(rows, MIN_ROWS):
            return min(rows, fits), repeats
    return None


def bounded_importance(model: Any, X: pd.DataFrame, y: pd.Series, features: list[str],
                       metric: str, positive_class: Any, seconds_per_row: float,
                       budget: float, seed: int = 0) -> Importance:
    """Permutation importance of ``model`` on holdout rows, sized to finish within ``budget``
    seconds (``importance_shape``); an empty table with the reason when it cannot.

    Args:
        model: the fitted model, taking raw columns; never fitted on ``X``.
        X: holdout rows, raw columns; y: their targets.
        features: the columns to shuffle.
        metric: the run's metric; positive_class: its positive label, if binary.
        seconds_per_row: the model's measured batch prediction time per row.
        budget: the seconds the importances may take.
        seed: seeds the row sample and the shuffles.
    """
    if not features or len(X) == 0:
        return Importance(note="no features or no holdout rows to shuffle")
    shape = importance_shape(len(features), len(X), seconds_per_row, budget)
    if shape is None:
        calls = len(features) * MIN_REPEATS + 1
        need = calls * seconds_per_row * min(len(X), MIN_ROWS)
        return Importance(note=f"not computed: shuffling {len(features)} columns would take "
                               f"about {math.ceil(need)} s, more than the {budget:.0f} s left "
                               "for it")
    rows, repeats = shape
    if rows < len(X):
        sample = np.random.default_rng(seed).choice(len(X), rows, replace=False)
        X, y = X.iloc[np.sort(sample)], y.iloc[np.sort(sample)]
    started = time.perf_counter()
    table = permutation_importance(model, X, y, features, metric, positive_class,
                                   n_repeats=repeats, seed=seed)
    seconds = time.perf_counter() - started
    return Importance(table=table, rows=rows, repeats=repeats, seconds=round(seconds, 3),
                      note=f"{repeats} shuffles of each column on {rows} holdout rows")
