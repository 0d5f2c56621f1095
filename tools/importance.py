"""Permutation importance of a fitted pipeline's raw input columns. No LLM here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance as sklearn_permutation_importance

from hyperpilot.tools.evaluate import get_metric, score_pipeline

MAX_ROWS = 2000
# A trained model's feature is a suspected leak when shuffling it alone costs at least this
# share of the model's gain over the trivial baseline, and it alone scores at least
# SUSPECT_SCORE (balanced accuracy or R^2): one column doing nearly all of the work.
DOMINANCE_SHARE = 0.5
SUSPECT_SCORE = 0.95


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
    X = X.reset_index(drop=True)  # the shuffled columns rejoin the rest by index
    result = sklearn_permutation_importance(
        pipeline, X[features], y, scoring=_scorer(X, metric, positive_class),
        n_repeats=n_repeats, random_state=int(rng.integers(2**31 - 1)))
    table = [{"feature": feature, "importance": float(mean), "std": float(std)}
             for feature, mean, std in zip(features, result.importances_mean,
                                           result.importances_std, strict=True)]
    return sorted(table, key=lambda row: -row["importance"])


def _scorer(X: pd.DataFrame, metric: str, positive_class: Any) -> Callable[..., float]:
    """``metric`` oriented so that higher is better, on ``X`` with the columns it is given
    in place of its own: scikit-learn then shuffles only those, not every column of ``X``."""
    sign = 1.0 if get_metric(metric).direction == "maximize" else -1.0

    def score(pipeline: Any, shuffled: pd.DataFrame, y: pd.Series) -> float:
        frame = pd.concat([shuffled, X.drop(columns=shuffled.columns)], axis=1)[X.columns]
        return sign * score_pipeline(pipeline, frame, y, metric, positive_class)

    return score


def dominant_leaks(pipeline: Any, X: pd.DataFrame, y: pd.Series, alone: dict[str, str],
                   metric: str, gain: float, positive_class: Any = None,
                   seed: int = 0) -> dict[str, str]:
    """Features a fitted model leans on so heavily, and that predict the target so well
    alone, that they are likely leaks (a post-outcome or copied column); with why.

    Catches what the screen before tuning lets through (it flags only near-perfect single
    features): a noisy copy of the target that the winner then relies on.

    Args:
        pipeline: the fitted winner, taking raw columns.
        X: holdout rows (raw columns); y: their targets.
        alone: the features that alone score at least ``SUSPECT_SCORE``, with why
            (``leakage_flags(single_feature_scores(...), task_type, SUSPECT_SCORE)``).
        metric: the run's metric; gain: the model's holdout score minus the trivial
            baseline's, oriented so that positive is better.
        positive_class: the positive label for binary metrics.
        seed: seeds the shuffles.
    """
    if gain <= 0 or not alone:
        return {}
    # Shuffling runs only for the single-feature screen's hits, which are rare.
    table = permutation_importance(pipeline, X, y, list(alone), metric, positive_class,
                                   n_repeats=3, seed=seed)
    return {row["feature"]: f"{alone[row['feature']]}, and shuffling it costs the model "
                            f"{row['importance']:.3f} of its {gain:.3f} gain over the trivial "
                            "baseline"
            for row in table if row["importance"] >= DOMINANCE_SHARE * gain}
