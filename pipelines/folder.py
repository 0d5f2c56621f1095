"""``RunFolder``: the one place that knows the run folder's file names.

A run folder holds everything a run made; a folder that is not empty and is not a run is
never written to, and a reused one loses only the files a run writes.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from hyperpilot.pipelines.options import RunOptions, load_options
from hyperpilot.tools.artifacts import (
    save_array,
    save_frame,
    save_model,
    write_json,
    write_jsonl,
    write_text,
)
from hyperpilot.tools.errors import DataError, OutputDirError

MARKER = ".hyperpilot-run"
MODEL, RESULT, LEADERBOARD = "model.joblib", "result.json", "leaderboard.csv"
TRIALS, REPORT, TRANSCRIPT = "trials.jsonl", "report.md", "transcript.jsonl"
HOLDOUT, CHECKPOINTS, LOG, OPTIONS = "holdout.parquet", "checkpoints.sqlite", "hyperpilot.log", "options.json"
OOF = "oof"  # a folder: one out-of-fold prediction array per complete trial
# Only these are ever removed when a run folder is reused; anything else in it stays.
RUN_FILES = (MODEL, RESULT, LEADERBOARD, TRIALS, REPORT, TRANSCRIPT, HOLDOUT, CHECKPOINTS,
             f"{CHECKPOINTS}-wal", f"{CHECKPOINTS}-shm", LOG, OPTIONS)


class _File:
    """A file of the run folder: ``folder.model`` is ``folder.path / "model.joblib"``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, folder: RunFolder, owner: type | None = None) -> Path:
        return folder.path / self.name


@dataclass(frozen=True)
class RunFolder:
    """A run's folder and the paths of its files."""

    path: Path

    model, result, leaderboard = _File(MODEL), _File(RESULT), _File(LEADERBOARD)
    trials, report, transcript = _File(TRIALS), _File(REPORT), _File(TRANSCRIPT)
    holdout, checkpoints, log, options = _File(HOLDOUT), _File(CHECKPOINTS), _File(LOG), _File(OPTIONS)

    # --- what a run is ---------------------------------------------------------------

    def is_run(self) -> bool:
        return (self.path / MARKER).exists()

    def can_continue(self) -> bool:
        return self.is_run() and self.checkpoints.exists()

    def prepare(self) -> bool:
        """Make the folder ready for a new run; True when an earlier run's files were replaced.

        A non-empty folder that is not a hyperpilot run is refused, so nothing a user had is lost.
        """
        if self.path.exists() and not self.path.is_dir():
            raise OutputDirError(f"--out {self.path} is a file, not a folder")
        replaced = False
        if self.path.exists() and any(self.path.iterdir()):
            if not self.is_run():
                raise OutputDirError(f"--out {self.path} is not empty and holds no hyperpilot "
                                     "run; choose a new or empty folder")
            for name in RUN_FILES:
                (self.path / name).unlink(missing_ok=True)
            shutil.rmtree(self.path / OOF, ignore_errors=True)
            replaced = True
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / MARKER).write_text("hyperpilot run folder\n")
        self.transcript.touch()
        return replaced

    # --- writing ---------------------------------------------------------------------

    def save_options(self, options: RunOptions) -> None:
        write_text(self.options, options.model_dump_json(indent=2) + "\n")

    def save_model(self, model: Any) -> None:
        save_model(model, self.model)

    def save_holdout(self, rows: pd.DataFrame) -> None:
        save_frame(rows, self.holdout)

    def save_oof(self, plan_id: str, number: int, oof: np.ndarray) -> None:
        """Keep a trial's out-of-fold predictions (``oof/<plan>-<number>.npy``)."""
        save_array(oof, self._oof_path(plan_id, number))

    def _oof_path(self, plan_id: str, number: int) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", plan_id) or "plan"
        return self.path / OOF / f"{safe}-{number}.npy"

    def write_records(self, result: dict[str, Any], trials: list[dict[str, Any]],
                      board: pd.DataFrame, report: str) -> None:
        write_json(self.result, result)
        write_jsonl(self.trials, trials)
        write_text(self.leaderboard, board.to_csv(index=False))
        write_text(self.report, report)

    def write_log(self, text: str) -> None:
        if self.path.is_dir():
            self.log.write_text(text)

    # --- reading ---------------------------------------------------------------------

    def load_options(self) -> RunOptions | None:
        """The options the run was started with; None for a folder made before they were kept."""
        return load_options(self.options) if self.options.exists() else None

    def read_result(self) -> dict[str, Any]:
        if not self.result.is_file():
            raise DataError(f"{self.path} holds no finished run yet")
        return dict(json.loads(self.result.read_text()))

    def read_leaderboard(self) -> pd.DataFrame:
        return pd.read_csv(self.leaderboard)

    def read_holdout(self) -> pd.DataFrame:
        return pd.read_parquet(self.holdout)

    def load_oof(self, plan_id: str, number: int) -> np.ndarray | None:
        """A trial's out-of-fold predictions, or None when none were kept."""
        path = self._oof_path(plan_id, number)
        return np.load(path, allow_pickle=False) if path.is_file() else None

    def load_model(self) -> Any:
        return joblib.load(self.model)

    def missing(self, *paths: Path) -> list[str]:
        """The names of ``paths`` (this folder's files) that are not there."""
        return [p.name for p in paths if not p.is_file()]
