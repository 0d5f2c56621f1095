"""Runs against an LLM server that fails: how many finish, with what result, at what cost.

    python benchmarks/faults.py [--tasks iris,wine,breast_cancer,diabetes] [--trials 8]

Each bundled task runs through ``hyperpilot run`` (a fresh process, the client's own retry
schedule) once with ``--llm none`` and once per fault scenario against tests/fault_server.py
on 127.0.0.1: no faults, 30% of calls failing (429, 500, stalls, malformed JSON), and 100% of
answers out of range, malformed or HTTP 500. Per scenario: runs that finished verified, runs
that crashed (a traceback or an internal error), runs whose holdout equals the rules alone,
the median seconds against ``--llm none``, and whether the key reached any output. Results go
to benchmarks/results/faults/ (results.csv, summary.md).
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
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from fault_server import FaultPlan, FaultServer  # noqa: E402  (a test helper, shared here)

KEY = "sk-faultBENCH0123456789abcdefghij"
TEXTS = {"iris": "predict the species, optimise macro F1",
         "wine": "predict the cultivar of each wine, accuracy",
         "breast_cancer": "predict the diagnosis of the tumours, optimise ROC AUC",
         "diabetes": "predict disease progression a year later, mean absolute error"}
SCENARIOS = {
    "no faults": {},
    "30% faults": {"429": 0.1, "500": 0.1, "stall": 0.05, "malformed": 0.05},
    "100% out of range": {"out_of_range": 1.0},
    "100% malformed": {"malformed": 1.0},
    "100% HTTP 500": {"500": 1.0},
}


def run_once(task: str, trials: int, out: Path, server: FaultServer | None) -> dict:
    command = [sys.executable, "-m", "hyperpilot.pipelines.cli", "run", TEXTS[task], "--data",
               f"sklearn:{task}", "--trials", str(trials), "--no-experience", "--out", str(out),
               "--llm", "none" if server is None else "openai:fake"]
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    if server is not None:
        env["OPENAI_BASE_URL"] = server.base_url
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900,
                          stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    result = json.loads((out / "result.json").read_text()) if (out / "result.json").exists() else {}
    leaked = KEY in done.stdout + done.stderr or any(
        KEY in p.read_text(errors="ignore") for p in out.rglob("*")
        if p.is_file() and p.suffix in (".json", ".jsonl", ".md", ".log", ".sqlite"))
    return {"code": done.returncode, "seconds": round(seconds, 2),
            "crashed": "Traceback" in done.stderr or "internal error" in done.stderr,
            "verified": result.get("status") == "ok",
            "holdout": (result.get("holdout") or {}).get("score"),
            "model": (result.get("best") or {}).get("model"), "leaked": leaked,
            "calls": (result.get("llm") or {}).get("calls", 0)}


def summarise(rows: pd.DataFrame) -> str:
    base = rows[rows.scenario == "--llm none"].set_index("task")
    lines = ["| scenario | runs | finished verified | crashed | holdout = rules alone | "
             "median s (x --llm none) | key in output | faults injected |",
             "|---|---|---|---|---|---|---|---|"]
    for scenario, group in rows.groupby("scenario", sort=False):
        same = sum(r.holdout == base.loc[r.task, "holdout"] for r in group.itertuples())
        ratio = statistics.median(r.seconds / base.loc[r.task, "seconds"] for r in group.itertuples())
        lines.append(f"| {scenario} | {len(group)} | {int(group.verified.sum())} | "
                     f"{int(group.crashed.sum())} | {same} | {group.seconds.median():.1f} "
                     f"({ratio:.2f}x) | {int(group.leaked.sum())} | {group.faults.iloc[0]} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TEXTS))
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "faults")
    args = parser.parse_args()
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in TEXTS]
    if unknown:
        sys.exit(f"faults: unknown task(s) {unknown}; choose from {sorted(TEXTS)}")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for scenario, rates in [("--llm none", None), *SCENARIOS.items()]:
            counts: dict[str, int] = {}
            for task in tasks:
                out = Path(scratch) / f"{task}-{len(rows)}"
                if rates is None:
                    row = run_once(task, args.trials, out, None)
                else:
                    with FaultServer(FaultPlan(rates=rates, stall_seconds=2.0, seed=len(rows))) as server:
                        row = run_once(task, args.trials, out, server)
                    for fault, n in server.counts.items():
                        counts[fault] = counts.get(fault, 0) + n
                rows.append({"scenario": scenario, "task": task, **row})
                print(f"faults: {scenario} {task}: exit {row['code']}, {row['seconds']} s, "
                      f"holdout {row['holdout']}", flush=True)
            faults = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"
            for row in rows:
                if row["scenario"] == scenario:
                    row["faults"] = faults
    frame = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "results.csv", index=False)
    import hyperpilot

    summary = (f"# LLM faults\n\n`python benchmarks/faults.py --tasks {','.join(tasks)} --trials "
               f"{args.trials}`; hyperpilot {hyperpilot.__version__}, Python "
               f"{platform.python_version()}, {os.cpu_count()} cores; the client's own retry "
               "schedule (4 attempts, jittered exponential waits); stalls of 2 s.\n\n"
               f"{summarise(frame)}\n")
    (args.out / "summary.md").write_text(summary)
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
