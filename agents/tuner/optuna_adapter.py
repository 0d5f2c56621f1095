"""hyperpilot's samplers as an ``optuna.samplers.BaseSampler`` (needs the ``[bench]`` extra).

    study = optuna.create_study(sampler=OptunaSampler(make_sampler("surrogate"), seed=0))

Parameters present in every finished trial (Optuna's intersection search space) are
proposed jointly by the hyperpilot sampler from the COMPLETE trials; any other parameter
is sampled independently at random, as Optuna's own relative samplers do. Trials still
running (``n_jobs > 1``, or several ``study.ask()`` before a ``tell``) are shown to the
hyperpilot sampler as constant-liar fantasies, as ``Study`` does, so they are not repeated.
Values reach the hyperpilot sampler as its space holds them (stepped floats on the space's
grid; categorical choices that are not plain scalars, such as tuples, by index) and go back
to Optuna as the distribution's own values. A study with several objectives is refused with
a ``ValueError`` before its first trial runs.
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
from hyperpilot.tools.space import CategoricalDim, FloatDim, IntDim, SearchSpace, same_choice
from hyperpilot.tools.types import Config, TrialRecord


def plain(dist: CategoricalDistribution) -> bool:
    """Whether a hyperpilot space can hold ``dist``'s choices as they are (so an LLM sampler
    reads them); other choices (tuples, say) are shown to the hyperpilot sampler by index."""
    return all(choice is None or type(choice) in (str, int, float, bool) for choice in dist.choices)


def to_space(distributions: dict[str, BaseDistribution]) -> SearchSpace:
    dims: list[Any] = []
    for name, dist in distributions.items():
        if isinstance(dist, CategoricalDistribution):
            choices = list(dist.choices) if plain(dist) else list(range(len(dist.choices)))
            dims.append(CategoricalDim(name=name, choices=choices))
        elif isinstance(dist, IntDistribution):
            dims.append(IntDim(name=name, low=dist.low, high=dist.high, log=dist.log, step=dist.step))
        elif isinstance(dist, FloatDistribution):
            dims.append(FloatDim(name=name, low=dist.low, high=dist.high, log=dist.log, step=dist.step))
        else:
            raise TypeError(f"unsupported Optuna distribution for {name}: {dist!r}")
    return SearchSpace(dims=dims)


def to_config(trial: FrozenTrial, distributions: dict[str, BaseDistribution],
              space: SearchSpace) -> Config | None:
    """``trial``'s values as ``space`` holds them, or None where the trial lacks a parameter or
    drew it from another distribution.

    Optuna stores a stepped float as ``low + k * step`` with rounding noise
    (-1.299999999999999); the space's own repair snaps it to the grid the space rounds
    to, or the hyperpilot sampler would not count the trial as one of its space.
    """
    if any(trial.distributions.get(name) != dist for name, dist in distributions.items()):
        return None
    values = {name: int(dist.to_internal_repr(trial.params[name]))
              if isinstance(dist, CategoricalDistribution) and not plain(dist) else trial.params[name]
              for name, dist in distributions.items()}
    return space.repair(values)


def from_config(config: Config, distributions: dict[str, BaseDistribution]) -> dict[str, Any]:
    """A hyperpilot config as Optuna parameters, each choice the very object in its distribution."""
    params = dict(config)
    for name, dist in distributions.items():
        if isinstance(dist, CategoricalDistribution) and plain(dist):
            # same_choice, not Optuna's ==, so True and 1 stay apart
            params[name] = next(c for c in dist.choices if same_choice(c, params[name]))
        elif isinstance(dist, CategoricalDistribution):
            params[name] = dist.choices[params[name]]
    return params


def to_records(trials: list[FrozenTrial], distributions: dict[str, BaseDistribution],
               space: SearchSpace) -> list[TrialRecord]:
    """The COMPLETE trials of ``distributions``, as hyperpilot records of ``space``."""
    records = []
    for trial in trials:
        if trial.state != TrialState.COMPLETE or trial.value is None:
            continue
        config = to_config(trial, distributions, space)
        if config is not None:
            records.append(TrialRecord(number=trial.number, model="", config=config,
                                       state="COMPLETE", score=trial.value))
    return records


def running(trials: list[FrozenTrial], distributions: dict[str, BaseDistribution],
            space: SearchSpace, current: int) -> list[Trial]:
    """Other RUNNING trials whose parameters ``distributions`` are all set, as pending trials."""
    pending = []
    for trial in trials:
        if trial.state != TrialState.RUNNING or trial.number == current:
            continue
        config = to_config(trial, distributions, space)
        if config is not None:
            pending.append(Trial(number=trial.number, config=config, sampler="optuna"))
    return pending


def refuse_multi_objective(study: optuna.Study) -> None:
    """A ValueError for a study with several objectives, as Optuna's single-objective samplers do."""
    if len(study.directions) > 1:
        raise ValueError(f"OptunaSampler optimises a single objective; this study has "
                         f"{len(study.directions)} directions")


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

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        refuse_multi_objective(study)

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        refuse_multi_objective(study)
        space = self._space.calculate(study)
        return {n: d for n, d in space.items() if not d.single()}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        refuse_multi_objective(study)
        if not search_space:
            return {}
        space = to_space(search_space)
        trials = study.get_trials(deepcopy=False)
        history: Sequence[TrialRecord] = to_records(trials, search_space, space)
        direction = "maximize" if study.direction == optuna.study.StudyDirection.MAXIMIZE else "minimize"
        pending = running(trials, search_space, space, trial.number) if self.liar else []
        if pending and self.liar:
            history = with_fantasies(history, pending, space, direction, self.liar)
        config = self.sampler.suggest(history, space, self._rng, direction=direction)
        return from_config(config, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        refuse_multi_objective(study)
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._independent.reseed_rng()
