"""The benchmark's summary: normalised regret, average rank, test score and overhead.

Normalised regret on a task (dataset, model, seed) is the share of the improvement over
the shared initial design that a method has still not found:
``(best known - best_cv) / (best known - best of the initial design)``, where "best
known" is the best CV score any method reached on that task (0 when nothing improved).
Ranks are within each task and checkpoint, 1 = highest best_cv, ties averaged.
"""

from __future__ import annotations

import pandas as pd

TASK = ["dataset", "model", "seed"]
REFERENCE = "optuna-tpe"


def add_regret_and_rank(results: pd.DataFrame) -> pd.DataFrame:
    frame = results.copy()
    by_task = frame.groupby(TASK)["best_cv"]
    best = by_task.transform("max")
    initial = frame[frame["n_evals"] == frame["n_evals"].min()].groupby(TASK)["best_cv"].min()
    start = frame.set_index(TASK).index.map(initial.to_dict()).to_numpy(dtype=float)
    gap = (best - start).where(best - start > 0)
    frame["regret"] = ((best - frame["best_cv"]) / gap).fillna(0.0).clip(lower=0.0)
    frame["rank"] = frame.groupby([*TASK, "n_evals"])["best_cv"].rank(ascending=False)
    return frame


def _pivot(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    table = frame.pivot_table(index="method", columns="n_evals", values=column, aggfunc="mean")
    table.columns = [f"{column} @{n}" for n in table.columns]
    return table


def overhead_table(frame: pd.DataFrame) -> pd.DataFrame:
    last = frame[frame["n_evals"] == frame["n_evals"].max()]
    per_trial = last.groupby("method")["overhead_s"].median().rename("overhead s/trial (median)")
    table = per_trial.to_frame()
    if REFERENCE in per_trial.index and per_trial[REFERENCE] > 0:
        table[f"x {REFERENCE}"] = per_trial / per_trial[REFERENCE]
    return table


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    frame = add_regret_and_rank(results)
    table = pd.concat([_pivot(frame, "rank"), _pivot(frame, "regret"),
                       _pivot(frame, "test_of_best"), overhead_table(frame)], axis=1)
    return table.sort_values(table.columns[len(_pivot(frame, "rank").columns) - 1])


def markdown(table: pd.DataFrame) -> str:
    head = "| " + " | ".join(["method", *map(str, table.columns)]) + " |"
    rule = "|" + "---|" * (len(table.columns) + 1)
    rows = ["| " + " | ".join([str(name), *(f"{v:.3f}" if pd.notna(v) else "" for v in row)]) + " |"
            for name, row in table.iterrows()]
    return "\n".join([head, rule, *rows])


def summary_markdown(results: pd.DataFrame, header: str) -> str:
    if results.empty:
        return f"# Tuner benchmark\n\n{header}\n\nNo method produced results."
    per_model = add_regret_and_rank(results)
    last = per_model[per_model["n_evals"] == per_model["n_evals"].max()]
    by_model = last.pivot_table(index="method", columns="model", values="rank", aggfunc="mean")
    by_model.columns = [f"rank @30 {m}" for m in by_model.columns]
    return "\n\n".join([
        "# Tuner benchmark", header,
        "Lower rank and regret are better; ranks at 5 evaluations tie because every method "
        "starts from the same 5 configs. test_of_best: test-split score of the best-CV "
        "config (accuracy, or negative MSE on standardised y for diabetes). Overhead: "
        "seconds a method spent proposing per trial (training excluded).",
        "## All tasks", markdown(summary_table(results)),
        "## Average rank at the last checkpoint, per model", markdown(by_model)])
