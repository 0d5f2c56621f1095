"""The experience store under contention and damage: runs that share it wait for each other,
and only a file that is truly not a store is set aside."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hyperpilot.tools.experience import Experience, ExperienceStore

# Rounds of processes that all open one new store at the same moment; before the fix about
# one round in five lost a store or hung on its lock.
PROCESSES, ROUNDS = 8, 12


def _record(run_id: str) -> Experience:
    return Experience(run_id=run_id, text="predict y", task_type="binary", metric="accuracy",
                      direction="maximize", meta={"log_rows": 2.0}, best_model="linear",
                      best_cv=0.9)


def _add_at(job: tuple[str, str, float]) -> list[str]:
    """In a worker process: wait for the common start, add one record, return the warnings."""
    path, run_id, start_at = job
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("hyperpilot.tools.experience")
    logger.addHandler(handler)
    try:
        time.sleep(max(0.0, start_at - time.time()))
        ExperienceStore(Path(path)).add(_record(run_id))
    finally:
        logger.removeHandler(handler)
    return seen


def _context() -> multiprocessing.context.BaseContext:
    # Not fork: the test process has threads (earlier tests' servers, pools), and a forked child
    # can wait for ever on a lock one of them held.
    return multiprocessing.get_context("spawn")


def test_processes_creating_a_new_store_at_once_all_land(tmp_path: Path) -> None:
    with _context().Pool(PROCESSES) as pool:
        for round_ in range(ROUNDS):
            path = tmp_path / f"round-{round_}" / "experience.sqlite"
            start_at = time.time() + 0.1
            jobs = [(str(path), f"run-{i}", start_at) for i in range(PROCESSES)]
            warnings = pool.map(_add_at, jobs, chunksize=1)
            assert warnings == [[]] * PROCESSES
            assert sorted(r.run_id for r in ExperienceStore(path).all()) == \
                sorted(f"run-{i}" for i in range(PROCESSES))
            assert [p.name for p in path.parent.iterdir() if "unreadable" in p.name] == []


@contextlib.contextmanager
def _locked(path: Path, seconds: float) -> Iterator[None]:
    """Another connection holds the store's write lock for ``seconds`` from entry."""
    held = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, seconds, held))
    holder.start()
    held.wait()
    try:
        yield
    finally:
        holder.join()


def _hold_write_lock(path: Path, seconds: float, held: threading.Event) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    held.set()
    time.sleep(seconds)
    connection.execute("COMMIT")
    connection.close()


def test_a_writer_waits_out_a_lock_longer_than_one_busy_period(tmp_path: Path, caplog) -> None:
    path = tmp_path / "experience.sqlite"
    store = ExperienceStore(path, timeout=0.4, retries=3)
    store.add(_record("first"))
    with _locked(path, 0.7):
        started = time.monotonic()
        store.add(_record("second"))
    assert time.monotonic() - started >= 0.4  # it did wait for the lock
    assert [r.run_id for r in store.all()] == ["first", "second"]
    assert "set aside" not in caplog.text
    assert [p.name for p in tmp_path.iterdir() if "unreadable" in p.name] == []


def test_a_store_locked_past_every_retry_is_left_as_it_is(tmp_path: Path, caplog) -> None:
    path = tmp_path / "experience.sqlite"
    store = ExperienceStore(path, timeout=0.1, retries=1)
    store.add(_record("kept"))
    with _locked(path, 1.2):
        store.add(_record("late"))  # gives up with a warning; the run goes on
    assert "busy" in caplog.text and "set aside" not in caplog.text
    assert [r.run_id for r in store.all()] == ["kept"]
    assert [p.name for p in tmp_path.iterdir() if "unreadable" in p.name] == []


def test_a_corrupt_file_is_set_aside_where_the_warning_says(tmp_path: Path, caplog) -> None:
    path = tmp_path / "experience.sqlite"
    damaged = np.random.default_rng(0).bytes(8192)
    path.write_bytes(damaged)
    store = ExperienceStore(path)
    store.add(_record("after"))
    assert [r.run_id for r in store.all()] == ["after"]
    [aside] = [p for p in tmp_path.iterdir() if p.name.startswith("experience.sqlite.unreadable-")]
    assert aside.read_bytes() == damaged  # nothing the user had is lost
    assert str(aside) in caplog.text


@pytest.mark.parametrize("problem", ["unwritable folder", "a folder in its place"])
def test_a_store_that_cannot_be_opened_is_not_moved(tmp_path: Path, caplog, problem) -> None:
    path = tmp_path / "experience.sqlite"
    if problem == "unwritable folder":
        path = tmp_path / "file" / "experience.sqlite"
        (tmp_path / "file").write_text("a file where the store's folder should be")
    else:
        path.mkdir()
    store = ExperienceStore(path)
    store.add(_record("lost"))
    assert store.all() == []
    assert "no experience store this run" in caplog.text
    assert [p.name for p in tmp_path.iterdir() if "unreadable" in p.name] == []
