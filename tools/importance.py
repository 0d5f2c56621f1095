"""Permutation importance of a fitted pipeline's raw input columns. No LLM here."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hyperpilot.tools.evaluate import get_metric, score_pipeline

MAX_ROWS = 2000


def permutation_importance(pipeline: Any, X: pd.DataFrame, y: pd.Series, features: list[str],
                           metric: str, positive_class: Any = None, n_repeats: int = 5,
                           seed: int = 0) -> list[dict[str, Any]]:
    """How much ``metric`` worsens when each feature's values are shuffled, largest first.

    Returns one ``{"feature", "importance", "std"}`` per feature; ``importance`` is the mean
    loss in score over ``n_repeats`` shuffles (positive: the model relies on the column),
    signed so that larger is always more important whatever the metric's direction.

    Args:
        pipeline: a fitted pipeline that takes the raw columns of ``X``.
        X: rows never used for fitting (a holdout), raw columns; at most 2,000 are used.
        y: their true targets.
        features: the columns to shuffle, one at a time.
        metric: a metric name from ``METRICS``.
        positive_class: the positive label for binary metrics.
        n_repeats: shuffles per feature.
        seed: seeds the shuffles and the row sample.
    """
    rng = np.random.default_rng(seed)
    if len(X) > MAX_ROWS:
        rows = rng.choice(len(X), MAX_ROWS, replace=False)
        X, y = X.iloc[rows], y.iloc[rows]
    sign = 1.0 if get_metric(metric).direction == "maximize" else -1.0
    base = score_pipeline(pipeline, X, y, metric, positive_class)
    table = []
    for feature in features:
        losses = [sign * (base - _shuffled_score(pipeline, X, y, feature, metric, positive_class,
                                                 rng)) for _ in range(n_repeats)]
        table.append({"feature": feature, "importance": float(np.mean(losses)),
                      "std": float(np.std(losses))})
    return sorted(table, key=lambda row: -row["importance"])


def _shuffled_score(pipeline: Any, X: pd.DataFrame, y: pd.Series, feature: str, metric: str,
                    positive_class: Any, rng: np.random.Generator) -> float:
    shuffled = X.copy()
    shuffled[feature] = rng.permutation(shuffled[feature].to_numpy())
    return score_pipeline(pipeline, shuffled, y, metric, positive_class)
