"""Facts about a finished run, read from its own records (never from an LLM)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.tools.errors import DataError
from hyperpilot.tools.importance import permutation_importance


def run_facts(run_dir: Path, with_importance: bool = True) -> dict[str, Any]:
    """A flat name -> value table of what a run measured, for answers that cite it."""
    folder = RunFolder(run_dir)
    result = folder.read_result()
    if not result.get("best"):
        raise DataError(f"the run in {run_dir} stopped before a model was chosen")
    board = folder.read_leaderboard()
    facts = {**_winner(result, board), **_tried(result, board)}
    if with_importance:
        facts["importance"] = _importance_text(run_dir, result)
    return facts


def _winner(result: dict[str, Any], board: pd.DataFrame) -> dict[str, Any]:
    best, hold = result["best"], result["holdout"]
    match = board[(board["model"] == best["model"])
                  & ((board["score"] - best["cv_score"]).abs() < 1e-12)]
    row = (match if len(match) else board).iloc[0]
    current = board[board["plan"] == row["plan"]] if "plan" in board else board
    others = current[(current["model"] != best["model"]) & current["score"].notna()]
    checks = result["verification"]
    return {
        "best_model": best["model"], "best_trial": int(row["trial"]),
        "best_config": json.dumps(best["config"]), "metric": hold["metric"],
        "cv_score": float(best["cv_score"]), "cv_std": float(row["cv_std"]),
        "holdout_score": float(hold["score"]), "holdout_rows": int(hold["rows"]),
        "baseline": float(hold["baseline"]),
        "runner_up": str(others.iloc[0]["model"]) if len(others) else "",
        "runner_up_cv": float(others.iloc[0]["score"]) if len(others) else float("nan"),
        "final_model": _final_text(result.get("final_model")),
        "verification": ", ".join(f"{n} {checks[n]}" for n in
                                  ("request", "execution", "implementation") if n in checks),
    }


def _final_text(final: dict[str, Any] | None) -> str:
    """The saved model in words: an ensemble's members and weights, a threshold, a calibration."""
    if not final:
        return ""
    text = ("" if final["kind"] == "single" else "an ensemble of " + " + ".join(
        f"{m['weight']}x {m['model']} (trial #{m['trial']})" for m in final["members"]))
    if final.get("threshold") is not None:
        text += f"{'; ' if text else ''}decision threshold {final['threshold']:.4f}"
    if final.get("calibration"):
        text += f"{'; ' if text else ''}{final['calibration']['method']} calibration"
    return text


def _tried(result: dict[str, Any], board: pd.DataFrame) -> dict[str, Any]:
    families = []
    for family, group in board.groupby("model", sort=False):
        done = group["score"].dropna()
        best = f"best {done.iloc[0]:.4f}" if len(done) else "none finished"
        families.append(f"{family} x{len(group)} ({best})")
    return {"trials": len(board), "failed_trials": int((board["state"] == "FAIL").sum()),
            "families": "; ".join(families), "stop_reason": result.get("stop_reason") or "-",
            "dropped": ", ".join(f"{c} ({why})" for c, why in result.get("dropped", {}).items())}


def importance(run_dir: Path, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Permutation importance on the run's holdout rows: as the run took it, of the model
    fitted on the training rows; for a folder that kept none, of the saved model (which may
    have been refit on those rows too: an older run's only record)."""
    folder = RunFolder(run_dir)
    _, facts = folder.read_evaluation()
    kept = (facts.get("importance") or {}).get("table")
    if kept:
        return list(kept)
    task = result["task"]
    rows, model = folder.read_holdout(), folder.load_model()
    X, y = rows.drop(columns=[task["target"]]), rows[task["target"]]
    return permutation_importance(model, X, y, result["features"], task["metric"],
                                  task.get("positive_class"), seed=result.get("seed") or 0)


def _importance_text(run_dir: Path, result: dict[str, Any], top: int = 5) -> str:
    table = importance(run_dir, result)[:top]
    return "; ".join(f"{r['feature']} {r['importance']:.4f} ± {r['std']:.4f}" for r in table)
