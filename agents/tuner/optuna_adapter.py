"""hyperpilot's samplers as an ``optuna.samplers.BaseSampler`` (needs the ``[bench]`` extra).

    study = optuna.create_study(sampler=OptunaSampler(make_sampler("surrogate"), seed=0))

Parameters present in every finished trial (Optuna's intersection search space) are
proposed jointly by the hyperpilot sampler from the COMPLETE trials; any other parameter
is sampled independently at random, as Optuna's own relative samplers do. Trials still
running (``n_jobs > 1``, or several ``study.ask()`` before a ``tell``) are shown to the
hyperpilot sampler as constant-liar fantasies, as ``Study`` does, so they are not repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from hyperpilot.agents.tuner.study import Trial, with_fantasies
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


def running(trials: list[FrozenTrial], names: list[str], current: int) -> list[Trial]:
    """Other RUNNING trials whose parameters ``names`` are all set, as pending trials."""
    return [Trial(number=t.number, config={n: t.params[n] for n in names}, sampler="optuna")
            for t in trials if t.state == TrialState.RUNNING and t.number != current
            and all(n in t.params for n in names)]


class OptunaSampler(optuna.samplers.BaseSampler):
    """Wraps a stateless hyperpilot sampler; randomness from ``seed``. ``liar`` is the
    score running trials are shown with (see ``Study``), or None to hide them."""

    def __init__(self, sampler: Sampler, seed: int | None = None,
                 liar: str | None = "mean") -> None:
        self.sampler = sampler
        self.liar = liar
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
        trials = study.get_trials(deepcopy=False)
        history: Sequence[TrialRecord] = to_records(trials, space.names)
        direction = "maximize" if study.direction == optuna.study.StudyDirection.MAXIMIZE else "minimize"
        pending = running(trials, space.names, trial.number) if self.liar else []
        if pending and self.liar:
            history = with_fantasies(history, pending, space, direction, self.liar)
        return self.sampler.suggest(history, space, self._rng, direction=direction)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._independent.reseed_rng()
