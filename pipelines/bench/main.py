"""``hyperpilot bench tuner``: optimisers side by side on the LLAMBO / Bayesmark tasks.

Writes ``results.csv`` (one row per method, dataset, model, seed and n_evals in 5, 10, 30)
and ``summary.md`` (normalised regret, average rank, test score of the best-CV config and
sampler overhead per trial). Tasks run in parallel processes; within a task, every method
evaluates its own configs, and a config two methods share is trained once (a cache).
"""

from __future__ import annotations

import itertools
import json
import os
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

from hyperpilot.pipelines.bench.llm import LLM_BUDGET_ENV, LLM_METHODS, LLM_SPEC_ENV, TRANSCRIPTS_ENV
from hyperpilot.pipelines.bench.methods import METHODS, MethodUnavailable, Runner, Trace
from hyperpilot.pipelines.bench.summary import summary_markdown
from hyperpilot.pipelines.bench.tasks import DATASETS, MODELS, BenchTask, make_task

N_INITIAL, N_TRIALS = 5, 25
CHECKPOINTS = (5, 10, 30)
QUICK = {"datasets": ("wine", "diabetes"), "models": ("dt", "svm"), "seeds": (0, 1)}
FULL = {"datasets": DATASETS, "models": MODELS, "seeds": (0, 1, 2, 3, 4)}
DEFAULT_METHODS = ("random", "tpe", "gp", "surrogate", "surrogate-noise-llm", "llambo", "llambo-local",
                   "optuna-tpe", "optuna-gp", "skopt-gp")
COLUMNS = ["method", "dataset", "model", "seed", "n_evals", "best_cv", "test_of_best", "overhead_s"]


def all_methods() -> dict[str, Runner]:
    """Every method by name: the samplers and baselines, then the LLM-assisted ones."""
    return {**METHODS, **LLM_METHODS}


@dataclass(frozen=True)
class BenchGrid:
    """The tasks a benchmark runs (datasets x models x seeds) and the methods run on each."""

    datasets: Sequence[str]
    models: Sequence[str]
    seeds: Sequence[int]
    methods: Sequence[str]

    @property
    def tasks(self) -> list[tuple[str, str, int]]:
        return list(itertools.product(self.datasets, self.models, self.seeds))


def make_grid(quick: bool, methods: Sequence[str] | None, datasets: Sequence[str] | None = None,
              models: Sequence[str] | None = None, seeds: int | None = None) -> BenchGrid:
    """The grid of ``--quick`` or the full protocol; ``datasets``, ``models`` and ``seeds``
    (the first N) narrow it."""
    axes = dict(QUICK if quick else FULL)
    for key, chosen_values, allowed in (("datasets", datasets, DATASETS), ("models", models, MODELS)):
        if chosen_values:
            bad = [v for v in chosen_values if v not in allowed]
            if bad:
                raise ValueError(f"unknown {key} {bad}; choose from {', '.join(allowed)}")
            axes[key] = tuple(chosen_values)
    if seeds:
        axes["seeds"] = tuple(range(seeds))
    chosen = list(methods or DEFAULT_METHODS)
    unknown = [m for m in chosen if m not in all_methods()]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {', '.join(all_methods())}")
    return BenchGrid(axes["datasets"], axes["models"], axes["seeds"], chosen)  # type: ignore[arg-type]


def run_bench_task(dataset: str, model: str, seed: int, methods: Sequence[str]
                   ) -> tuple[list[dict], list[str]]:
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


def run_benchmark(grid: BenchGrid, out: Path, jobs: int = 2, command: str = "") -> pd.DataFrame:
    """Run ``grid``'s tasks and write ``results.csv`` and ``summary.md`` into ``out``.

    Each finished task's rows are also kept in ``out/tasks/`` as it finishes, and a task
    already there (with every method asked for) is not run again: an interrupted run picks
    up where it stopped when given the same ``--out``.
    """
    started = time.perf_counter()
    done = {task: rows for task in grid.tasks if (rows := _finished(out, task, grid.methods))}
    todo = [task for task in grid.tasks if task not in done]
    if done:
        print(f"resuming: {len(done)} of {len(grid.tasks)} tasks already in {out / 'tasks'}",
              flush=True)
    outcomes = list(done.values())
    runs = Parallel(n_jobs=jobs, return_as="generator_unordered")(
        delayed(_task_outcome)(d, m, s, grid.methods) for d, m, s in todo)
    for count, (task, task_rows, reasons) in enumerate(runs, start=1):
        _keep(out, task, task_rows, reasons)
        outcomes.append((task_rows, reasons))
        print(f"[bench] {count}/{len(todo)} tasks done ({'/'.join(map(str, task))})", flush=True)
    rows = [row for task_rows, _ in outcomes for row in task_rows]
    skipped = sorted({reason for _, reasons in outcomes for reason in reasons})
    results = pd.DataFrame(rows, columns=COLUMNS)
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False)
    header = _header(grid, command, time.perf_counter() - started, jobs, skipped)
    (out / "summary.md").write_text(summary_markdown(results, header) + "\n")
    return results


def _task_outcome(dataset: str, model: str, seed: int, methods: Sequence[str]
                  ) -> tuple[tuple[str, str, int], list[dict], list[str]]:
    rows, skipped = run_bench_task(dataset, model, seed, methods)
    return (dataset, model, seed), rows, skipped


def _task_file(out: Path, task: tuple[str, str, int]) -> Path:
    return out / "tasks" / f"{task[0]}-{task[1]}-{task[2]}.json"


def _keep(out: Path, task: tuple[str, str, int], rows: list[dict], skipped: list[str]) -> None:
    path = _task_file(out, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"rows": rows, "skipped": skipped}))
    temporary.replace(path)


def _finished(out: Path, task: tuple[str, str, int], methods: Sequence[str]
              ) -> tuple[list[dict], list[str]] | None:
    """A task's kept rows and skips, when it ran with every method of ``methods``."""
    path = _task_file(out, task)
    if not path.exists():
        return None
    kept = json.loads(path.read_text())
    covered = {row["method"] for row in kept["rows"]} | \
        {reason.split(":")[0] for reason in kept["skipped"]}
    if not set(methods) <= covered:
        return None
    rows = [row for row in kept["rows"] if row["method"] in methods]
    return rows, [r for r in kept["skipped"] if r.split(":")[0] in methods]


def _header(grid: BenchGrid, command: str, seconds: float, jobs: int, skipped: list[str]) -> str:
    versions = ", ".join(f"{p} {_version(p)}" for p in
                         ("hyperpilot", "scikit-learn", "numpy", "optuna", "scikit-optimize", "greenlet"))
    lines = [f"Command: `{command or 'hyperpilot bench tuner'}`",
             f"Tasks: {len(grid.datasets)} datasets x {len(grid.models)} models x "
             f"{len(grid.seeds)} seeds ({', '.join(grid.datasets)}; {', '.join(grid.models)}); "
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
    os.environ[TRANSCRIPTS_ENV] = str(out / "transcripts")  # the LLM methods' recordings
    if llm:
        os.environ[LLM_SPEC_ENV] = llm
    if llm_budget is not None:
        os.environ[LLM_BUDGET_ENV] = str(llm_budget)
    grid = make_grid(quick, methods, **(narrow or {}))
    command = "hyperpilot " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else ""
    results = run_benchmark(grid, out, jobs, command)
    print((out / "summary.md").read_text())
    print(f"wrote {len(results)} rows to {out / 'results.csv'}")
    return 0
