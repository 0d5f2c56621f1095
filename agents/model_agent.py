"""The model agent: the search space and starting configurations for each planned family."""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

from hyperpilot.agents.runner import AgentSpec, Decision, decide
from hyperpilot.tools.ensemble import CALIBRATION_METRICS
from hyperpilot.tools.space import FloatDim, IntDim, SearchSpace
from hyperpilot.tools.types import Config, DataProfile, TaskSpec
from hyperpilot.tools.zoo import get_model


class RangeChange(BaseModel):
    name: str
    low: float
    high: float


class SpaceDraft(BaseModel):
    """What the LLM model agent answers: numeric ranges to narrow."""

    narrow: list[RangeChange] = Field(default_factory=list)
    reason: str = ""


MODEL_AGENT = AgentSpec(name="model", prompt="model.j2", output_type=SpaceDraft)
# A narrowed range keeps at least this share of the full (log) width, so a confident
# but wrong model cannot shut the search out of most of the space.
MIN_KEPT_WIDTH = 0.25


def space_rules(family: str, task: TaskSpec, profile: DataProfile, n_train: int) -> SearchSpace:
    """The zoo's space for ``family``, with ranges the data or the metric cannot use cut away.

    A metric that scores the probabilities themselves (log loss) keeps classes unweighted:
    reweighting moves every predicted probability away from the classes' real frequencies,
    which such a metric charges for on every row.
    """
    space = get_model(family).space(task.task_type)
    dims = []
    for dim in space.dims:
        if family == "knn" and dim.name == "n_neighbors" and isinstance(dim, IntDim):
            fold_rows = max(2, int(n_train * 0.8) - 1)
            dim = dim.model_copy(update={"high": max(dim.low + 1, min(dim.high, fold_rows))})
        if dim.name == "class_weight" and task.metric in CALIBRATION_METRICS:
            dim = dim.model_copy(update={"choices": [None]})
        dims.append(dim)
    return SearchSpace(dims=dims)


def choose_space(family: str, task: TaskSpec, profile: DataProfile, n_train: int,
                 llm: object | None) -> Decision[SearchSpace]:
    """The rule-based space, narrowed by the LLM where it keeps the default config inside."""
    base = space_rules(family, task, profile, n_train)
    defaults = get_model(family).defaults(task.task_type)
    inputs = {"family": family, "task_type": task.task_type, "metric": task.metric,
              "n_rows": profile.n_rows, "n_features": len(profile.features),
              "space": base.describe()}
    return decide(MODEL_AGENT, inputs, llm,  # type: ignore[arg-type]
                  accept=lambda draft: narrowed(base, draft, defaults),
                  rules=lambda: base)


def narrowed(space: SearchSpace, draft: SpaceDraft, defaults: Config) -> SearchSpace:
    """Apply the LLM's narrowing where it is safe; unsafe changes are ignored one by one."""
    dims = []
    for dim in space.dims:
        change = next((c for c in draft.narrow if c.name == dim.name), None)
        if change is not None and isinstance(dim, FloatDim | IntDim):
            dim = _narrow_dim(dim, change, defaults.get(dim.name))
        dims.append(dim)
    return SearchSpace(dims=dims)


def _narrow_dim(dim: FloatDim | IntDim, change: RangeChange, default: object) -> FloatDim | IntDim:
    low, high = max(change.low, dim.low), min(change.high, dim.high)
    if isinstance(dim, IntDim):
        low, high = math.ceil(low), math.floor(high)
    if not low < high or (isinstance(default, int | float) and not low <= default <= high):
        return dim
    if _width(dim, low, high) < MIN_KEPT_WIDTH * _width(dim, dim.low, dim.high):
        return dim
    return dim.model_copy(update={"low": low, "high": high})


def _width(dim: FloatDim | IntDim, low: float, high: float) -> float:
    return math.log(high) - math.log(low) if dim.log else high - low
