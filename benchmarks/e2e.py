"""End-to-end benchmark on the real task set: hyperpilot against AutoML peers and a forest.

Every system gets the same 80% of each table (split as ``shared/tasks/README.md`` says) and
is scored here, with scikit-learn, on the other 20% by the metric in ``answers.csv``.
hyperpilot sees only the task sentence and the training CSV. Usage:

    python benchmarks/e2e.py [--budget 60] [--tasks saheart,biomass] [--systems rf,hyperpilot]
                             [--out benchmarks/results/e2e] [--tasks-dir ../shared/tasks]

FLAML and AutoGluon run in their own interpreters, named by $HYPERPILOT_E2E_FLAML_PYTHON and
$HYPERPILOT_E2E_AUTOGLUON_PYTHON (``benchmarks/make_peer_envs.sh`` makes them); a peer
without one is skipped. ``results.csv`` grows a row as each pair finishes, and a rerun skips
the pairs already in it. Peak memory is the child process's ru_maxrss from ``os.wait4``
(its own descendants included), so the harness's own memory never counts.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import math
import os
import platform
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import yaml
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
PEER = HERE / "e2e_peer.py"
SYSTEMS = ("hyperpilot", "hyperpilot-llm", "flaml", "autogluon", "rf")
PEER_ENV = {"flaml": "HYPERPILOT_E2E_FLAML_PYTHON", "autogluon": "HYPERPILOT_E2E_AUTOGLUON_PYTHON"}
LOWER_IS_BETTER = {"log_loss", "rmse", "mae"}
PROBA_METRICS = {"roc_auc", "log_loss"}
TIE = 0.005  # relative gap under which two scores count as the same
FIELDS = ("task", "system", "metric", "score", "seconds", "peak_mb", "success", "over_limit",
          "verified", "version", "note", "error")
EXIT_USAGE = 2


@dataclass(frozen=True)
class Task:
    name: str
    text: str
    data: Path
    target: str
    kind: str
    metric: str
    positive_class: str | None
    time_column: str | None


@dataclass(frozen=True)
class Outcome:
    """What one system produced for one task's test rows, before scoring."""

    prediction: np.ndarray | None
    proba: pd.DataFrame | None
    seconds: float
    peak_mb: float | None
    version: str = ""
    verified: str = ""
    note: str = ""
    error: str = ""


def load_tasks(folder: Path) -> dict[str, Task]:
    """The tasks of ``tasks.yaml`` joined with their expected reading in ``answers.csv``."""
    answers = pd.read_csv(folder / "answers.csv", dtype=str, keep_default_na=False)
    entries = {t["name"]: t for t in yaml.safe_load((folder / "tasks.yaml").read_text())["tasks"]}
    tasks = {}
    for row in answers.to_dict("records"):
        entry = entries[row["name"]]
        timed = row["time_ordered"].strip().lower() == "true"
        found = re.search(r"time column: (\w+)", row["notes"])
        tasks[row["name"]] = Task(
            row["name"], entry["task"], folder / entry["data"], row["target"], row["kind"],
            row["metric"], row["positive_class"] or None,
            (found.group(1) if found else "date") if timed else None)
    return tasks


