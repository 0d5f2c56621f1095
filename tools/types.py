"""Types that flow between layers: the task, the data profile and the trial record."""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TaskType = Literal["binary", "multiclass", "regression"]
Direction = Literal["maximize", "minimize"]
Config = dict[str, Any]


class Budget(BaseModel):
    """How much a run may spend. ``time_limit`` is wall seconds for the whole run."""

    trials: int = Field(30, ge=1)
    time_limit: float | None = Field(None, gt=0)
    llm_tokens: int | None = Field(None, ge=0)


class Constraints(BaseModel):
    """Deployment constraints stated in the task; ``None`` means unconstrained."""

    max_latency_ms: float | None = None
    max_model_mb: float | None = None
    max_features: int | None = None
    interpretable: bool = False


class TaskSpec(BaseModel):
    """What the user asked for, resolved against the data."""

    text: str
    task_type: TaskType
    target: str
    metric: str
    direction: Direction
    positive_class: str | int | float | bool | None = None
    data_source: str = ""
    budget: Budget = Field(default_factory=Budget)
    constraints: Constraints = Field(default_factory=Constraints)
    # The date column the rows are ordered by when the task is a forecast: the holdout is
    # then the latest rows and cross-validation folds train on the past only.
    time_column: str | None = None


class ColumnProfile(BaseModel):
    name: str
    dtype: str
    kind: Literal["numeric", "categorical", "boolean", "datetime", "text", "id", "constant"]
    missing_fraction: float
    n_unique: int


class DataProfile(BaseModel):
    """What the data agent saw: shape, column kinds, target balance, leakage flags."""

    n_rows: int
    n_columns: int
    target: str
    columns: list[ColumnProfile]
    task_type: TaskType
    class_counts: dict[str, int] = Field(default_factory=dict)
    target_mean: float | None = None
    target_std: float | None = None
    target_skew: float | None = None
    missing_fraction: float = 0.0
    features: list[str] = Field(default_factory=list)
    dropped: dict[str, str] = Field(default_factory=dict)
    leakage: dict[str, str] = Field(default_factory=dict)

    @property
    def numeric_features(self) -> list[str]:
        kinds = {c.name: c.kind for c in self.columns}
        return [f for f in self.features if kinds.get(f) in ("numeric", "boolean")]

    @property
    def categorical_features(self) -> list[str]:
        kinds = {c.name: c.kind for c in self.columns}
        return [f for f in self.features if kinds.get(f) == "categorical"]

    @property
    def date_features(self) -> list[str]:
        kinds = {c.name: c.kind for c in self.columns}
        return [f for f in self.features if kinds.get(f) == "datetime"]

    @property
    def text_features(self) -> list[str]:
        kinds = {c.name: c.kind for c in self.columns}
        return [f for f in self.features if kinds.get(f) == "text"]

    @property
    def imbalance_ratio(self) -> float:
        """Largest over smallest class count; 1.0 for regression or balanced data."""
        if not self.class_counts:
            return 1.0
        counts = list(self.class_counts.values())
        return max(counts) / max(min(counts), 1)


class TrialState(StrEnum):
    COMPLETE = "COMPLETE"
    FAIL = "FAIL"
    PRUNED = "PRUNED"


class TrialRecord(BaseModel):
    """One finished trial. Frozen: a trial never changes once told to the study."""

    model_config = ConfigDict(frozen=True)

    number: int
    model: str
    config: Config
    state: TrialState
    score: float | None = None
    fold_scores: list[float] = Field(default_factory=list)
    seconds: float = 0.0
    sampler: str = ""
    plan_id: str = ""
    error: str = ""
    # What decided a sampler's proposal (surrogate weights, trust scores, LLM calls and
    # tokens spent); empty for enqueued configs and samplers that do not explain.
    tuner: dict[str, Any] = Field(default_factory=dict)


def ranked_trials(trials: Sequence[TrialRecord], direction: Direction | str) -> list[TrialRecord]:
    """The COMPLETE trials with a finite score, best first by ``direction``; the earlier
    trial (lower number) wins a tie."""
    sign = 1.0 if direction == "maximize" else -1.0
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.score is not None
            and math.isfinite(t.score)]
    return sorted(done, key=lambda t: (-sign * float(t.score), t.number))  # type: ignore[arg-type]


def best_trial(trials: Sequence[TrialRecord], direction: Direction | str) -> TrialRecord | None:
    """The best COMPLETE trial by ``direction`` (the earlier one wins a tie), or None."""
    ranked = ranked_trials(trials, direction)
    return ranked[0] if ranked else None


class DataSteps(BaseModel):
    """The preprocessing a plan chooses; the defaults are the plain pipeline.

    ``max_features`` keeps the k raw input columns with the highest forest importance for
    the target (fitted inside the pipeline, so cross-validation stays honest);
    ``numeric="quantile"`` maps numeric columns to a normal shape instead of standardising
    them (only for families that scale); ``categorical="ordinal"`` codes categories as
    integers instead of one-hot columns (suits trees and many categories).
    """

    max_features: int | None = Field(None, ge=1)
    numeric: Literal["standard", "quantile"] = "standard"
    categorical: Literal["onehot", "ordinal"] = "onehot"

    def describe(self) -> str:
        """One line for a report, e.g. "top 10 features by forest importance; ..."."""
        parts = ["all features" if self.max_features is None
                 else f"top {self.max_features} features by forest importance"]
        parts.append("quantile-normal numeric" if self.numeric == "quantile"
                     else "standardised numeric")
        parts.append("ordinal categoricals" if self.categorical == "ordinal"
                     else "one-hot categoricals")
        return "; ".join(parts)


class DeploymentFacts(BaseModel):
    """What a saved model costs to deploy, measured: latency, file size, inputs used.

    Latencies are wall milliseconds of ``predict`` on raw rows; ``model_mb`` is the size of
    the joblib file in megabytes of 1,000,000 bytes.
    """

    latency_ms_per_row_batch: float
    latency_ms_single_row: float
    batch_rows: int
    model_mb: float
    n_features: int
    features: list[str]
    model: str = ""
    interpretable: bool = False


class ConstraintResult(BaseModel):
    """One stated constraint against its measured value."""

    name: Literal["max_latency_ms", "max_model_mb", "max_features", "interpretable"]
    limit: float | bool
    measured: float | bool
    ok: bool
    line: str


class ShiftFinding(BaseModel):
    """How differently one column is distributed in the holdout than in the training rows.

    ``statistic`` is the Kolmogorov-Smirnov distance (numeric) or the total-variation
    distance of the category shares (categorical); ``p_value`` is already compared with
    the Bonferroni-corrected level; ``unseen_share`` is the share of holdout rows whose
    category never occurs in the training rows.
    """

    column: str
    kind: Literal["numeric", "categorical"]
    is_target: bool = False
    statistic: float
    p_value: float
    unseen_share: float = 0.0
    severe: bool
    line: str
