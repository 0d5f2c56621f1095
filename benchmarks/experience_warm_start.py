"""Does a second run on similar data start from the first run's winners and get there sooner?

For each bundled set: run A (seed 0) fills a fresh experience store; then the same task runs
on a new split (seed 1) twice, B with the store and C without. Reported: trials each needs
until its best CV score comes within 0.002 of A's best CV (and of C's final best), and the
final scores.
Usage:

    python benchmarks/experience_warm_start.py [--trials 30] [--out benchmarks/results/experience]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import sklearn

from hyperpilot.pipelines.run import run_task

TASKS = {
    "digits": "predict the digit, optimise accuracy",
    "diabetes": "predict disease progression, optimise R2",
    "breast_cancer": "predict the diagnosis, optimise accuracy",
}
# Scores within this much of a target count as reaching it: CV on a new split is not the
# first run's CV, and differences this small are noise on these sets.
TOLERANCE = 0.002


def trials_to_reach(trials: list[dict[str, Any]], target: float) -> int | None:
    """1-based count of trials until the best score so far reaches ``target``."""
    best = float("-inf")
    for count, trial in enumerate(trials, start=1):
        if trial["score"] is not None:
            best = max(best, trial["score"])
        if best >= target - TOLERANCE:
            return count
    return None


def compare(name: str, trials: int, work: Path) -> dict[str, Any]:
    store = work / f"{name}.sqlite"
    common = {"llm_spec": "none", "trials": trials}
    first = run_task(TASKS[name], f"sklearn:{name}", work / f"{name}-a", seed=0,
                     experience=store, **common)
    warm = run_task(TASKS[name], f"sklearn:{name}", work / f"{name}-b", seed=1,
                    experience=store, **common)
    cold = run_task(TASKS[name], f"sklearn:{name}", work / f"{name}-c", seed=1,
                    experience=False, **common)
    target, cold_best = first["best"]["cv_score"], cold["best"]["cv_score"]
    return {
        "dataset": name, "first_best_cv": target,
        "with_experience_to_first": trials_to_reach(warm["trials"], target),
        "without_to_first": trials_to_reach(cold["trials"], target),
        "with_experience_to_cold_best": trials_to_reach(warm["trials"], cold_best),
        "without_to_cold_best": trials_to_reach(cold["trials"], cold_best),
        "with_experience_best_cv": warm["best"]["cv_score"], "without_best_cv": cold_best,
        "with_experience_holdout": warm["holdout"]["score"],
        "without_holdout": cold["holdout"]["score"],
    }


def markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    return header + "".join(
        "| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |\n"
        for row in table.itertuples(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/experience"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        rows = [compare(name, args.trials, Path(work)) for name in TASKS]
    table = pd.DataFrame(rows)
    for column in [c for c in table.columns if "_to_" in c]:
        table[column] = [str(int(v)) if pd.notna(v) else "never" for v in table[column]]
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "results.csv", index=False)
    command = "python benchmarks/experience_warm_start.py " + " ".join(sys.argv[1:])
    versions = (f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
                f"pandas {pd.__version__}")
    (args.out / "results.md").write_text(
        f"# Warm start from experience\n\n`{command}`\n\n{versions}\n\nTrials are counted from "
        f"the start of the run (1-based); 'never' means not within the budget.\n\n"
        + markdown(table))
    print(markdown(table))


if __name__ == "__main__":
    main()
