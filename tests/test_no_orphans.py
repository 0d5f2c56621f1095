"""No llama-server outlives the process that started it, however that process ends."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fakes import fake_llama_binary

from hyperpilot.agents.llm.local_server import LlamaServer, ServerSettings

# The parent script: start a server through the project's class, print its pid, then wait.
PARENT = """
import sys, time
from pathlib import Path
import hyperpilot.agents.llm.tied as tied
from hyperpilot.agents.llm.local_server import LlamaServer, ServerSettings
{setup}
server = LlamaServer(ServerSettings(binary=Path({binary!r}), model=Path({model!r}),
                                    alias="tiny", start_timeout=30))
server.start()
try:
    print(server.process.pid, flush=True)  # inside: a signal may come as soon as it is read
    time.sleep(60)
finally:
    server.stop()
    print("stopped", flush=True)
"""


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF fake weights")
    return fake_llama_binary(tmp_path / "bin"), model


def _gone(pid: int, wait: float = 5.0) -> bool:
    """Whether ``pid`` is gone within ``wait`` seconds; a zombie (dead, not yet reaped by
    whoever adopted it) holds no memory or port and counts as gone."""
    deadline = time.monotonic() + wait
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@pytest.fixture
def parent(parts: tuple[Path, Path]) -> Iterator[Callable[[str], tuple[subprocess.Popen[str], int]]]:
    """Starts the parent script; yields ``start(setup) -> (process, server pid)`` and kills
    whatever is left when the test ends, so a failing test leaves no process behind."""
    started: list[tuple[subprocess.Popen[str], int]] = []

    def start(setup: str = "") -> tuple[subprocess.Popen[str], int]:
        binary, model = parts
        script = PARENT.format(setup=textwrap.dedent(setup), binary=str(binary), model=str(model))
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline() if ready else ""
        if not line.strip().isdigit():
            process.kill()
            pytest.fail(f"the parent printed no pid: {line!r} {process.stderr.read()[-2000:]}")
        started.append((process, int(line)))
        return process, int(line)

    yield start
    for process, pid in started:
        for victim in (process.pid, pid):
            if not _gone(victim, 0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.mark.parametrize("guard", ["parent-death signal", "watchdog"])
def test_a_sigkilled_parent_takes_its_server_along(parent, guard: str) -> None:
    # The watchdog is the fallback for systems without prctl; here it is forced on Linux.
    setup = "tied._prctl = lambda: None" if guard == "watchdog" else ""
    process, pid = parent(setup)
    assert not _gone(pid, 0)
    process.kill()
    process.wait(timeout=10)
    assert _gone(pid), f"llama-server pid {pid} outlived its SIGKILLed parent ({guard})"


def test_sigterm_stops_the_run_through_its_finally_blocks(parent) -> None:
    setup = "tied.interrupt_on_termination()"
    process, pid = parent(setup)
    process.terminate()
    out, err = process.communicate(timeout=20)
    assert process.returncode != 0
    assert "stopped" in out, err  # the finally block ran: the server was stopped, not orphaned
    assert "terminated by SIGTERM" in err
    assert _gone(pid)


def test_a_server_started_from_a_worker_thread_outlives_the_thread(parts) -> None:
    # The parent-death signal follows the thread that forked: a short-lived thread must not
    # take the server down with it.
    binary, model = parts
    server = LlamaServer(ServerSettings(binary=binary, model=model, alias="tiny",
                                        start_timeout=30))
    worker = threading.Thread(target=server.start)
    worker.start()
    worker.join()
    try:
        time.sleep(0.5)
        assert server.alive() and server.healthy()
    finally:
        pid = server.process.pid if server.process else 0
        server.stop()
    assert _gone(pid)


# A run's trial workers: started, their pids printed, then the run waits to be killed.
WORKERS = """
import time
import numpy as np
import pandas as pd
from hyperpilot.agents.tuner.agent import TrainingData
from hyperpilot.agents.tuner.workers import TrialPool
from hyperpilot.tools.evaluate import make_folds

X = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 3)), columns=list("abc"))
y = pd.Series(["p", "q"] * 20)
pool = TrialPool(TrainingData(X, y, make_folds(y.to_numpy(), "binary", 3, 0)), workers=2)
for executor in pool._executors:
    executor.submit(sum, [1]).result(timeout=120)  # the worker is up
print(" ".join(str(pid) for e in pool._executors for pid in e._processes), flush=True)
time.sleep(120)
"""


def test_a_sigkilled_run_takes_its_trial_workers_along() -> None:
    process = subprocess.Popen([sys.executable, "-c", WORKERS], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 150)
        pids = [int(p) for p in (process.stdout.readline() if ready else "").split()]
        assert len(pids) == 2, process.stderr.read()[-2000:] if process.poll() is not None else ""
        assert not any(_gone(pid, 0) for pid in pids)
        process.kill()
        process.wait(timeout=10)
        assert all(_gone(pid, wait=6.0) for pid in pids), "a trial worker outlived its run"
    finally:
        if process.poll() is None:
            process.kill()
