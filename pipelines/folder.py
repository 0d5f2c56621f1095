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
    append_jsonl,
    read_jsonl,
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
REPORT_HTML, PREDICTIONS, EVALUATION = "report.html", "holdout_predictions.parquet", "evaluation.json"
OOF = "oof"  # a folder: one out-of-fold prediction array per complete trial
PLOTS = "plots"  # a folder: the report's figures
# Only these are ever removed when a run folder is reused; anything else in it stays.
RUN_FILES = (MODEL, RESULT, LEADERBOARD, TRIALS, REPORT, TRANSCRIPT, HOLDOUT, CHECKPOINTS,
             f"{CHECKPOINTS}-wal", f"{CHECKPOINTS}-shm", LOG, OPTIONS, REPORT_HTML, PREDICTIONS,
             EVALUATION)


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
    report_html, predictions, evaluation = _File(REPORT_HTML), _File(PREDICTIONS), _File(EVALUATION)
    plots = _File(PLOTS)

    # --- what a run is ---------------------------------------------------------------

    def is_run(self) -> bool:
        return (self.path / MARKER).exists()

    def can_continue(self) -> bool:
        return self.is_run() and self.checkpoints.exists()

    def is_stopped(self) -> bool:
        """Whether the folder holds a run that started and never finished (killed, stopped,
        or ended by an error): its checkpoints are there and its result is not."""
        return self.can_continue() and not self.result.is_file()

    def check(self, restart: bool = False) -> None:
        """Refuse a folder a new run may not use, before anything is written anywhere: a
        file, a path under a file, a non-empty folder that is not a hyperpilot run (nothing a
        user had is lost), or a stopped run unless ``restart`` (nor are its trials)."""
        if self.path.exists() and not self.path.is_dir():
            raise OutputDirError(f"--out {self.path} is a file, not a folder")
        above = next((p for p in self.path.parents if p.exists()), None)
        if above is not None and not above.is_dir():
            raise OutputDirError(f"--out {self.path}: {above} is a file, not a folder")
        if self.path.exists() and any(self.path.iterdir()):
            if not self.is_run():
                raise OutputDirError(f"--out {self.path} is not empty and holds no hyperpilot "
                                     "run; choose a new or empty folder")
            if self.is_stopped() and not restart:
                raise OutputDirError(f"{self.path} holds a run that did not finish; resume it "
                                     f"with `hyperpilot resume {self.path}`, or pass --restart "
                                     "to start it over")

    def prepare(self, restart: bool = False) -> bool:
        """Make the folder ready for a new run (after ``check``); True when an earlier run's
        files were replaced."""
        self.check(restart)
        replaced = False
        if self.path.exists() and any(self.path.iterdir()):
            for name in RUN_FILES:
                (self.path / name).unlink(missing_ok=True)
            for name in (OOF, PLOTS):
                shutil.rmtree(self.path / name, ignore_errors=True)
            replaced = True
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputDirError(f"cannot make the run folder {self.path}: {err.strerror}") from None
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

    def save_evaluation(self, predictions: pd.DataFrame, facts: dict[str, Any]) -> None:
        """Keep what the report's plots are drawn from: the holdout predictions of the model
        the holdout scored, and the facts beside them (classes, importances)."""
        save_frame(predictions, self.predictions)
        write_json(self.evaluation, facts)

    def append_trial(self, trial: dict[str, Any]) -> None:
        """Add a finished trial to ``trials.jsonl`` as soon as it finishes (the journal a
        resumed run takes its finished trials from); the report rewrites the file whole."""
        append_jsonl(self.trials, trial)

    def write_records(self, result: dict[str, Any], trials: list[dict[str, Any]],
                      board: pd.DataFrame) -> None:
        write_json(self.result, result)
        write_jsonl(self.trials, trials)
        write_text(self.leaderboard, board.to_csv(index=False))

    def write_reports(self, markdown: str, html: str) -> None:
        write_text(self.report, markdown)
        write_text(self.report_html, html)

    def write_log(self, text: str) -> bool:
        """Keep a traceback in the folder's log; False when there is no folder to keep it in."""
        if not self.path.is_dir():
            return False
        try:
            self.log.write_text(text)
        except OSError:
            return False
        return True

    # --- reading ---------------------------------------------------------------------

    def load_options(self) -> RunOptions | None:
        """The options the run was started with; None for a folder made before they were kept."""
        return load_options(self.options) if self.options.exists() else None

    def read_result(self) -> dict[str, Any]:
        if not self.result.is_file():
            raise DataError(f"{self.path} holds no finished run yet")
        return dict(json.loads(self.result.read_text()))

    def read_trials(self) -> list[dict[str, Any]]:
        """The trials in ``trials.jsonl``: all of a finished run, those that had finished of
        a stopped one."""
        return read_jsonl(self.trials)

    def last_written(self) -> float | None:
        """When the run last wrote its checkpoints or journal (``time.time()`` seconds)."""
        paths = [self.checkpoints, self.path / f"{CHECKPOINTS}-wal", self.trials]
        times = [p.stat().st_mtime for p in paths if p.is_file()]
        return max(times) if times else None

    def read_leaderboard(self) -> pd.DataFrame:
        return pd.read_csv(self.leaderboard)

    def read_holdout(self) -> pd.DataFrame:
        return pd.read_parquet(self.holdout)

    def read_evaluation(self) -> tuple[pd.DataFrame | None, dict[str, Any]]:
        """The holdout predictions and evaluation facts; (None, {}) for a run that kept none
        (one made before they were kept, or stopped before a model was chosen)."""
        if not (self.predictions.is_file() and self.evaluation.is_file()):
            return None, {}
        return pd.read_parquet(self.predictions), dict(json.loads(self.evaluation.read_text()))

    def load_oof(self, plan_id: str, number: int) -> np.ndarray | None:
        """A trial's out-of-fold predictions, or None when none were kept."""
        path = self._oof_path(plan_id, number)
        return np.load(path, allow_pickle=False) if path.is_file() else None

    def load_model(self) -> Any:
        return joblib.load(self.model)

    def missing(self, *paths: Path) -> list[str]:
        """The names of ``paths`` (this folder's files) that are not there."""
        return [p.name for p in paths if not p.is_file()]