def split(task: Task, table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fixed 80/20 split: stratified, random, or the last 20% in time."""
    if task.time_column is not None:
        ordered = table.sort_values(task.time_column, kind="mergesort", key=_as_time)
        n_test = math.ceil(0.2 * len(ordered))
        return ordered.iloc[:-n_test], ordered.iloc[-n_test:]
    stratify = None if task.kind == "regression" else table[task.target]
    train, test = train_test_split(table, test_size=0.2, stratify=stratify, random_state=0)
    return train, test


def _as_time(column: pd.Series) -> pd.Series:
    # Text dates sort as dates, not as strings ("9/1/2001" after "10/1/2001" otherwise).
    if column.dtype != object:
        return column
    return pd.to_datetime(column, errors="coerce")


def label(value: object) -> str:
    """A class label as text, so that 1, 1.0 and "1" are the same class wherever it came from."""
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def score(task: Task, truth: pd.Series, outcome: Outcome) -> float:
    """The task's metric on the test rows."""
    m = task.metric
    if task.kind == "regression":
        y, pred = truth.to_numpy(float), np.asarray(outcome.prediction, float)
        if m == "r2":
            return float(skm.r2_score(y, pred))
        if m == "rmse":
            return float(math.sqrt(skm.mean_squared_error(y, pred)))
        return float(skm.mean_absolute_error(y, pred))
    y = np.array([label(v) for v in truth])
    if m in PROBA_METRICS:
        proba = outcome.proba.rename(columns=label)
        if m == "roc_auc":
            return float(skm.roc_auc_score(y == task.positive_class, proba[task.positive_class]))
        return float(skm.log_loss(y, proba.to_numpy(float), labels=list(proba.columns)))
    pred = np.array([label(v) for v in outcome.prediction])
    if m == "accuracy":
        return float(skm.accuracy_score(y, pred))
    if m == "balanced_accuracy":
        return float(skm.balanced_accuracy_score(y, pred))
    if m == "f1":
        return float(skm.f1_score(y, pred, pos_label=task.positive_class))
    return float(skm.f1_score(y, pred, average="macro"))


def run_child(command: list[str], log: Path, limit: float) -> tuple[int, float, float]:
    """Run ``command`` to the end or ``limit`` seconds: exit status, seconds, peak MiB."""
    start = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        timer = threading.Timer(limit, child.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            timer.cancel()
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, time.perf_counter() - start, usage.ru_maxrss / 1024


def last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def kill_limit(budget: float) -> float:
    return 2 * budget + 120


def run_hyperpilot(task: Task, paths: dict[str, Path], budget: float, llm: bool) -> Outcome:
    run_dir = paths["run"]
    command = [sys.executable, "-m", "hyperpilot.pipelines.cli", "run", task.text,
               "--data", str(paths["train"]), "--out", str(run_dir),
               "--time-limit", str(budget), "--no-experience"]
    if not llm:
        command += ["--llm", "none"]
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    code, seconds, peak = run_child(command, run_dir.parent / f"{run_dir.name}.log",
                                    kill_limit(budget))
    result_file = run_dir / "result.json"
    if not (run_dir / "model.joblib").exists():
        error = last_line(run_dir.parent / f"{run_dir.name}.log") or f"exit {code}"
        return Outcome(None, None, seconds, peak, error=error)
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    verified = "yes" if result.get("status") == "ok" else "no"
    outcome = predict_saved(task, run_dir, paths["test"], seconds, peak, verified)
    return replace(outcome, note=reading(result))


def reading(result: dict) -> str:
    """What the run took the task to be and what won, to tell a misread task from a weak model."""
    read = result.get("task", {})
    return (f"target {read.get('target')}, metric {read.get('metric')}, "
            f"model {result.get('best', {}).get('model')}")


def predict_saved(task: Task, run_dir: Path, test: Path, seconds: float, peak: float,
                  verified: str) -> Outcome:
    import joblib

    model = joblib.load(run_dir / "model.joblib")
    rows = pd.read_csv(test)
    try:
        prediction = np.asarray(model.predict(rows))
        proba = None
        if task.metric in PROBA_METRICS:
            proba = class_scores(model, rows, task.metric)
    except Exception as error:  # the saved model failing on raw rows is the finding
        return Outcome(None, None, seconds, peak, verified=verified,
                       error=f"predict: {type(error).__name__}: {error}"[:300])
    return Outcome(prediction, proba, seconds, peak, verified=verified)


def class_scores(model: object, rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Class probabilities; for ROC AUC, which needs only a ranking, a binary model without
    ``predict_proba`` is scored by its ``decision_function`` (the second class's margin)."""
    classes = list(model.classes_)  # type: ignore[attr-defined]
    if hasattr(model, "predict_proba") or metric != "roc_auc" or len(classes) != 2:
        return pd.DataFrame(model.predict_proba(rows), columns=classes)  # type: ignore[attr-defined]
    margin = np.asarray(model.decision_function(rows), float)  # type: ignore[attr-defined]
    return pd.DataFrame({classes[0]: -margin, classes[1]: margin})


def peer_python(system: str) -> str | None:
    return sys.executable if system == "rf" else os.environ.get(PEER_ENV[system])


def probe(system: str) -> tuple[str | None, str]:
    """The peer's interpreter and version, or None and the reason it cannot run."""
    python = peer_python(system)
    if not python:
        return None, f"${PEER_ENV[system]} is not set"
    done = subprocess.run([python, str(PEER), "--probe", system], capture_output=True,
                          text=True, timeout=120, check=False)
    if done.returncode != 0:
        return None, (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return python, done.stdout.strip()


def run_peer(system: str, python: str, task: Task, paths: dict[str, Path],
             budget: float) -> Outcome:
    out = paths["run"]
    out.mkdir(parents=True, exist_ok=True)
    command = [python, str(PEER), system, "--train", str(paths["train"]),
               "--test", str(paths["test"]), "--target", task.target, "--kind", task.kind,
               "--metric", task.metric, "--budget", str(budget), "--out", str(out)]
    if task.positive_class:
        command += ["--positive-class", task.positive_class]
    code, seconds, peak = run_child(command, out / "peer.log", kill_limit(budget))
    if code != 0 or not (out / "predictions.csv").exists():
        return Outcome(None, None, seconds, peak, error=last_line(out / "peer.log")
                       or f"exit {code}")
    prediction = pd.read_csv(out / "predictions.csv", dtype={"prediction": object})
    proba = pd.read_csv(out / "proba.csv") if (out / "proba.csv").exists() else None
    version = json.loads((out / "meta.json").read_text())["version"]
    return Outcome(prediction["prediction"].to_numpy(), proba, seconds, peak, version)


def prepare(task: Task, out: Path) -> tuple[dict[str, Path], pd.Series]:
    """Write the task's training CSV and test features under OUT/data; the test labels."""
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    train, test = split(task, pd.read_csv(task.data))
    paths = {"train": data / f"{task.name}-train.csv", "test": data / f"{task.name}-test.csv"}
    train.to_csv(paths["train"], index=False)
    test.drop(columns=[task.target]).to_csv(paths["test"], index=False)
    return paths, test[task.target].reset_index(drop=True)


def over_limit(seconds: float, budget: float) -> bool:
    return seconds > max(budget * 1.05, budget + 3)


def record(task: Task, system: str, outcome: Outcome, truth: pd.Series, budget: float) -> dict:
    row = {"task": task.name, "system": system, "metric": task.metric, "score": "",
           "seconds": round(outcome.seconds, 2),
           "peak_mb": "" if outcome.peak_mb is None else round(outcome.peak_mb, 1),
           "success": False, "over_limit": system != "rf" and over_limit(outcome.seconds, budget),
           "verified": outcome.verified, "version": outcome.version, "note": outcome.note,
           "error": outcome.error}
    if not outcome.error:
        try:
            row["score"], row["success"] = round(score(task, truth, outcome), 6), True
        except Exception as error:  # a prediction the metric rejects is recorded, not raised
            row["error"] = f"score: {type(error).__name__}: {error}"[:300]
    return row


def append(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def done_pairs(path: Path) -> set[tuple[str, str]]:
    if not path.exists():
        return set()
    return {(r["task"], r["system"]) for r in csv.DictReader(path.open())}


def better(metric: str, a: float, b: float) -> bool:
    """Whether ``a`` beats ``b`` by more than the tie margin."""
    margin = TIE * max(abs(a), abs(b), 1e-12)
    return a < b - margin if metric in LOWER_IS_BETTER else a > b + margin


def ranks(rows: list[dict]) -> dict[tuple[str, str], int]:
    """Rank of each successful (task, system): 1 + how many systems beat it on that task."""
    ranked = {}
    for name in dict.fromkeys(r["task"] for r in rows):
        scored = [r for r in rows if r["task"] == name and r["success"] == "True"]
        for r in scored:
            wins = sum(better(r["metric"], float(o["score"]), float(r["score"])) for o in scored)
            ranked[(name, r["system"])] = 1 + wins
    return ranked


def cell(row: dict | None, rank: int | None) -> str:
    if row is None:
        return "-"
    if row["success"] != "True":
        return "fail"
    late = " late" if row["over_limit"] == "True" else ""
    return f"{float(row['score']):.4f} #{rank} ({float(row['seconds']):.0f} s{late})"


def summary_lines(rows: list[dict], systems: list[str]) -> list[str]:
    ranked = ranks(rows)
    by = {(r["task"], r["system"]): r for r in rows}
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    lines = ["- best or tied best: " + ", ".join(
        f"{s} {sum(ranked.get((t, s)) == 1 for t in tasks)}" for s in systems)]
    behind = [t for t in tasks if all(by.get((t, s), {}).get("success") == "True"
                                      for s in ("hyperpilot", "rf"))
              and better(by[(t, "rf")]["metric"], float(by[(t, "rf")]["score"]),
                         float(by[(t, "hyperpilot")]["score"]))]
    lines.append(f"- hyperpilot below the default forest by more than {TIE:.1%}: "
                 f"{', '.join(behind) or 'none'}")
    lines.append("- over the time limit: " + ", ".join(
        f"{s} {sum(r['over_limit'] == 'True' for r in rows if r['system'] == s)}"
        for s in systems))
    for s in ("hyperpilot", "hyperpilot-llm"):
        mine = [r for r in rows if r["system"] == s]
        if mine:
            lines.append(f"- {s} verified (result.json status ok): "
                         f"{sum(r['verified'] == 'yes' for r in mine)} of {len(mine)}")
    read = [f"- {r['system']} on {r['task']}: {r['note']}" for r in rows if r["note"]]
    failed = [f"- failed: {r['task']}/{r['system']}: {r['error']}"
              for r in rows if r["success"] != "True"]
    return lines + read + failed


def versions(rows: list[dict]) -> str:
    found = {"python": platform.python_version(), "scikit-learn": sklearn.__version__}
    try:
        found["hyperpilot"] = importlib.metadata.version("hyperpilot")
    except importlib.metadata.PackageNotFoundError:
        found["hyperpilot"] = "not installed"
    for r in rows:
        if r["version"] and r["system"] in PEER_ENV:  # rf is scikit-learn, listed above
            found[r["system"]] = r["version"]
    return ", ".join(f"{k} {v}" for k, v in found.items())


def write_summary(out: Path, command: str, budget: float, systems: list[str]) -> None:
    rows = list(csv.DictReader((out / "results.csv").open()))
    # A resumed run may add systems to an earlier one's: the summary shows all of them.
    systems = [s for s in SYSTEMS if s in systems or any(r["system"] == s for r in rows)]
    ranked = ranks(rows)
    by = {(r["task"], r["system"]): r for r in rows}
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    table = [f"| task | metric | {' | '.join(systems)} |",
             "|---|---|" + "---|" * len(systems)]
    for t in tasks:
        metric = next(r["metric"] for r in rows if r["task"] == t)
        table.append(f"| {t} | {metric} | " + " | ".join(
            cell(by.get((t, s)), ranked.get((t, s))) for s in systems) + " |")
    text = [f"# End-to-end benchmark ({budget:g} s per system and task)", "",
            f"Command: `{command}`", "", f"Versions: {versions(rows)}", "",
            "Cells: test score, rank on the task (ties within 0.5% relative share the rank), "
            "wall seconds; `late` is over the budget by more than 5% and 3 s. Peak memory "
            "is in results.csv (`peak_mb`, the child's ru_maxrss).", "", *table, "",
            *summary_lines(rows, systems), ""]
    (out / "summary.md").write_text("\n".join(text))


def run_pair(task: Task, system: str, paths: dict[str, Path], budget: float,
             python: str | None) -> Outcome:
    paths = {**paths, "run": paths["runs"] / f"{task.name}-{system}"}
    if system.startswith("hyperpilot"):
        return run_hyperpilot(task, paths, budget, llm=system == "hyperpilot-llm")
    return run_peer(system, python or sys.executable, task, paths, budget)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--tasks", default="")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "e2e")
    parser.add_argument("--tasks-dir", type=Path,
                        default=Path(__file__).resolve().parents[1].parent / "shared" / "tasks")
    return parser.parse_args(argv)


def chosen(args: argparse.Namespace, known: dict[str, Task]) -> tuple[list[str], list[str]]:
    """The tasks and systems asked for; raises ValueError naming the unknown ones."""
    tasks = [t for t in args.tasks.split(",") if t] or list(known)
    systems = [s for s in args.systems.split(",") if s]
    for kind, names, valid in (("task", tasks, known), ("system", systems, SYSTEMS)):
        unknown = [n for n in names if n not in valid]
        if unknown:
            raise ValueError(f"unknown {kind} {', '.join(unknown)} "
                             f"(known: {', '.join(valid)})")
    if args.budget <= 0:
        raise ValueError("--budget must be positive")
    return tasks, systems


def runnable(systems: list[str]) -> dict[str, str | None]:
    """Each system that can run, with its interpreter; a peer that cannot is one line."""
    ready: dict[str, str | None] = {}
    for system in systems:
        if system not in PEER_ENV:
            ready[system] = None
            continue
        python, why = probe(system)
        if python is None:
            print(f"e2e: skipping {system}: {why}")
        else:
            ready[system] = python
    return ready


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        known = load_tasks(args.tasks_dir)
        names, systems = chosen(args, known)
    except (OSError, ValueError, KeyError) as error:
        print(f"e2e: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.csv"
    done, ready = done_pairs(results), runnable(systems)
    for name in names:
        todo = [s for s in ready if (name, s) not in done]
        if not todo:
            continue
        paths, truth = prepare(known[name], args.out)
        paths["runs"] = args.out / "runs"
        for system in todo:
            outcome = run_pair(known[name], system, paths, args.budget, ready[system])
            row = record(known[name], system, outcome, truth, args.budget)
            append(results, row)
            print(f"e2e: {name} {system}: {row['score'] or 'fail ' + row['error']} "
                  f"({row['seconds']} s)", flush=True)
    if results.exists():
        command = "python benchmarks/e2e.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_summary(args.out, command, args.budget, systems)
    return 0


if __name__ == "__main__":
    sys.exit(main())
