"""Trials on several workers: throughput, per-trial overhead, and search quality at equal wall time.

    python benchmarks/scaling.py [--quick] [--out benchmarks/results/scaling]

1. Throughput: real trials (``evaluate_trial``, 5-fold CV, one native thread: a random
   forest sized to about 2 s and a logistic regression to about 0.2 s by bare calls first,
   on synthetic rows) through each executor
   (in-process, worker processes, a local Ray) with 1 and 2 workers, as the run's lanes
   drive them: one thread a worker, each taking the next trial as its last one returns.
   Trials per second, and the speed-up of 2 workers over 1 on the same executor.
2. Overhead: a trial that does nothing (``id(data)``), 1 worker, against the bare call; and
   the start-up (the executor made and its first trial back).
3. Search quality at equal wall time: whole ``hyperpilot run``s (in this process, rules
   only, no experience store) with ``--time-limit`` T and ``--workers`` 1 against 2, on
   scikit-learn's bundled tables, several seeds; CV and holdout scores and trials done.

Results go to the output folder (results.json, summary.md), with the versions that made them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.datasets import make_classification
from threadpoolctl import threadpool_limits

import hyperpilot
from hyperpilot.agents.tuner.agent import TrainingData, build_model_pipeline, evaluate_trial
from hyperpilot.agents.tuner.executors import make_executor
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task
from hyperpilot.tools.data import profile_table
from hyperpilot.tools.evaluate import make_folds
from hyperpilot.tools.types import Budget, TaskSpec
from hyperpilot.tools.zoo import get_model

HERE = Path(__file__).resolve().parent
EXECUTORS = ("inprocess", "process", "ray")
# Whole runs at equal wall time: sequential, then 2 workers in local processes and on Ray.
QUALITY_RUNS = ((1, "process"), (2, "process"), (2, "ray"))
QUALITY_TASKS = {"breast_cancer": "predict the diagnosis of the tumours, optimise ROC AUC",
                 "digits": "predict the digit, accuracy",
                 "wine": "predict the cultivar of each wine, accuracy",
                 "diabetes": "predict disease progression a year later, mean absolute error"}


def setting(rows: int = 1500) -> tuple[TaskSpec, Any, TrainingData]:
    X, y = make_classification(n_samples=rows, n_features=20, n_informative=8, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(20)]).assign(label=y.astype(str))
    task = TaskSpec(text="predict label", task_type="binary", target="label", metric="accuracy",
                    direction="maximize", budget=Budget(trials=5))
    data = TrainingData(frame.drop(columns="label"), frame["label"],
                        make_folds(frame["label"].to_numpy(), "binary", 5, 0))
    return task, profile_table(frame, "label"), data


def forest(task: TaskSpec, profile: Any, trees: int) -> Any:
    # bootstrap off: every fold is fitted (no out-of-bag shortcut), so trees set the length
    config = {"n_estimators": trees, "max_depth": None, "min_samples_leaf": 1,
              "max_features": 0.5, "bootstrap": False, "class_weight": None}
    return build_model_pipeline("random_forest", config, task, profile, seed=0)


def linear(task: TaskSpec, profile: Any) -> Any:
    return build_model_pipeline("linear", get_model("linear").defaults("binary"), task, profile,
                                seed=0)


def bare_seconds(pipeline: Any, task: TaskSpec, data: TrainingData) -> float:
    with threadpool_limits(limits=1):
        started = time.perf_counter()
        evaluate_trial(data, pipeline, task, 0, None, ())
        return time.perf_counter() - started


def sized(target: float) -> tuple[TaskSpec, TrainingData, Any, float]:
    """A trial of about ``target`` seconds here, and its bare call's median time: a random
    forest whose trees set the length (at least the 50 its space allows) for long trials, a
    logistic regression whose rows set it for short ones."""
    if target >= 1.0:
        task, profile, data = setting(1500)
        per_tree = bare_seconds(forest(task, profile, 100), task, data) / 100
        pipeline = forest(task, profile, max(50, round(target / per_tree)))
    else:
        rows = 1500
        for _ in range(3):  # not proportional to rows: a fixed cost per fold, so twice more
            task, profile, data = setting(rows)
            rows = max(200, round(rows * target / bare_seconds(linear(task, profile), task, data)))
        task, profile, data = setting(rows)
        pipeline = linear(task, profile)
    return task, data, pipeline, statistics.median(
        bare_seconds(pipeline, task, data) for _ in range(3))


def drive(executor: Any, workers: int, n: int, function: Any, *args: Any) -> float:
    """Seconds for ``n`` trials with ``workers`` threads each taking the next one."""
    left = [n]
    lock = threading.Lock()

    def lane() -> None:
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            executor.run(function, *args, deadline=time.time() + 3600)

    started = time.perf_counter()
    threads = [threading.Thread(target=lane) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def throughput(quick: bool) -> list[dict[str, Any]]:
    rows = []
    for target, n in ((2.0, 6 if quick else 12), (0.2, 20 if quick else 60)):
        task, data, pipeline, bare = sized(target)
        for kind in EXECUTORS:
            for workers in (1, 2):
                started = time.perf_counter()
                executor = make_executor(kind, data, workers, threads=1)
                try:
                    executor.run(id, deadline=time.time() + 600)  # started, data in place
                    start_seconds = time.perf_counter() - started
                    with threadpool_limits(limits=1):  # in-process trials: one thread each too
                        seconds = drive(executor, workers, n, evaluate_trial, pipeline, task, 0,
                                        None, ())
                finally:
                    executor.close()
                rows.append({"trial": f"~{target:g} s", "bare_seconds": round(bare, 3),
                             "executor": kind, "workers": workers, "trials": n,
                             "seconds": round(seconds, 2),
                             "trials_per_second": round(n / seconds, 3),
                             "start_seconds": round(start_seconds, 2)})
                print(rows[-1], flush=True)
    return rows


def overhead(quick: bool) -> list[dict[str, Any]]:
    _, _, data = setting()
    n = 50 if quick else 200
    started = time.perf_counter()
    for _ in range(n):
        id(data)
    rows = [{"executor": "bare call", "ms_per_trial": round(1000 * (time.perf_counter() - started) / n, 4)}]
    for kind in EXECUTORS:
        executor = make_executor(kind, data, 1, threads=1)
        try:
            executor.run(id, deadline=time.time() + 600)
            seconds = drive(executor, 1, n, id)
        finally:
            executor.close()
        rows.append({"executor": kind, "ms_per_trial": round(1000 * seconds / n, 3)})
        print(rows[-1], flush=True)
    return rows


def quality(quick: bool, limit: float, seeds: int) -> list[dict[str, Any]]:
    rows = []
    tasks = list(QUALITY_TASKS)[:2] if quick else list(QUALITY_TASKS)
    for name in tasks:
        for seed in range(seeds):
            for workers, executor in QUALITY_RUNS:
                with tempfile.TemporaryDirectory() as tmp:
                    options = RunOptions(time_limit=limit, workers=workers, executor=executor,
                                         llm="none", experience=None, seed=seed)
                    started = time.perf_counter()
                    state = run_task(QUALITY_TASKS[name], f"sklearn:{name}", Path(tmp) / "run",
                                     options)
                    seconds = time.perf_counter() - started
                hold, best = state["holdout"], state["best"]
                final = best.get("final") or {}
                rows.append({"task": name, "seed": seed, "workers": workers,
                             "executor": executor,
                             "metric": hold["metric"], "direction": state["task"]["direction"],
                             "cv": final.get("cv_score", best["cv_score"]),
                             "holdout": hold["score"], "trials": len(state["trials"]),
                             "seconds": round(seconds, 1), "status": state["status"]})
                print(rows[-1], flush=True)
    return rows


def summarise(results: dict[str, Any], command: str) -> str:
    lines = [f"# Scaling: trials on several workers\n\n`{command}`; hyperpilot "
             f"{hyperpilot.__version__}, Python {platform.python_version()}, scikit-learn "
             f"{sklearn.__version__}, Ray {results['ray_version']}, {os.cpu_count()} cores, "
             f"{results['date']}, at {results.get('commit') or 'an unknown commit'}.\n",
             "## Throughput (trials per second; one native thread a trial)\n",
             "| trial | executor | 1 worker | 2 workers | 2 / 1 | start-up s |",
             "|---|---|---|---|---|---|"]
    table = pd.DataFrame(results["throughput"])
    for (trial, kind), group in table.groupby(["trial", "executor"], sort=False):
        one = group[group.workers == 1].iloc[0]
        two = group[group.workers == 2].iloc[0]
        lines.append(f"| {trial} (bare {one.bare_seconds:.2f} s) | {kind} | "
                     f"{one.trials_per_second:.3f} | {two.trials_per_second:.3f} | "
                     f"{two.trials_per_second / one.trials_per_second:.2f}x | "
                     f"{one.start_seconds:.1f} / {two.start_seconds:.1f} |")
    lines += ["", "## Per-trial overhead (a trial that does nothing, 1 worker)\n",
              "| executor | ms a trial |", "|---|---|"]
    lines += [f"| {r['executor']} | {r['ms_per_trial']} |" for r in results["overhead"]]
    quality_rows = pd.DataFrame(results["quality"])
    if len(quality_rows):
        lines += ["", f"## Search quality at equal wall time (`--time-limit "
                  f"{results['time_limit']:g}`, worker processes, default 3 plans)\n",
                  "Gains are 2 workers minus 1, signed so that positive means 2 workers did "
                  "better (for a metric to minimise, lower).\n",
                  "| task | seed | metric | CV 1 / 2 | holdout 1 / 2 | trials 1 / 2 | CV gain | "
                  "holdout gain |", "|---|---|---|---|---|---|---|---|"]
        cv_gains, gains = [], []
        for (task, seed), group in quality_rows.groupby(["task", "seed"], sort=False):
            one = group[group.workers == 1].iloc[0]
            two = group[(group.workers == 2) & (group.executor == "process")].iloc[0]
            sign = 1.0 if one.direction == "maximize" else -1.0
            cv_gains.append(sign * (two.cv - one.cv))
            gains.append(sign * (two.holdout - one.holdout))
            lines.append(f"| {task} | {seed} | {one.metric} | {one.cv:.4f} / {two.cv:.4f} | "
                         f"{one.holdout:.4f} / {two.holdout:.4f} | {one.trials} / {two.trials} | "
                         f"{cv_gains[-1]:+.4f} | {gains[-1]:+.4f} |")
        pairs = quality_rows.groupby(["task", "seed"])
        trials_ratio = statistics.median(
            float(g[(g.workers == 2) & (g.executor == "process")].trials.iloc[0])
            / max(1, g[g.workers == 1].trials.iloc[0]) for _, g in pairs)
        lines += ["", f"2 workers better or equal on CV in {sum(g >= 0 for g in cv_gains)} of "
                  f"{len(cv_gains)} (median gain {statistics.median(cv_gains):+.4f}), on the "
                  f"holdout in {sum(g >= 0 for g in gains)} of {len(gains)} (median gain "
                  f"{statistics.median(gains):+.4f}); median ratio of trials done "
                  f"{trials_ratio:.2f}x."]
        on_ray = quality_rows[quality_rows.executor == "ray"]
        if len(on_ray):
            lines += ["", "The same runs with `--executor ray --workers 2` (a local Ray started by "
                      "each run, its start-up inside the limit):\n",
                      "| task | seed | verified | CV | holdout | trials | seconds |",
                      "|---|---|---|---|---|---|---|"]
            lines += [f"| {r.task} | {r.seed} | {'yes' if r.status == 'ok' else r.status} | "
                      f"{r.cv:.4f} | {r.holdout:.4f} | {r.trials} | {r.seconds} |"
                      for r in on_ray.itertuples()]
        verified = (quality_rows.status == "ok").sum()
        lines += ["", f"Verified: {verified} of {len(quality_rows)} runs."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scaling")
    parser.add_argument("--quick", action="store_true", help="fewer trials and tasks")
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    try:
        import ray
        ray_version = ray.__version__
    except ImportError:
        print("scaling: Ray is not installed (pip install 'hyperpilot[ray]')", file=sys.stderr)
        return 2
    np.random.seed(0)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=HERE).stdout.strip()
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "ray_version": ray_version,
                               "commit": commit,
                               "time_limit": args.time_limit,
                               "overhead": overhead(args.quick),
                               "throughput": throughput(args.quick),
                               "quality": [] if args.skip_quality else
                               quality(args.quick, args.time_limit, args.seeds)}
    given = sys.argv[1:]
    kept = [a for i, a in enumerate(given)
            if not a.startswith("--out") and not (i and given[i - 1] == "--out")]
    command = " ".join(["python benchmarks/scaling.py", *kept])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    summary = summarise(results, command.strip())
    (args.out / "summary.md").write_text(summary)
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
