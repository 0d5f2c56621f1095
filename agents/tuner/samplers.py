"""Samplers: small stateless objects that propose the next config from a study's history.

A sampler keeps no history of its own (the ``Study`` owns it), so it needs no save or
restore: the same history, space and generator state always give the same proposal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from hyperpilot.agents.tuner.gp import GPSampler, expected_improvement
from hyperpilot.agents.tuner.history import DIRECTIONS, observed
from hyperpilot.agents.tuner.surrogate_sampler import SurrogateSampler
from hyperpilot.agents.tuner.tpe import TPESampler
from hyperpilot.tools.errors import TaskSpecError
from hyperpilot.tools.space import SearchSpace
from hyperpilot.tools.types import Config, TrialRecord

__all__ = ["DIRECTIONS", "SAMPLERS", "GPSampler", "RandomSampler", "Sampler", "SurrogateSampler",
           "TPESampler", "expected_improvement", "make_sampler", "observed"]


class Sampler(Protocol):
    """Proposes one config of ``space``; must return plain Python scalars the space contains."""

    name: str

    def suggest(self, history: Sequence[TrialRecord], space: SearchSpace,
                rng: np.random.Generator, *, direction: str = "maximize") -> Config: ...


class RandomSampler:
    """Uniform sampling (log-uniform on log dimensions); ignores the history."""

    name = "random"

    def suggest(self, history: Sequence[TrialRecord], space: SearchSpace,
                rng: np.random.Generator, *, direction: str = "maximize") -> Config:
        return space.sample(rng)


SAMPLERS: dict[str, Callable[[], Sampler]] = {
    "random": RandomSampler, "gp": GPSampler, "tpe": TPESampler, "surrogate": SurrogateSampler}


def make_sampler(name: str) -> Sampler:
    """The sampler registered as ``name`` with default settings."""
    try:
        return SAMPLERS[name]()
    except KeyError:
        raise TaskSpecError(
            f"unknown sampler {name!r}; choose one of {', '.join(sorted(SAMPLERS))}") from None
