"""The experience store: what past runs saw and what won, in SQLite, retrieved by similarity.

A corrupt store, or one written by a newer schema, is set aside (renamed) with a warning and
a new one started: experience helps a run, it must never stop one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from hyperpilot.tools.knowledge import BM25
from hyperpilot.tools.types import (
    Config,
    DataProfile,
    TaskSpec,
    TrialRecord,
    TrialState,
    best_trial,
    ranked_trials,
)

log = logging.getLogger(__name__)
# Version 1 records gained ``FamilyResult.top_configs`` with a default: old records still
# validate and older readers ignore the new key, so the version stays 1. Bump it only for a
# change that an older reader would misread.
SCHEMA_VERSION = 1
TOP_CONFIGS = 3


class FamilyResult(BaseModel):
    """What one model family reached in a run; ``top_configs`` are its best distinct configs,
    best first (empty in records written before they were kept)."""

    best_config: Config
    best_cv: float
    trials: int
    top_configs: list[Config] = Field(default_factory=list)

    def starts(self) -> list[Config]:
        """The configs a later run should start from, best first."""
        return self.top_configs or [self.best_config]


def top_configs(trials: list[TrialRecord], direction: str, k: int = TOP_CONFIGS) -> list[Config]:
    """The ``k`` best distinct configs among the complete trials, best first (earlier wins ties).

    Args:
        trials: one family's trials.
        direction: "maximize" or "minimize", the metric's direction.
        k: how many to keep.
    """
    out: list[Config] = []
    for trial in ranked_trials(trials, direction):
        if trial.config not in out:
            out.append(trial.config)
    return out[:k]


class Experience(BaseModel):
    """One finished run, as the next run's planner sees it."""

    run_id: str
    created: float = Field(default_factory=time.time)
    text: str
    task_type: str
    metric: str
    direction: str
    meta: dict[str, float]
    best_model: str
    best_cv: float
    holdout: float | None = None
    families: dict[str, FamilyResult] = Field(default_factory=dict)
    failures: list[str] = Field(default_factory=list)
    seconds: float = 0.0


def experience_of(run_id: str, task: TaskSpec, profile: DataProfile, trials: list[TrialRecord],
                  winner: TrialRecord, holdout: float | None, seconds: float) -> Experience:
    """What the next run's planner should know about a finished run: per family its best
    and top configs, the winner, the first failures.

    Args:
        run_id: the run's id.
        task: the resolved task; profile: the data profile the winner was trained on.
        trials: every trial of the run; winner: the one that was refit and shipped.
        holdout: the winner's holdout score; seconds: the run's wall time.
    """
    families: dict[str, FamilyResult] = {}
    for family in dict.fromkeys(t.model for t in trials):
        own = [t for t in trials if t.model == family]
        best = best_trial(own, task.direction)
        if best is not None:
            families[family] = FamilyResult(best_config=best.config, best_cv=float(best.score or 0.0),
                                            trials=len(own),
                                            top_configs=top_configs(own, task.direction))
    return Experience(
        run_id=run_id, text=task.text, task_type=task.task_type, metric=task.metric,
        direction=task.direction, meta=meta_features(profile),
        best_model=winner.model, best_cv=float(winner.score or 0.0),
        holdout=holdout, families=families,
        failures=[t.error for t in trials if t.state == TrialState.FAIL and t.error][:20],
        seconds=seconds)


def default_store_path() -> Path:
    """``$XDG_DATA_HOME/hyperpilot/experience.sqlite`` (``~/.local/share`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hyperpilot" / "experience.sqlite"


def meta_features(profile: DataProfile) -> dict[str, float]:
    """Numbers that say what kind of data this is, on scales where distances make sense.

    Args:
        profile: the data profile of a run.
    """
    n_features = max(len(profile.features), 1)
    return {
        "log_rows": math.log10(max(profile.n_rows, 1)),
        "log_features": math.log10(n_features),
        "categorical_share": len(profile.categorical_features) / n_features,
        "missing": profile.missing_fraction,
        "log_imbalance": math.log10(max(profile.imbalance_ratio, 1.0)),
        "classes": float(len(profile.class_counts)),
    }


def similarity(a: dict[str, float], b: dict[str, float]) -> float:
    """In (0, 1]: 1 for identical meta-features, falling with their distance."""
    scales = {"log_rows": 1.0, "log_features": 1.0, "categorical_share": 0.5, "missing": 0.3,
              "log_imbalance": 0.5, "classes": 5.0}
    squared = sum(((a.get(k, 0.0) - b.get(k, 0.0)) / s) ** 2 for k, s in scales.items())
    return 1.0 / (1.0 + math.sqrt(squared))


class ExperienceStore:
    """A SQLite file of ``Experience`` records. Each write is one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30)
        connection.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        connection.execute("CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, "
                           "created REAL, task_type TEXT, record TEXT)")
        row = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            connection.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            connection.commit()
        elif int(row[0]) > SCHEMA_VERSION:
            connection.close()
            raise sqlite3.DatabaseError(f"schema {row[0]} is newer than {SCHEMA_VERSION}")
        return connection

    def _open(self) -> sqlite3.Connection | None:
        try:
            return self._connect()
        except (sqlite3.DatabaseError, ValueError) as err:
            aside = self.path.with_name(f"{self.path.name}.unreadable-{int(time.time())}")
            log.warning("experience store %s is unusable (%s); set aside as %s, starting anew",
                        self.path, err, aside.name)
            if self.path.exists():
                self.path.rename(aside)
            try:
                return self._connect()
            except sqlite3.Error as again:
                log.warning("no experience store this run: %s", again)
                return None

    def add(self, record: Experience) -> None:
        """Store one run (replacing a record with the same id)."""
        connection = self._open()
        if connection is None:
            return
        with connection:
            connection.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?)",
                               (record.run_id, record.created, record.task_type,
                                record.model_dump_json()))
        connection.close()

    def all(self) -> list[Experience]:
        connection = self._open()
        if connection is None:
            return []
        rows = connection.execute("SELECT record FROM runs ORDER BY created").fetchall()
        connection.close()
        records = []
        for (text,) in rows:
            try:
                records.append(Experience.model_validate(json.loads(text)))
            except ValueError:
                continue  # one damaged record does not hide the others
        return records

    def similar(self, meta: dict[str, float], text: str, task_type: str,
                k: int = 3) -> list[tuple[Experience, float]]:
        """Past runs of the same task type, most similar first: data likeness plus text."""
        records = [r for r in self.all() if r.task_type == task_type]
        if not records:
            return []
        lexical = BM25([(r.run_id, r.text) for r in records]).score(text)
        top = max(lexical) or 1.0
        scored = [(r, 0.8 * similarity(meta, r.meta) + 0.2 * s / top)
                  for r, s in zip(records, lexical, strict=True)]
        return sorted(scored, key=lambda p: -p[1])[:k]


def describe(record: Experience, score: float) -> dict[str, Any]:
    """A short summary of a past run for prompts and reports."""
    return {"run_id": record.run_id, "similarity": round(score, 3), "task": record.text,
            "metric": record.metric, "winner": record.best_model,
            "best_cv": round(record.best_cv, 4), "rows": round(10 ** record.meta["log_rows"])}
