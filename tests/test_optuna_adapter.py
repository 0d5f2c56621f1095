"""hyperpilot samplers driving an Optuna study (skipped where Optuna is not installed)."""

from __future__ import annotations

import pytest

optuna = pytest.importorskip("optuna")

from hyperpilot.agents.tuner.optuna_adapter import OptunaSampler  # noqa: E402
from hyperpilot.agents.tuner.samplers import make_sampler  # noqa: E402


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
