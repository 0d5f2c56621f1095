"""The ``ray`` executor on a local Ray: the same contract as worker processes, and a run that
loses at most one trial when one of its Ray workers is killed mid-trial. Skipped where the
``ray`` extra is not installed."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import worker_faults

from hyperpilot.agents.tuner.agent import TrainingData
from hyperpilot.agents.tuner.workers import TrialStopped
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task
from hyperpilot.tools.errors import TrialFailed
from hyperpilot.tools.evaluate import make_folds
from hyperpilot.tools.types import TrialRecord, TrialState

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="finds Ray's worker processes in /proc")

from hyperpilot.agents.tuner.ray_executor import RayPool  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    """One local Ray for the module (pools use a Ray that is running and leave it so)."""
    # One GPU declared (none needs to exist): Ray places GPU actors by the resource alone.
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR", runtime_env={"env_vars": {
                 "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
                                                os.environ.get("PYTHONPATH", "")])}})
    yield
    ray.shutdown()


def _data(rows: int = 60) -> TrainingData:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=rows)})
    y = pd.Series(np.where(X["x"] > 0, "a", "b"))
    return TrainingData(X, y, make_folds(y.to_numpy(), "binary", 3, 0))


def test_ray_workers_keep_the_executor_contract(tmp_path: Path) -> None:
    pool = RayPool(_data(), workers=2, threads=1)
    try:
        assert pool.run(worker_faults.rows, deadline=time.time() + 120) == 60
        with pytest.raises(ValueError, match="a trial's own error"):
            pool.run(worker_faults.fail, deadline=time.time() + 120)
        marker = tmp_path / "died"
        assert pool.run(worker_faults.die_once, str(marker), deadline=time.time() + 120) == 60
        assert marker.exists()  # the actor died under the trial, which ran again on a fresh one
        with pytest.raises(TrialFailed, match="died twice"):
            pool.run(worker_faults.die, deadline=time.time() + 120)
        started = time.time()
        with pytest.raises(TrialStopped) as stopped:
            pool.run(worker_faults.sleep_then_rows, 60.0, deadline=time.time() + 120, cap=1.0)
        assert stopped.value.reason == "trial cap" and time.time() - started < 20
        assert pool.run(worker_faults.rows, deadline=time.time() + 120) == 60
        with pytest.raises(TrialStopped) as stopped:
            pool.run(worker_faults.sleep_then_rows, 60.0, deadline=time.time() + 1.0)
        assert stopped.value.reason == "time limit" and pool.stopped
    finally:
        pool.close()
    assert ray.is_initialized()  # the caller's Ray is left running


def test_trials_of_a_gpu_family_get_a_gpu_of_their_own_where_the_cluster_has_one() -> None:
    pool = RayPool(_data(), workers=2, threads=1)
    try:
        assert pool.gpus == 1
        assert pool.run(worker_faults.visible_gpus, deadline=time.time() + 120, gpu=True) == "0"
        assert pool.run(worker_faults.visible_gpus, deadline=time.time() + 120) != "0"
        assert len(pool._actors[True]) == 1  # one GPU: one GPU actor, made when first needed
    finally:
        pool.close()


def _ray_workers() -> dict[int, str]:
    """The Ray actor processes of this machine running a hyperpilot worker, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                continue
            if title.startswith("ray::_Worker"):
                found[int(entry.name)] = title
    return found


def test_killing_a_ray_worker_mid_run_loses_at_most_one_trial(tmp_path: Path) -> None:
    killed: list[int] = []
    lock = threading.Lock()

    def progress(line: str) -> None:
        if not line.startswith("[tune] trial") or killed:
            return
        with lock:
            workers = _ray_workers()
            busy = [p for p, title in workers.items() if title.startswith("ray::_Worker.run")]
            victim = (busy or sorted(workers))[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    options = RunOptions(trials=10, plans=1, workers=2, executor="ray", llm="none",
                         experience=None, seed=2, halving=False)
    state = run_task("predict the class, optimise accuracy", "sklearn:breast_cancer",
                     tmp_path / "run", options, progress=progress)
    assert killed, "no Ray worker was found to kill"
    assert state["status"] == "ok"
    trials = [TrialRecord.model_validate(t) for t in state["trials"]]
    assert len(trials) == 10
    lost = [t for t in trials if t.state != TrialState.COMPLETE]
    assert len(lost) <= 1, [t.error for t in lost]
    assert not _alive(killed[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
