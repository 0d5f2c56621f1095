"""The part of a study's history a model-based sampler learns from."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hyperpilot.tools.space import SearchSpace
from hyperpilot.tools.types import Config, TrialRecord, TrialState

DIRECTIONS = ("maximize", "minimize")


def observed(history: Sequence[TrialRecord], space: SearchSpace,
             direction: str) -> tuple[list[Config], np.ndarray]:
    """COMPLETE trials of ``space`` with finite scores, oriented so higher is better.

    Records whose config the space does not contain exactly (another model's trials, an
    older space) are left out rather than clipped into it, which would misplace them.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    sign = 1.0 if direction == "maximize" else -1.0
    configs: list[Config] = []
    scores: list[float] = []
    for record in history:
        if record.state is not TrialState.COMPLETE or record.score is None:
            continue
        if not math.isfinite(record.score) or not space.contains(record.config):
            continue
        configs.append(record.config)
        scores.append(sign * record.score)
    return configs, np.asarray(scores, dtype=float)
