"""``hyperpilot bench tuner``: optimisers side by side on the LLAMBO / Bayesmark tasks.

Writes ``results.csv`` (one row per method, dataset, model, seed and n_evals in 5, 10, 30)
and ``summary.md`` (normalised regret, average rank, test score of the best-CV config and
sampler overhead per trial). Tasks run in parallel processes; within a task, every method
evaluates its own configs, and a config two methods share is trained once (a cache).
"""

from __future__ import annotations

import itertools
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from hyperpilot.pipelines.bench_methods import MethodUnavailable, Trace, all_methods
from hyperpilot.pipelines.bench_summary import summary_markdown
from hyperpilot.pipelines.bench_tasks import DATASETS, MODELS, BenchTask, make_task

N_INITIAL, N_TRIALS = 5, 25
CHECKPOINTS = (5, 10, 30)
QUICK = {"datasets": ("wine", "diabetes"), "models": ("dt", "svm"), "seeds": (0, 1)}
FULL = {"datasets": DATASETS, "models": MODELS, "seeds": (0, 1, 2, 3, 4)}
DEFAULT_METHODS = ("random", "tpe", "gp", "surrogate", "surrogate-noise-llm", "llambo", "llambo-local",
                   "optuna-tpe", "optuna-gp", "skopt-gp")
COLUMNS = ["method", "dataset", "model", "seed", "n_evals", "best_cv", "test_of_best", "overhead_s"]


@dataclass(frozen=True)
class Plan:
    datasets: Sequence[str]
    models: Sequence[str]
    seeds: Sequence[int]
    methods: Sequence[str]

    @property
    def tasks(self) -> list[tuple[str, str, int]]:
        return list(itertools.product(self.datasets, self.models, self.seeds))


def make_plan(quick: bool, methods: Sequence[str] | None, datasets: Sequence[str] | None = None,
              models: Sequence[str] | None = None, seeds: int | None = None) -> Plan:
    """The grid of ``--quick`` or the full protocol; ``datasets``, ``models`` and ``seeds``
    (the first N) narrow it."""
    grid = dict(QUICK if quick else FULL)
    for key, chosen_values, allowed in (("datasets", datasets, DATASETS), ("models", models, MODELS)):
        if chosen_values:
            bad = [v for v in chosen_values if v not in allowed]
            if bad:
                raise ValueError(f"unknown {key} {bad}; choose from {', '.join(allowed)}")
            grid[key] = tuple(chosen_values)
    if seeds:
        grid["seeds"] = tuple(range(seeds))
    chosen = list(methods or DEFAULT_METHODS)
    unknown = [m for m in chosen if m not in all_methods()]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {', '.join(all_methods())}")
    return Plan(grid["datasets"], grid["models"], grid["seeds"], chosen)  # type: ignore[arg-type]


def run_task(dataset: str, model: str, seed: int, methods: Sequence[str]) -> tuple[list[dict], list[str]]:
    """Every method on one task: its result rows and the methods it had to skip (why)."""
    task = make_task(dataset, model, seed)
    methods_by_name = all_methods()
    rng = np.random.default_rng([seed, 2024])
    initial = [task.space.sample(rng) for _ in range(N_INITIAL)]
    rows: list[dict] = []
    skipped: list[str] = []
    for method in methods:
        try:
            with threadpool_limits(limits=1):  # one core per task: processes share the machine
                trace = methods_by_name[method](task, initial, N_TRIALS, seed)
        except MethodUnavailable as err:
            skipped.append(f"{method}: {err}")
            continue
        rows += checkpoint_rows(method, task, trace)
    return rows, skipped


def checkpoint_rows(method: str, task: BenchTask, trace: Trace) -> list[dict]:
    rows = []
    for n in CHECKPOINTS:
        head = trace[:n]
        best = max(head, key=lambda s: s.score)
        proposed = [s.overhead_s for s in head[N_INITIAL:]]
        rows.append({"method": method, "dataset": task.dataset, "model": task.model,
                     "seed": task.seed, "n_evals": n, "best_cv": best.score,
                     "test_of_best": task.test(best.config),
                     "overhead_s": float(np.mean(proposed)) if proposed else 0.0})
    return rows


def run_benchmark(plan: Plan, out: Path, jobs: int = 2, command: str = "") -> pd.DataFrame:
    started = time.perf_counter()
    outcomes = Parallel(n_jobs=jobs)(delayed(run_task)(d, m, s, plan.methods) for d, m, s in plan.tasks)
    rows = [row for task_rows, _ in outcomes for row in task_rows]
    skipped = sorted({reason for _, reasons in outcomes for reason in reasons})
    results = pd.DataFrame(rows, columns=COLUMNS)
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False)
    header = _header(plan, command, time.perf_counter() - started, jobs, skipped)
    (out / "summary.md").write_text(summary_markdown(results, header) + "\n")
    return results


def _header(plan: Plan, command: str, seconds: float, jobs: int, skipped: list[str]) -> str:
    versions = ", ".join(f"{p} {_version(p)}" for p in
                         ("hyperpilot", "scikit-learn", "numpy", "optuna", "scikit-optimize"))
    lines = [f"Command: `{command or 'hyperpilot bench tuner'}`",
             f"Tasks: {len(plan.datasets)} datasets x {len(plan.models)} models x "
             f"{len(plan.seeds)} seeds ({', '.join(plan.datasets)}; {', '.join(plan.models)}); "
             f"{N_INITIAL} shared initial configs + {N_TRIALS} trials each",
             f"Wall time: {seconds:.0f} s on {jobs} worker processes; Python "
             f"{platform.python_version()}, {versions}"]
    lines += [f"Skipped: {reason}" for reason in skipped]
    return "\n".join(f"- {line}" for line in lines)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def main(quick: bool, methods: Sequence[str] | None, out: Path, jobs: int,
         llm: str | None = None, llm_budget: int | None = None,
         narrow: dict[str, Any] | None = None) -> int:
    """The ``hyperpilot bench tuner`` command; ``llm`` and ``llm_budget`` reach the worker
    processes through the environment."""
    import os

    from hyperpilot.pipelines.bench_llm import LLM_BUDGET_ENV, LLM_SPEC_ENV, TRANSCRIPTS_ENV

    os.environ[TRANSCRIPTS_ENV] = str(out / "transcripts")  # the LLM methods' recordings
    if llm:
        os.environ[LLM_SPEC_ENV] = llm
    if llm_budget is not None:
        os.environ[LLM_BUDGET_ENV] = str(llm_budget)
    plan = make_plan(quick, methods, **(narrow or {}))
    command = "hyperpilot " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else ""
    results = run_benchmark(plan, out, jobs, command)
    print((out / "summary.md").read_text())
    print(f"wrote {len(results)} rows to {out / 'results.csv'}")
    return 0
