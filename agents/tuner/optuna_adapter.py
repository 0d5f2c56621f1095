"""hyperpilot's samplers as an ``optuna.samplers.BaseSampler`` (needs the ``[bench]`` extra).

    study = optuna.create_study(sampler=OptunaSampler(make_sampler("surrogate"), seed=0))

Parameters present in every finished trial (Optuna's intersection search space) are
proposed jointly by the hyperpilot sampler from the COMPLETE trials; any other parameter
is sampled independently at random, as Optuna's own relative samplers do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.search_space import IntersectionSearchSpace
from optuna.trial import FrozenTrial, TrialState

from hyperpilot.agents.tuner.samplers import Sampler
from hyperpilot.tools.space import CategoricalDim, FloatDim, IntDim, SearchSpace
from hyperpilot.tools.types import TrialRecord


def to_space(distributions: dict[str, BaseDistribution]) -> SearchSpace:
    dims: list[Any] = []
    for name, dist in distributions.items():
        if isinstance(dist, CategoricalDistribution):
            dims.append(CategoricalDim(name=name, choices=list(dist.choices)))
        elif isinstance(dist, IntDistribution):
            dims.append(IntDim(name=name, low=dist.low, high=dist.high, log=dist.log, step=dist.step))
        elif isinstance(dist, FloatDistribution):
            dims.append(FloatDim(name=name, low=dist.low, high=dist.high, log=dist.log, step=dist.step))
        else:
            raise TypeError(f"unsupported Optuna distribution for {name}: {dist!r}")
    return SearchSpace(dims=dims)


def to_records(trials: list[FrozenTrial], names: list[str]) -> list[TrialRecord]:
    return [TrialRecord(number=t.number, model="", config={n: t.params[n] for n in names},
                        state="COMPLETE", score=t.value)
            for t in trials if t.state == TrialState.COMPLETE and t.value is not None
            and all(n in t.params for n in names)]


class OptunaSampler(optuna.samplers.BaseSampler):
    """Wraps a stateless hyperpilot sampler; randomness from ``seed``."""

    def __init__(self, sampler: Sampler, seed: int | None = None) -> None:
        self.sampler = sampler
        self._rng = np.random.default_rng(seed)
        self._space = IntersectionSearchSpace()
        self._independent = optuna.samplers.RandomSampler(seed=seed)

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        space = self._space.calculate(study)
        return {n: d for n, d in space.items() if not d.single()}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        space = to_space(search_space)
        history = to_records(study.get_trials(deepcopy=False), space.names)
        direction = "maximize" if study.direction == optuna.study.StudyDirection.MAXIMIZE else "minimize"
        return self.sampler.suggest(history, space, self._rng, direction=direction)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._independent.reseed_rng()
