"""Successive halving over CV folds against full CV, on the bundled digits set.

    python benchmarks/halving_digits.py [--mode fixed|search] [--per-family 6] [--seed 0]

Both arms train the same way as a run's tuner (``run_trial``: 80% training rows, 5 shared
folds); the halving arm passes ``halving=FoldHalving()``. ``fixed``: each family's zoo
default, then random configs of its space, the same ones in both arms, families
interleaved as the run schedules them. ``search``: the run's own sampler proposes (zoo
default first), so the arms may diverge once a trial is pruned. Prints seconds, pruned
trials, and the best trial of each arm.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hyperpilot.agents.tuner.agent import TrainingData, run_trial
from hyperpilot.agents.tuner.halving import FoldHalving
from hyperpilot.tools.data import load_table, profile_table, split_holdout
from hyperpilot.tools.evaluate import make_folds
from hyperpilot.tools.types import Budget, Config, DataProfile, TaskSpec, TrialRecord, TrialState
from hyperpilot.tools.zoo import get_model

FAMILIES = ("linear", "knn", "svm", "random_forest")


def setup(seed: int) -> tuple[TaskSpec, DataProfile, TrainingData]:
    frame = load_table("sklearn:digits")
    task = TaskSpec(text="predict the digit", task_type="multiclass", target="digit",
                    metric="accuracy", direction="maximize", budget=Budget(trials=100))
    train, _ = split_holdout(frame, "digit", "multiclass", seed=seed)
    rows = frame.iloc[train]
    X, y = rows.drop(columns=["digit"]), rows["digit"]
    data = TrainingData(X, y, make_folds(y.to_numpy(), "multiclass", 5, seed))
    return task, profile_table(rows, "digit"), data


def schedule(per_family: int, seed: int, fixed: bool) -> list[tuple[str, list[Config]]]:
    """(family, warm configs) per trial, families interleaved."""
    rng = np.random.default_rng(seed)
    plans = {}
    for family in FAMILIES:
        space = get_model(family).space("multiclass")
        default = space.repair(get_model(family).defaults("multiclass"))
        extra = [space.sample(rng) for _ in range(per_family - 1)] if fixed else []
        plans[family] = [default, *extra]
    rows = []
    for i in range(per_family):
        for family in FAMILIES:
            rows.append((family, plans[family][i:i + 1] if fixed else plans[family][:1]))
    return rows


def arm(rows: list[tuple[str, list[Config]]], setting: tuple[TaskSpec, DataProfile, TrainingData],
        seed: int, halving: FoldHalving | None) -> tuple[list[TrialRecord], float, float]:
    """The trials, wall seconds and CPU seconds (the machine may be shared; fits use one core)."""
    task, profile, data = setting
    history: list[TrialRecord] = []
    wall, cpu = time.perf_counter(), time.process_time()
    for family, warm in rows:
        space = get_model(family).space("multiclass")
        history.append(run_trial(family, space, warm, history, task, profile, data, seed,
                                 halving=halving))
    return history, time.perf_counter() - wall, time.process_time() - cpu


def best(history: list[TrialRecord]) -> TrialRecord:
    done = [r for r in history if r.state is TrialState.COMPLETE and r.score is not None]
    return max(done, key=lambda r: (r.score, -r.number))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["fixed", "search"], default="fixed")
    parser.add_argument("--per-family", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setting = setup(args.seed)
    rows = schedule(args.per_family, args.seed, args.mode == "fixed")
    full, full_s, full_cpu = arm(rows, setting, args.seed, None)
    halved, halved_s, halved_cpu = arm(rows, setting, args.seed, FoldHalving())
    pruned = [r for r in halved if r.state is TrialState.PRUNED]
    full_scores = {(r.model, str(r.config)): r.score for r in full}
    print(f"{args.mode}: {len(rows)} trials, {len(FAMILIES)} families, seed {args.seed}")
    print(f"full CV: {full_s:.1f} s wall, {full_cpu:.1f} s CPU; halving: {halved_s:.1f} s wall, "
          f"{halved_cpu:.1f} s CPU ({100 * (1 - halved_cpu / full_cpu):.0f}% CPU saved), "
          f"{len(pruned)} pruned "
          f"({sum(len(r.fold_scores) for r in pruned)} of {5 * len(pruned)} folds run)")
    for name, history in (("full", full), ("halving", halved)):
        top = best(history)
        print(f"best {name}: #{top.number} {top.model} {top.config} cv {top.score:.4f}")
    if args.mode == "fixed":
        lost = sorted((full_scores[(r.model, str(r.config))] or 0.0, r.model) for r in pruned)
        print(f"full-CV scores of the pruned trials: best {lost[-1][0]:.4f} ({lost[-1][1]})"
              if lost else "nothing pruned")


if __name__ == "__main__":
    main()
