"""A TPE-style sampler: Parzen estimators of the good and the bad trials, one per dimension.

The trials are split at the ``gamma`` quantile of the (oriented) scores. For each
dimension, l(x) is a mixture of a uniform prior and truncated Gaussians on the unit
encoding of the good values (log and int dimensions included), or smoothed counts for a
categorical one; g(x) is the same for the bad values. Candidates drawn from l are ranked
by log l(x) - log g(x) over the dimensions they activate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from hyperpilot.agents.tuner.history import observed
from hyperpilot.tools.space import AnyDim, CategoricalDim, SearchSpace, same_choice
from hyperpilot.tools.types import Config, TrialRecord

MIN_BANDWIDTH, MAX_BANDWIDTH = 0.03, 0.3


@dataclass(frozen=True)
class Parzen:
    """One dimension's density: unit-scale centres and a bandwidth, or choice weights."""

    dim: AnyDim
    centres: np.ndarray
    bandwidth: float
    prior: float

    @classmethod
    def fit(cls, dim: AnyDim, values: list[object], prior: float) -> Parzen:
        if isinstance(dim, CategoricalDim):
            centres = np.asarray([[same_choice(v, c) for c in dim.choices] for v in values],
                                 dtype=float).reshape(len(values), dim.width)
            return cls(dim, centres, 0.0, prior)
        centres = np.asarray([dim.encode(v)[0] for v in values], dtype=float)
        spread = float(np.std(centres)) if len(centres) > 1 else MAX_BANDWIDTH
        width = 1.06 * spread * max(len(centres), 1) ** -0.2
        # Optuna's "magic clip": a floor that shrinks with the number of points, so a tight
        # cluster of good trials cannot collapse the search onto itself early.
        floor = max(MIN_BANDWIDTH, 1.0 / (len(centres) + 2))
        return cls(dim, centres, float(np.clip(width, floor, MAX_BANDWIDTH)), prior)

    def _choice_weights(self) -> np.ndarray:
        counts = self.centres.sum(axis=0) + self.prior / self.dim.width
        return counts / counts.sum()

    def draw(self, rng: np.random.Generator) -> object:
        if isinstance(self.dim, CategoricalDim):
            return self.dim.choices[int(rng.choice(self.dim.width, p=self._choice_weights()))]
        pick = int(rng.integers(len(self.centres) + 1)) if len(self.centres) else 0
        if pick == len(self.centres) or rng.uniform() < self.prior / (len(self.centres) + self.prior):
            return self.dim.decode([float(rng.uniform())])
        unit = self.centres[pick] + self.bandwidth * rng.standard_normal()
        unit = abs(unit) if unit < 0 else (2.0 - unit if unit > 1 else unit)  # reflect
        return self.dim.decode([float(np.clip(unit, 0.0, 1.0))])

    def log_density(self, values: list[object]) -> np.ndarray:
        if isinstance(self.dim, CategoricalDim):
            weights = self._choice_weights()
            return np.log([weights[int(np.argmax(self.dim.encode(v)))] for v in values])
        units = np.asarray([self.dim.encode(v)[0] for v in values], dtype=float)
        total = np.full(len(units), self.prior)  # the uniform prior's density is 1 on [0, 1]
        if len(self.centres):
            h = self.bandwidth
            mass = norm.cdf((1 - self.centres) / h) - norm.cdf(-self.centres / h)
            dens = norm.pdf((units[:, None] - self.centres[None, :]) / h) / (h * mass[None, :])
            total = total + dens.sum(axis=1)
        return np.log(total / (len(self.centres) + self.prior))


def split(y: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the good (top ``gamma`` share, at least one) and the bad trials."""
    order = np.argsort(-y, kind="stable")
    n_good = max(1, min(len(y) - 1, math.ceil(gamma * len(y))))
    return order[:n_good], order[n_good:]


def fit_models(space: SearchSpace, configs: list[Config],
               prior: float) -> dict[str, Parzen]:
    return {d.name: Parzen.fit(d, [c[d.name] for c in configs if d.name in c], prior)
            for d in space.dims}


def draw_config(space: SearchSpace, models: dict[str, Parzen],
                rng: np.random.Generator) -> Config:
    """A config with each active dimension drawn from its density, parents first."""
    drawn: Config = {}
    for dim in space.dims:
        if dim.condition is None or dim.condition.holds(drawn):
            drawn[dim.name] = models[dim.name].draw(rng)
    return space.repair(drawn)


def log_ratio(space: SearchSpace, good: dict[str, Parzen], bad: dict[str, Parzen],
              candidates: list[Config]) -> np.ndarray:
    score = np.zeros(len(candidates))
    for dim in space.dims:
        rows = [i for i, c in enumerate(candidates) if dim.name in c]
        if rows:
            values = [candidates[i][dim.name] for i in rows]
            score[rows] += good[dim.name].log_density(values) - bad[dim.name].log_density(values)
    return score


class TPESampler:
    """Tree-structured Parzen estimator (Bergstra et al. 2011), univariate, with a uniform
    prior in each density. Below ``n_startup`` usable trials it samples at random."""

    name = "tpe"

    def __init__(self, n_startup: int = 5, n_candidates: int = 24, gamma: float = 0.25,
                 prior: float = 1.0) -> None:
        self.n_startup = n_startup
        self.n_candidates = n_candidates
        self.gamma = gamma
        self.prior = prior

    def candidates(self, history: Sequence[TrialRecord], space: SearchSpace,
                   rng: np.random.Generator, n: int, *,
                   direction: str = "maximize") -> list[Config]:
        """Up to ``n`` distinct untried configs drawn from l(x), best ratio first."""
        configs, y = observed(history, space, direction)
        if len(configs) < max(self.n_startup, 2):
            return _distinct([space.sample(rng) for _ in range(n)], space, history)
        good_idx, bad_idx = split(y, self.gamma)
        good = fit_models(space, [configs[i] for i in good_idx], self.prior)
        bad = fit_models(space, [configs[i] for i in bad_idx], self.prior)
        drawn = _distinct([draw_config(space, good, rng) for _ in range(n)], space, history)
        ratio = log_ratio(space, good, bad, drawn)
        return [drawn[i] for i in np.argsort(-ratio, kind="stable")]

    def suggest(self, history: Sequence[TrialRecord], space: SearchSpace,
                rng: np.random.Generator, *, direction: str = "maximize") -> Config:
        ranked = self.candidates(history, space, rng, self.n_candidates, direction=direction)
        return ranked[0] if ranked else space.sample(rng)


def _distinct(configs: list[Config], space: SearchSpace,
              history: Sequence[TrialRecord]) -> list[Config]:
    seen = {space.key(r.config) for r in history}
    out: list[Config] = []
    for config in configs:
        key = space.key(config)
        if key not in seen:
            seen.add(key)
            out.append(config)
    return out
