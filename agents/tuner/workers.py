"""Trials in worker processes that can be stopped at the run's deadline.

A run with ``--time-limit`` evaluates its trials in a small pool of worker processes, so a
trial that is still training when tuning must end is killed, not waited for: a thread
cannot be stopped, a process can. The run's training rows and folds are sent to each worker
once, when it starts; a trial sends only its unfitted pipeline and gets back its fold
scores. Without a time limit trials run in the run's own process, as before.

Workers start from a fork server (a clean process that imported the libraries once), so
starting one is quick and safe beside the threads of the run's graph; where the platform has
no fork server they are spawned.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, TypeVar

from threadpoolctl import threadpool_limits

from hyperpilot.tools.errors import HyperpilotError, TrialFailed

if TYPE_CHECKING:
    from hyperpilot.agents.tuner.agent import TrainingData

R = TypeVar("R")

# What every worker imports before its first trial, in the fork server.
PRELOAD = ["hyperpilot.agents.tuner.halving", "hyperpilot.tools.zoo", "hyperpilot.tools.preprocess"]

# The training data of the run, in a worker process (set once by ``_start_worker``).
_WORKER_DATA: TrainingData | None = None


class TrialStopped(HyperpilotError):
    """A trial was stopped at the deadline; ``seconds`` is how long it had run."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


def _start_worker(data: TrainingData, threads: int | None) -> None:
    global _WORKER_DATA
    _WORKER_DATA = data
    if threads is not None:
        # Kept for the worker's life: each worker's native code uses this many threads.
        threadpool_limits(limits=threads)


def _ready() -> bool:
    return _WORKER_DATA is not None


def _call_with_data(function: Callable[..., R], args: tuple[Any, ...]) -> R:
    if _WORKER_DATA is None:
        raise TrialFailed("the worker holds no training data")
    return function(_WORKER_DATA, *args)


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


class TrialPool:
    """``workers`` processes holding ``data``; ``run`` evaluates one trial in one of them.

    ``run(function, *args, deadline=t)`` calls ``function(data, *args)`` in a worker and
    returns its result; when the result is not in by ``deadline`` (``time.time()`` seconds)
    every worker is killed and ``TrialStopped`` is raised, and so is it for every later call:
    the deadline is the run's, shared by all its trials. A worker that dies on its own (out
    of memory, a crash in native code) fails that trial with ``TrialFailed`` and the pool
    starts fresh workers for the next one.
    """

    def __init__(self, data: TrainingData, workers: int, threads: int | None = None) -> None:
        self.data = data
        self.workers = max(1, workers)
        self.threads = threads
        self._lock = threading.Lock()
        self._stopped = False
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=_context(), initializer=_start_worker,
                                   initargs=(self.data, self.threads))

    def warm(self) -> None:
        """Start the workers now (they load the data while the run does other work)."""
        with self._lock:
            if not self._stopped:
                for _ in range(self.workers):
                    self._executor.submit(_ready)

    @property
    def stopped(self) -> bool:
        return self._stopped

    def run(self, function: Callable[..., R], *args: Any, deadline: float) -> R:
        started = time.time()
        with self._lock:
            if self._stopped:
                raise TrialStopped("not started: the time limit is reached", 0.0)
            executor = self._executor
            future = executor.submit(_call_with_data, function, args)
        try:
            return future.result(timeout=max(0.0, deadline - time.time()))
        except FutureTimeout:
            self.stop()
            seconds = time.time() - started
            raise TrialStopped(f"stopped at the time limit after {seconds:.1f} s", seconds) from None
        except BrokenProcessPool:
            seconds = time.time() - started
            if self._stopped:
                raise TrialStopped(f"stopped at the time limit after {seconds:.1f} s",
                                   seconds) from None
            self._restart(executor)
            raise TrialFailed("the trial's worker process died (out of memory, or a crash "
                              "in native code)") from None

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken and not self._stopped:
                broken.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_executor()

    def stop(self) -> None:
        """Kill every worker now; later calls raise ``TrialStopped``."""
        with self._lock:
            self._stopped = True
            self._kill(self._executor)

    def close(self) -> None:
        """Stop the workers (idle ones exit; busy ones are killed)."""
        with self._lock:
            self._stopped = True
            self._kill(self._executor)

    @staticmethod
    def _kill(executor: ProcessPoolExecutor) -> None:
        # The executor has no public way to stop a busy worker; its processes are known.
        processes = list((getattr(executor, "_processes", None) or {}).values())
        for process in processes:
            if process.is_alive():
                process.kill()
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(timeout=5)
