"""Holdout score of `hyperpilot run` on the five bundled sets against a default random forest.

Both see the same split: hyperpilot's own holdout (20%, stratified, the run's seed). The
forest is scikit-learn's default RandomForest{Classifier,Regressor}(random_state=seed) fit on
the training rows. Usage:

    python benchmarks/bundled_vs_rf.py [--trials 30] [--seeds 0] [--out benchmarks/results/bundled_vs_rf]

Writes results.csv and results.md (with the command, versions and timings) under --out.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import sklearn
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from hyperpilot.tools.data import load_table, split_holdout
from hyperpilot.tools.evaluate import score_pipeline

TASKS = {
    "iris": "predict the species of iris flowers, optimise macro F1",
    "wine": "predict the cultivar of the wine, optimise accuracy",
    "breast_cancer": "predict the diagnosis, optimise accuracy",
    "digits": "predict the digit, optimise accuracy",
    "diabetes": "predict disease progression, optimise R2",
}


def forest_score(run_dir: Path, seed: int) -> float:
    """A default forest on the run's own split (``split_holdout`` is deterministic per seed)."""
    task = json.loads((run_dir / "result.json").read_text())["task"]
    frame = load_table(task["data_source"])
    train, holdout = split_holdout(frame, task["target"], task["task_type"], seed=seed)
    features = [c for c in frame.columns if c != task["target"]]
    forest = (RandomForestRegressor if task["task_type"] == "regression"
              else RandomForestClassifier)(random_state=seed)
    rows, held = frame.iloc[train], frame.iloc[holdout]
    forest.fit(rows[features], rows[task["target"]])
    return score_pipeline(forest, held[features], held[task["target"]], task["metric"],
                          task["positive_class"])


def run_one(name: str, seed: int, trials: int, out: Path) -> dict[str, object]:
    run_dir = out / "runs" / f"{name}-seed{seed}"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "hyperpilot.pipelines.cli", "run", TASKS[name],
                           "--data", f"sklearn:{name}", "--out", str(run_dir), "--llm", "none",
                           "--trials", str(trials), "--seed", str(seed),
                           # each run stands alone: no learning from the other seeds' runs
                           "--no-experience"],
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name}: hyperpilot run failed: {done.stderr.strip()}")
    result = json.loads((run_dir / "result.json").read_text())
    forest = forest_score(run_dir, seed)
    return {"dataset": name, "seed": seed, "metric": result["holdout"]["metric"],
            "hyperpilot": result["holdout"]["score"], "default_rf": forest,
            "hyperpilot_model": result["best"]["model"], "cv_score": result["best"]["cv_score"],
            "verified": all(result["verification"][k] == "pass"
                            for k in ("request", "execution", "implementation")),
            "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/bundled_vs_rf"))
    args = parser.parse_args()
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for name in TASKS:
            rows.append(run_one(name, seed, args.trials, args.out))
            print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    table["at_least_rf"] = table["hyperpilot"] >= table["default_rf"] - 1e-12
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "results.csv", index=False)
    command = "python benchmarks/bundled_vs_rf.py " + " ".join(sys.argv[1:])
    versions = (f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
                f"pandas {pd.__version__}, {platform.machine()}")
    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "".join("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row)
                   + " |\n" for row in table.itertuples(index=False))
    (args.out / "results.md").write_text(
        f"# hyperpilot vs default random forest on the bundled sets\n\n`{command}`\n\n"
        f"{versions}\n\n{header}{body}")


if __name__ == "__main__":
    main()
