"""hyperpilot samplers driving an Optuna study (skipped where Optuna is not installed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

pytest.importorskip("optuna")

import optuna  # noqa: E402
from optuna.testing.pytest_samplers import (  # noqa: E402
    BasicSamplerTestCase,
    MultiObjectiveSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)

from hyperpilot.agents.tuner.history import observed  # noqa: E402
from hyperpilot.agents.tuner.optuna_adapter import OptunaSampler  # noqa: E402
from hyperpilot.agents.tuner.samplers import SAMPLERS, Sampler, make_sampler  # noqa: E402
from hyperpilot.tools.space import SearchSpace  # noqa: E402
from hyperpilot.tools.types import Config, TrialRecord  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", 1e-3, 10.0, log=True)
    n = trial.suggest_int("n", 1, 19, step=3)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    return (x - 0.1) ** 2 + abs(n - 7) / 10 + (0.0 if kind == "b" else 0.5)


@pytest.mark.parametrize("name", ["tpe", "gp"])
def test_a_hyperpilot_sampler_runs_an_optuna_study(name: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=OptunaSampler(make_sampler(name), seed=0))
    study.optimize(objective, n_trials=20)
    for trial in study.trials:
        assert 1e-3 <= trial.params["x"] <= 10 and (trial.params["n"] - 1) % 3 == 0
        assert type(trial.params["n"]) is int
    assert study.best_value < 0.6


def test_same_seed_same_trials() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs = []
    for _ in range(2):
        study = optuna.create_study(sampler=OptunaSampler(make_sampler("tpe"), seed=3))
        study.optimize(objective, n_trials=10)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]


def test_trials_asked_before_any_tell_are_distinct_and_spread_out() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def closest_pair(liar: str | None) -> float:
        study = optuna.create_study(sampler=OptunaSampler(make_sampler("gp"), seed=0, liar=liar))
        for _ in range(10):
            trial = study.ask()
            x, y = trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0)
            study.tell(trial, (x - 0.3) ** 2 + (y - 0.7) ** 2)
        batch = [study.ask() for _ in range(4)]
        points = [(t.suggest_float("x", 0.0, 1.0), t.suggest_float("y", 0.0, 1.0)) for t in batch]
        assert len(set(points)) == 4
        return min(((a - c) ** 2 + (b - d) ** 2) ** 0.5
                   for i, (a, b) in enumerate(points) for c, d in points[i + 1:])

    assert closest_pair("mean") > 3 * closest_pair(None)


class Recorder:
    """A hyperpilot sampler that records the configs each call could learn from."""

    name = "recorder"

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner
        self.seen: list[list[Config]] = []

    def suggest(self, history: Sequence[TrialRecord], space: SearchSpace,
                rng: np.random.Generator, *, direction: str = "maximize") -> Config:
        self.seen.append(observed(history, space, direction)[0])
        return self.inner.suggest(history, space, rng, direction=direction)


def stepped(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -2.0, 2.0, step=0.1)
    n = trial.suggest_int("n", 1, 19, step=3)
    return (x + 1.3) ** 2 + abs(n - 7)


def test_the_sampler_learns_from_every_finished_trial_with_stepped_values() -> None:
    # Optuna's own samplers store a stepped float as low + k * step, e.g. -1.299999999999999.
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(stepped, n_trials=20)
    recorder = Recorder(make_sampler("tpe"))
    study.sampler = OptunaSampler(recorder, seed=0)
    study.optimize(stepped, n_trials=5)
    assert [len(configs) for configs in recorder.seen] == [20, 21, 22, 23, 24]
    for config in recorder.seen[-1]:
        assert config["x"] == round(config["x"], 1) and (config["n"] - 1) % 3 == 0
    assert all(t.params["x"] == round(t.params["x"], 1) for t in study.trials[20:])


def test_a_multi_objective_study_is_refused_before_any_trial_runs() -> None:
    calls = []

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        calls.append(trial.number)
        return trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0)

    study = optuna.create_study(directions=["minimize", "maximize"],
                                sampler=OptunaSampler(make_sampler("tpe"), seed=0))
    with pytest.raises(ValueError, match="single objective; this study has 2 directions"):
        study.optimize(objective, n_trials=3)
    assert calls == []


@pytest.mark.filterwarnings("ignore:Choices for a categorical distribution should be")
@pytest.mark.parametrize("choices", [[(1, 2), (3, 4)], [None, (1, 2), (5,)], [None, "a", 2.5, True]])
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_categorical_choices_come_back_as_the_very_objects_given(name: str, choices: list[Any]) -> None:
    drawn = []

    def objective(trial: optuna.Trial) -> float:
        choice = trial.suggest_categorical("choice", choices)
        drawn.append(choice)
        return choices.index(choice) + trial.suggest_float("x", 0.0, 1.0)

    study = optuna.create_study(sampler=OptunaSampler(make_sampler(name), seed=0))
    study.optimize(objective, n_trials=8)
    assert len(drawn) == 8 and all(any(value is c for c in choices) for value in drawn)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


class HyperpilotSamplers:
    """Optuna's shipped sampler contracts, run through the adapter for every hyperpilot sampler."""

    @pytest.fixture(params=sorted(SAMPLERS))
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], OptunaSampler]:
        return lambda: OptunaSampler(make_sampler(request.param), seed=0)


class TestBasicSamplerContract(HyperpilotSamplers, BasicSamplerTestCase):
    pass


class TestRelativeSamplerContract(HyperpilotSamplers, RelativeSamplerTestCase):
    pass


class TestSingleObjectiveOnlyContract(HyperpilotSamplers, SingleOnlySamplerTestCase):
    pass


@pytest.mark.skip(reason="OptunaSampler refuses multi-objective studies on purpose: hyperpilot's "
                         "samplers rank trials by one score")
class TestMultiObjectiveSamplerContract(HyperpilotSamplers, MultiObjectiveSamplerTestCase):
    pass
