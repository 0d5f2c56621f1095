"""Measure what a saved model costs to deploy and check it against the task's constraints.

Latency is the one that counts for ``max_latency_ms``: the median wall time of predicting a
batch of raw rows, divided by its rows ("a millisecond a row" as batch scoring means it).
The single-row latency (one row per ``predict`` call, as an online service sees it) is
measured and reported beside it, not checked. No LLM here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline

from hyperpilot.tools.ensemble import final_estimators, model_features
from hyperpilot.tools.errors import DataError
from hyperpilot.tools.types import ConstraintResult, Constraints, DataProfile, DeploymentFacts

MAX_BATCH_ROWS = 1000
BATCH_REPEATS = 5
SINGLE_ROW_CALLS = 20
BUDGET_SECONDS = 2.0
BYTES_PER_MB = 1_000_000
# Families whose fitted model a person can read: coefficients or a tree.
_INTERPRETABLE_MODULES = ("sklearn.linear_model", "sklearn.tree")


def measure_deployment(pipeline: Any, X_rows: pd.DataFrame, path_to_joblib: Path,
                       profile: DataProfile, budget_s: float = BUDGET_SECONDS) -> DeploymentFacts:
    """Time ``pipeline.predict`` on raw rows and read the saved model's size and inputs.

    The batch is the first (at most) 1,000 rows of ``X_rows``, predicted up to 5 times;
    single rows are predicted up to 20 times (after one untimed warm-up call). Repeats stop
    early once ``budget_s`` is spent, after at least one batch and three single rows, so a
    normal model takes well under 2 s.

    Args:
        pipeline: the fitted pipeline (the one saved at ``path_to_joblib``).
        X_rows: raw rows with the original columns, e.g. the holdout without its target.
        path_to_joblib: the saved model file.
        profile: the data profile the pipeline was built from.
        budget_s: soft cap on the seconds spent timing.
    """
    path = Path(path_to_joblib)
    if not path.is_file():
        raise DataError(f"no saved model at {path}")
    if len(X_rows) == 0:
        raise DataError("no rows to time predictions on")
    batch = X_rows.iloc[:MAX_BATCH_ROWS]
    singles = [batch.iloc[[i % len(batch)]] for i in range(SINGLE_ROW_CALLS)]
    pipeline.predict(singles[0])
    deadline = time.perf_counter() + budget_s
    batch_ms = _timed_calls(pipeline, [batch] * BATCH_REPEATS, 1, deadline - 0.3 * budget_s)
    single_ms = _timed_calls(pipeline, singles, 3, deadline)
    used = model_features(pipeline, profile)
    models = [_final_estimator(p) for p in final_estimators(pipeline)]
    names = sorted({type(m).__name__ for m in models})
    return DeploymentFacts(
        latency_ms_per_row_batch=float(np.median(batch_ms)) / len(batch),
        latency_ms_single_row=float(np.median(single_ms)), batch_rows=len(batch),
        model_mb=path.stat().st_size / BYTES_PER_MB, n_features=len(used), features=used,
        model=names[0] if len(names) == 1 else f"ensemble of {', '.join(names)}",
        interpretable=len(models) == 1
        and type(models[0]).__module__.startswith(_INTERPRETABLE_MODULES),
    )


def _timed_calls(pipeline: Any, inputs: list[pd.DataFrame], at_least: int,
                 deadline: float) -> list[float]:
    """Milliseconds of each ``predict`` call, stopping at ``deadline`` after ``at_least``."""
    times = []
    for rows in inputs:
        started = time.perf_counter()
        pipeline.predict(rows)
        times.append(1000 * (time.perf_counter() - started))
        if len(times) >= at_least and time.perf_counter() > deadline:
            break
    return times


def _final_estimator(pipeline: Any) -> Any:
    model = pipeline.steps[-1][1] if isinstance(pipeline, Pipeline) else pipeline
    if isinstance(model, CalibratedClassifierCV):
        return model.estimator
    if isinstance(model, TransformedTargetRegressor):
        return model.regressor
    return model


def check_constraints(facts: DeploymentFacts, constraints: Constraints) -> list[ConstraintResult]:
    """One result per stated constraint (latency, size, features, interpretability).

    Unconstrained fields give no result. A value exactly at its limit passes.

    Args:
        facts: what ``measure_deployment`` measured.
        constraints: the task's constraints.
    """
    results = []
    if constraints.max_latency_ms is not None:
        results.append(_latency(facts, constraints.max_latency_ms))
    if constraints.max_model_mb is not None:
        limit = constraints.max_model_mb
        results.append(_limit_result("max_model_mb", limit, facts.model_mb,
                                     f"model file {_num(facts.model_mb)} MB", f"{_num(limit)} MB"))
    if constraints.max_features is not None:
        limit = constraints.max_features
        results.append(_limit_result("max_features", limit, facts.n_features,
                                     f"the model uses {facts.n_features} input features",
                                     f"{limit}-feature", (", within", ", over")))
    if constraints.interpretable:
        results.append(_interpretable(facts))
    return results


def _latency(facts: DeploymentFacts, limit: float) -> ConstraintResult:
    result = _limit_result("max_latency_ms", limit, facts.latency_ms_per_row_batch,
                           f"predict latency {_num(facts.latency_ms_per_row_batch)} ms/row "
                           f"(batch of {facts.batch_rows})", f"{_num(limit)} ms")
    single = f"; a single-row call takes {_num(facts.latency_ms_single_row)} ms"
    return result.model_copy(update={"line": result.line + single})


def _limit_result(name: str, limit: float, measured: float, what: str, limit_text: str,
                  verdicts: tuple[str, str] = (" is within", " exceeds")) -> ConstraintResult:
    ok = measured <= limit
    verdict = verdicts[0] if ok else verdicts[1]
    return ConstraintResult(name=name, limit=limit, measured=measured, ok=ok,  # type: ignore[arg-type]
                            line=f"{what}{verdict} the {limit_text} limit")


def _interpretable(facts: DeploymentFacts) -> ConstraintResult:
    verdict = ("is a linear model or a tree, readable as it stands" if facts.interpretable
               else "is not a linear model or a tree, so it cannot be read directly")
    return ConstraintResult(name="interpretable", limit=True, measured=facts.interpretable,
                            ok=facts.interpretable, line=f"the model ({facts.model}) {verdict}")


def _num(value: float) -> str:
    """Three significant digits, without an exponent for everyday magnitudes."""
    return f"{value:.3g}" if 1e-3 <= abs(value) < 1e5 or value == 0 else f"{value:.2e}"
