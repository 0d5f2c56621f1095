"""Does a second run on similar data start from the first run's winners and get there sooner?

Protocol, for each bundled set and each seed s:

- A, the first run: split seed s, a fresh empty experience store; it records itself there.
- B, the second run with experience: a new split (seed s + 100) and its own store holding
  only A's record, so B retrieves A and starts from A's winners.
- C, the second run without experience: the same new split as B, ``--no-experience``.

B and C share their split and folds, so they compare directly. A's best CV is the maximum of
its trials on another split, an optimistic target for B and C; so besides the exact question
(trials until the best CV so far reaches A's best) the table gives trials to reach A's best
minus one standard error of its winning trial's fold scores (a noise-aware target), trials
to reach C's final best, the first trial's score, and both runs' final CV and holdout scores.
Trials are counted from the start of the run (1-based); "never" means not within the budget.

Usage (about 9 minutes per seed on two busy cores):

    python benchmarks/experience_warm_start.py [--trials 30] [--seeds 0,1,2] \
        [--out benchmarks/results/experience]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn

from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task

TASKS = {
    "digits": "predict the digit, optimise accuracy",
    "diabetes": "predict disease progression, optimise R2",
    "breast_cancer": "predict the diagnosis, optimise accuracy",
}
SECOND_SPLIT = 100  # the second runs' split seed is the first run's plus this


def trials_to_reach(trials: list[dict[str, Any]], target: float) -> int | None:
    """1-based count of trials until the best score so far reaches ``target`` (higher is better)."""
    best = float("-inf")
    for count, trial in enumerate(trials, start=1):
        if trial["score"] is not None:
            best = max(best, trial["score"])
        if best >= target:
            return count
    return None


def standard_error(state: dict[str, Any]) -> float:
    """Standard error of the mean over the winning trial's fold scores."""
    best = next(t for t in state["trials"] if t["number"] == state["best"]["trial"])
    folds = np.asarray(best["fold_scores"], dtype=float)
    return float(folds.std(ddof=1) / np.sqrt(len(folds))) if len(folds) > 1 else 0.0


def first_score(trials: list[dict[str, Any]]) -> float | None:
    return next((t["score"] for t in trials if t["score"] is not None), None)


def compare(name: str, seed: int, trials: int, work: Path) -> dict[str, Any]:
    """Runs A, B and C for one data set and seed; one row of the results table."""
    source, text = f"sklearn:{name}", TASKS[name]
    options = RunOptions(llm="none", trials=trials)
    first_store, warm_store = work / f"{name}-{seed}-a" / "store.sqlite", work / f"{name}-{seed}-b"
    first_store.parent.mkdir(parents=True)
    first = run_task(text, source, work / f"{name}-{seed}-a" / "run",
                     options.changed(seed=seed, experience=first_store))
    assert first["task"]["direction"] == "maximize", "the trial counts assume higher is better"
    warm_store.mkdir()
    shutil.copy(first_store, warm_store / "store.sqlite")
    second_seed = seed + SECOND_SPLIT
    warm = run_task(text, source, warm_store / "run",
                    options.changed(seed=second_seed, experience=warm_store / "store.sqlite"))
    cold = run_task(text, source, work / f"{name}-{seed}-c",
                    options.changed(seed=second_seed, experience=None))
    target, cold_best = first["best"]["cv_score"], cold["best"]["cv_score"]
    noise_aware = target - standard_error(first)
    return {
        "dataset": name, "seed": seed, "metric": first["task"]["metric"],
        "retrieved_first": bool(warm["retrieved"]["runs"])
        and warm["retrieved"]["runs"][0]["run_id"] == first["run_id"],
        "a_best_cv": target, "a_best_cv_minus_se": noise_aware,
        "b_to_a_best": trials_to_reach(warm["trials"], target),
        "c_to_a_best": trials_to_reach(cold["trials"], target),
        "b_to_a_best_minus_se": trials_to_reach(warm["trials"], noise_aware),
        "c_to_a_best_minus_se": trials_to_reach(cold["trials"], noise_aware),
        "b_to_c_best": trials_to_reach(warm["trials"], cold_best),
        "c_to_c_best": trials_to_reach(cold["trials"], cold_best),
        "b_first_trial_cv": first_score(warm["trials"]),
        "c_first_trial_cv": first_score(cold["trials"]),
        "b_best_cv": warm["best"]["cv_score"], "c_best_cv": cold_best,
        "a_holdout": first["holdout"]["score"], "b_holdout": warm["holdout"]["score"],
        "c_holdout": cold["holdout"]["score"],
        "b_winner": warm["best"]["model"], "c_winner": cold["best"]["model"],
    }


def summary(table: pd.DataFrame, budget: int) -> str:
    """Counts over all rows: how often B needs fewer, as many, or more trials than C."""
    lines = []
    for target in ["a_best", "a_best_minus_se", "c_best"]:
        b = table[f"b_to_{target}"].fillna(budget + 1)
        c = table[f"c_to_{target}"].fillna(budget + 1)
        lines.append(f"| {target} | {int((b < c).sum())} | {int((b == c).sum())} | "
                     f"{int((b > c).sum())} | {b.median():g} | {c.median():g} |")
    head = ("| target | B fewer | tie | B more | median B | median C |\n"
            "|---|---|---|---|---|---|\n")
    return head + "\n".join(lines) + (f"\n\n'never' counts as {budget + 1} in the medians.\n"
                                      f"Mean holdout: B {table['b_holdout'].mean():.4f}, "
                                      f"C {table['c_holdout'].mean():.4f}.\n")


def markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    return header + "".join(
        "| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |\n"
        for row in table.itertuples(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/experience"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as work:
        rows = [compare(name, seed, args.trials, Path(work)) for seed in seeds for name in TASKS]
    table = pd.DataFrame(rows)
    shown = table.copy()
    for column in [c for c in table.columns if "_to_" in c]:
        shown[column] = [str(int(v)) if pd.notna(v) else "never" for v in table[column]]
    args.out.mkdir(parents=True, exist_ok=True)
    shown.to_csv(args.out / "results.csv", index=False)
    command = "python benchmarks/experience_warm_start.py " + " ".join(sys.argv[1:])
    versions = (f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
                f"pandas {pd.__version__}, numpy {np.__version__}")
    protocol = __doc__.split("Usage")[0].split("\n", 2)[2].strip()
    text = (f"# Warm start from experience\n\n`{command}`\n\n{versions}\n\n{protocol}\n\n"
            f"## Summary ({len(table)} data set x seed pairs)\n\n{summary(table, args.trials)}\n"
            f"## Per data set and seed\n\n{markdown(shown)}")
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
