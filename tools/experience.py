"""The experience store: what past runs saw and what won, in SQLite, retrieved by similarity.

Runs share one store: they wait for each other's locks, and a store still locked after a
while, or one that cannot be opened, is skipped with a warning and left untouched. Only a
file that is not a store this version can read (not a database, damaged, a newer schema) is
set aside (renamed) with a warning saying where, and a new one started: experience helps a
run, it must never stop one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

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
# How long one call waits for another process's write lock, and how many more times it tries.
BUSY_SECONDS, BUSY_RETRIES = 30.0, 2
T = TypeVar("T")


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
    """A SQLite file of ``Experience`` records that every run on the machine shares.

    The file is in WAL mode, so reading never waits for a writer, and each write is one
    transaction. A call that finds another process holding the lock waits ``timeout``
    seconds for it, up to ``retries`` more times; a store still busy after that, or one
    that cannot be opened at all, is left as it is and skipped with a warning. Only a file
    that is not a SQLite database, a damaged one, or one of a newer schema is set aside.
    """

    def __init__(self, path: Path, timeout: float = BUSY_SECONDS, retries: int = BUSY_RETRIES) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.retries = retries

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            if _schema(connection) is None:
                _create(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def _with_store(self, work: Callable[[sqlite3.Connection], T], fallback: T) -> T:
        """``work`` on a connection to the store; ``fallback`` when the store cannot be used."""
        tries, moved = 0, False
        while True:
            try:
                connection = self._connect()
                try:
                    return work(connection)
                finally:
                    connection.close()
            except (sqlite3.Error, OSError, ValueError, UnreadableStore) as err:
                kind = _failure(err)
                tries += 1
                if kind == "busy" and tries <= self.retries:
                    time.sleep(min(1.0, 0.05 * 2 ** tries))
                    continue
                if kind == "unreadable" and not moved:
                    moved = self._set_aside(err)
                    if moved:
                        continue
                if kind == "busy":
                    log.warning("experience store %s is busy: another process held its lock "
                                "through %d waits of %gs; going on without it, the store is "
                                "left as it is", self.path, tries, self.timeout)
                else:
                    log.warning("no experience store this run: cannot use %s (%s)", self.path, err)
                return fallback

    def _set_aside(self, err: Exception) -> bool:
        """Rename the unreadable store (and any WAL files beside it) aside, deleting nothing;
        True when the path is free for a new store, also when another process moved it first."""
        if not _still_unreadable(self.path):
            return True  # another process replaced it with a good store meanwhile
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.unreadable-{stamp}-{os.getpid()}")
        try:
            self.path.rename(aside)
        except FileNotFoundError:
            return True
        except OSError as move_err:
            log.warning("no experience store this run: %s is unreadable (%s) and cannot be "
                        "moved aside (%s)", self.path, err, move_err)
            return False
        for suffix in ("-wal", "-shm"):  # another process's open of the file may have left them
            side = self.path.with_name(self.path.name + suffix)
            with contextlib.suppress(OSError):
                side.rename(aside.with_name(aside.name + suffix))
        log.warning("experience store %s is unreadable (%s); set aside as %s, starting a new "
                    "one", self.path, err, aside)
        return True

    def add(self, record: Experience) -> None:
        """Store one run (replacing a record with the same id)."""

        def write(connection: sqlite3.Connection) -> None:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?)",
                               (record.run_id, record.created, record.task_type,
                                record.model_dump_json()))
            connection.execute("COMMIT")

        self._with_store(write, None)

    def all(self) -> list[Experience]:
        def read(connection: sqlite3.Connection) -> list[str]:
            return [row[0] for row in
                    connection.execute("SELECT record FROM runs ORDER BY created").fetchall()]

        none: list[str] = []
        records = []
        for text in self._with_store(read, none):
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


class UnreadableStore(Exception):
    """The file is a SQLite database but not an experience store this version can read."""


def _schema(connection: sqlite3.Connection) -> int | None:
    """The store's schema version; None for a new (or half-created) store."""
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"meta", "runs"} <= tables:
        return None
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if row is None:
        return None
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        raise UnreadableStore(f"schema version {row[0]!r} is not a number") from None
    if version > SCHEMA_VERSION:
        raise UnreadableStore(f"schema {version} is newer than {SCHEMA_VERSION}")
    return version


def _create(connection: sqlite3.Connection) -> None:
    # Other processes may be creating the same store now: in one write transaction, tables
    # and version that one of them made first are kept as they are.
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    connection.execute("CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, "
                       "created REAL, task_type TEXT, record TEXT)")
    connection.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
    connection.execute("COMMIT")


def _failure(err: Exception) -> str:
    """``busy`` (another process holds the lock), ``unreadable`` (not a store this version
    can read) or ``other`` (cannot open or write it: permissions, a folder in its place...)."""
    if isinstance(err, UnreadableStore):
        return "unreadable"
    code = getattr(err, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return "busy"
    if primary in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
        return "unreadable"
    return "other"


def _still_unreadable(path: Path) -> bool:
    """Whether ``path`` is still unreadable now, read-only: between a failed open and the
    rename another process may have set it aside and started a good store there."""
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=0.0)
    except sqlite3.Error:
        return False  # gone
    try:
        _schema(connection)
    except (sqlite3.Error, UnreadableStore) as err:
        return _failure(err) == "unreadable"
    finally:
        connection.close()
    return False


def describe(record: Experience, score: float) -> dict[str, Any]:
    """A short summary of a past run for prompts and reports."""
    return {"run_id": record.run_id, "similarity": round(score, 3), "task": record.text,
            "metric": record.metric, "winner": record.best_model,
            "best_cv": round(record.best_cv, 4), "rows": round(10 ** record.meta["log_rows"])}
