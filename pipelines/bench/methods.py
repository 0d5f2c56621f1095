"""The optimisers a benchmark compares, each as ``run(task, initial, n_trials, seed) -> Trace``.

Every method first evaluates the same initial configs (the shared design), then proposes
``n_trials`` more on its own. ``overhead_s`` is the time spent proposing (and, for Optuna,
telling), never the time spent training. The LLM-assisted methods (``bench.llm``) build on
``run_sampler`` here; ``bench.main.all_methods`` joins both registries, so imports go one
way: main -> llm -> methods -> tasks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hyperpilot.agents.tuner.samplers import GPSampler, Sampler, make_sampler
from hyperpilot.agents.tuner.study import Study
from hyperpilot.pipelines.bench.tasks import BenchTask
from hyperpilot.tools.space import CategoricalDim, FloatDim, SearchSpace
from hyperpilot.tools.types import Config


@dataclass(frozen=True)
class Step:
    config: Config
    score: float
    overhead_s: float


Trace = list[Step]
Runner = Callable[[BenchTask, list[Config], int, int], Trace]


class MethodUnavailable(RuntimeError):
    """A method that cannot run here (an extra not installed, no local model)."""


def run_sampler(sampler: Sampler, task: BenchTask, initial: list[Config], n_trials: int,
                seed: int) -> Trace:
    study = Study(task.space, "maximize", sampler, np.random.default_rng([seed, 7]))
    for config in initial:
        study.enqueue(config, source="initial design")
    trace: Trace = []
    for i in range(len(initial) + n_trials):
        started = time.perf_counter()
        trial = study.ask()
        overhead = time.perf_counter() - started if i >= len(initial) else 0.0
        score = task.cv(trial.config)
        study.tell(trial, score)
        trace.append(Step(trial.config, score, overhead))
    return trace


def hyperpilot_method(name: str) -> Runner:
    return lambda task, initial, n, seed: run_sampler(make_sampler(name), task, initial, n, seed)


def _optuna_distributions(space: SearchSpace) -> dict[str, object]:
    import optuna.distributions as od

    out: dict[str, object] = {}
    for dim in space.dims:
        if isinstance(dim, CategoricalDim):
            out[dim.name] = od.CategoricalDistribution(dim.choices)
        elif isinstance(dim, FloatDim):
            out[dim.name] = od.FloatDistribution(dim.low, dim.high, log=dim.log, step=dim.step)
        else:
            out[dim.name] = od.IntDistribution(dim.low, dim.high, log=dim.log, step=dim.step)
    return out


def optuna_method(kind: str) -> Runner:
    def run(task: BenchTask, initial: list[Config], n_trials: int, seed: int) -> Trace:
        try:
            import optuna
        except ImportError as err:
            raise MethodUnavailable("optuna is not installed (pip install '.[bench]')") from err
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        samplers = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=len(initial)),
                    "gp": lambda: optuna.samplers.GPSampler(seed=seed, n_startup_trials=len(initial))}
        study = optuna.create_study(direction="maximize", sampler=samplers[kind]())
        dists = _optuna_distributions(task.space)
        for config in initial:
            study.enqueue_trial(config)
        trace: Trace = []
        for i in range(len(initial) + n_trials):
            started = time.perf_counter()
            trial = study.ask(dists)  # type: ignore[arg-type]
            overhead = time.perf_counter() - started
            config = task.space.repair(trial.params)
            score = task.cv(config)
            started = time.perf_counter()
            study.tell(trial, score)
            overhead += time.perf_counter() - started
            trace.append(Step(config, score, overhead if i >= len(initial) else 0.0))
        return trace
    return run


def skopt_method(task: BenchTask, initial: list[Config], n_trials: int, seed: int) -> Trace:
    try:
        from skopt import gp_minimize
        from skopt.space import Categorical, Integer, Real
    except ImportError as err:
        raise MethodUnavailable("scikit-optimize is not installed (pip install '.[bench]')") from err
    space = task.space
    dims = [Categorical(d.choices, name=d.name) if isinstance(d, CategoricalDim)
            else (Real if isinstance(d, FloatDim) else Integer)(
                d.low, d.high, prior="log-uniform" if d.log else "uniform", name=d.name)
            for d in space.dims]
    trace: Trace = [Step(c, task.cv(c), 0.0) for c in initial]
    clock = [time.perf_counter()]

    def objective(x: list[object]) -> float:
        overhead = time.perf_counter() - clock[0]
        plain = [v.item() if isinstance(v, np.generic) else v for v in x]
        config = space.repair(dict(zip(space.names, plain, strict=True)))
        score = task.cv(config)
        trace.append(Step(config, score, overhead))
        clock[0] = time.perf_counter()
        return -score

    gp_minimize(objective, dims, x0=[[c[n] for n in space.names] for c in initial],
                y0=[-s.score for s in trace], n_calls=n_trials, n_initial_points=0,
                random_state=seed)
    return trace


def unavailable(reason: str) -> Runner:
    def run(task: BenchTask, initial: list[Config], n_trials: int, seed: int) -> Trace:
        raise MethodUnavailable(reason)
    return run


METHODS: dict[str, Runner] = {
    "random": hyperpilot_method("random"),
    "tpe": hyperpilot_method("tpe"),
    "gp": hyperpilot_method("gp"),
    # The GP sampler with MAP hyperparameters (log-normal priors) instead of maximum likelihood.
    "gp-map": lambda task, initial, n, seed: run_sampler(GPSampler(prior=True), task, initial,
                                                         n, seed),
    "optuna-tpe": optuna_method("tpe"),
    "optuna-gp": optuna_method("gp"),
    "skopt-gp": skopt_method,
    "surrogate": hyperpilot_method("surrogate"),
}
