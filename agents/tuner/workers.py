"""Trials in worker processes that can be stopped at the run's deadline.

The ``process`` executor (``executors.py``): trials are evaluated in a pool of worker
processes, so a trial that is still training when tuning must end is killed, not waited for
(a thread cannot be stopped, a process can), and several trials train at once without
sharing one interpreter. The run's training rows and folds are sent to each worker once,
when it starts; a trial sends only its unfitted pipeline and gets back its fold scores.

Workers start from a fork server (a clean process that imported the libraries once), so
starting one is quick and safe beside the threads of the run's graph; where the platform has
no fork server they are spawned.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from threadpoolctl import threadpool_limits

from hyperpilot.tools.errors import HyperpilotError, TrialFailed

if TYPE_CHECKING:
    from hyperpilot.agents.tuner.agent import TrainingData

R = TypeVar("R")
# A deadline or a cap: a number, or a function giving the current one (it may tighten).
Bound = float | Callable[[], float | None]
# How often a waiting trial looks at its bounds again.
POLL_SECONDS = 0.5
# Why a trial failed when its worker died under it twice.
WORKER_DIED = ("the trial's worker process died twice (out of memory, a crash in native code, "
               "or the process was killed)")


def _value(bound: Bound | None) -> Any:
    return bound() if callable(bound) else bound

# What every worker imports before its first trial, in the fork server.
PRELOAD = ["hyperpilot.agents.tuner.halving", "hyperpilot.tools.zoo", "hyperpilot.tools.preprocess"]

# The training data of the run, in a worker process (set once by ``_start_worker``).
_WORKER_DATA: TrainingData | None = None


class TrialStopped(HyperpilotError):
    """A trial was stopped; ``seconds`` is how long it had run, ``reason`` why: ``time limit``
    (the run's deadline) or ``trial cap`` (it ran past the time one trial may take)."""

    def __init__(self, message: str, seconds: float, reason: str = "time limit") -> None:
        super().__init__(message)
        self.seconds = seconds
        self.reason = reason


def _start_worker(data: TrainingData, threads: int | None, run_pid: int | None = None) -> None:
    global _WORKER_DATA
    _WORKER_DATA = data
    if threads is not None:
        # Kept for the worker's life: each worker's native code uses this many threads.
        threadpool_limits(limits=threads)
    if run_pid is not None:
        threading.Thread(target=_exit_with, args=(run_pid,), name="hyperpilot-run-watch",
                         daemon=True).start()


def _exit_with(run_pid: int, every: float = 1.0) -> None:
    """End this worker once the run that started it is gone. A worker's parent is the fork
    server, and its task queue holds a write end of its own pipe, so a run killed outright
    (SIGKILL) would otherwise leave it waiting, holding the training rows, for ever."""
    while _alive(run_pid):
        time.sleep(every)
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process took the number: the run is gone
        return False
    return True


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
    """``workers`` processes holding ``data``; ``run`` evaluates one trial in an idle one.

    ``run(function, *args, deadline=t)`` calls ``function(data, *args)`` in a worker that is
    not training (one process a trial, so stopping one trial leaves the others training) and
    returns its result. ``deadline`` and ``cap`` may be functions, asked again while the
    trial trains (the run's other trials finishing can tighten them). When the result is
    not in by ``deadline`` (``time.time()`` seconds) every worker is killed and
    ``TrialStopped`` is raised, and so is it for every later call: the deadline is the
    run's, shared by all its trials. With ``cap`` (seconds), a trial still training that
    long is stopped alone (``TrialStopped``, reason ``trial cap``) and its worker is
    replaced. A worker that dies on its own (out of memory, a crash in native code) is
    replaced and the trial runs again once in the fresh one; dying again fails it with
    ``TrialFailed``, so a lost worker costs at most its own trial.
    """

    kind = "process"

    def __init__(self, data: TrainingData, workers: int, threads: int | None = None) -> None:
        self.data = data
        self.workers = max(1, workers)
        self.threads = threads
        self._lock = threading.Condition()
        self._stopped = False
        self._executors = [self._new_executor() for _ in range(self.workers)]
        self._idle = list(range(self.workers))

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(1, mp_context=_context(), initializer=_start_worker,
                                   initargs=(self.data, self.threads, os.getpid()))

    def warm(self) -> None:
        """Start the workers now (they load the data while the run does other work)."""
        with self._lock:
            if not self._stopped:
                for executor in self._executors:
                    executor.submit(_ready)

    @property
    def stopped(self) -> bool:
        return self._stopped

    def run(self, function: Callable[..., R], *args: Any, deadline: Bound,
            cap: Bound | None = None, gpu: bool = False) -> R:
        started = time.time()
        for attempt in (1, 2):
            index, executor = self._take()
            try:
                future = executor.submit(_call_with_data, function, args)
                return wait_within(future.result, FutureTimeout, started, deadline, cap,
                                   on_cap=partial(self._replace, index, executor),
                                   on_deadline=self.stop)
            except BrokenProcessPool:
                if self._stopped:
                    raise TrialStopped(f"stopped at the time limit after "
                                       f"{time.time() - started:.1f} s",
                                       time.time() - started) from None
                self._replace(index, executor)
                if attempt == 2:
                    raise TrialFailed(WORKER_DIED) from None
            finally:
                self._give_back(index)
        raise AssertionError("unreachable")

    def _take(self) -> tuple[int, ProcessPoolExecutor]:
        """An idle worker, waiting for one if every worker trains (more callers than workers)."""
        with self._lock:
            while not self._idle and not self._stopped:
                self._lock.wait(POLL_SECONDS)
            if self._stopped:
                raise TrialStopped("not started: the time limit is reached", 0.0)
            index = self._idle.pop(0)
            return index, self._executors[index]

    def _give_back(self, index: int) -> None:
        with self._lock:
            self._idle.append(index)
            self._lock.notify()

    def _replace(self, index: int, old: ProcessPoolExecutor) -> None:
        """Kill worker ``index`` (if it is still ``old``) and start a fresh one."""
        with self._lock:
            if self._executors[index] is not old or self._stopped:
                return
            self._kill(old)
            self._executors[index] = self._new_executor()
            self._executors[index].submit(_ready)

    def stop(self) -> None:
        """Kill every worker now; later calls raise ``TrialStopped``."""
        with self._lock:
            self._stopped = True
            for executor in self._executors:
                self._kill(executor)
            self._lock.notify_all()

    def close(self) -> None:
        """Stop the workers (idle ones exit; busy ones are killed)."""
        self.stop()

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


def wait_within(get: Callable[[float], R], timeout_error: type[BaseException], started: float,
                deadline: Bound, cap: Bound | None, *, on_cap: Callable[[], None],
                on_deadline: Callable[[], None]) -> R:
    """``get(seconds)``'s result (a future's, a Ray object's), asked every ``POLL_SECONDS``
    until it comes or a bound passes: past ``cap`` seconds since ``started``, ``on_cap()``
    stops this trial's worker and ``TrialStopped`` (``trial cap``) is raised; past
    ``deadline``, ``on_deadline()`` stops every worker and it is raised with ``time limit``.
    ``get`` raises ``timeout_error`` when the result is not in yet."""
    while True:  # the bounds are looked at again as the run's other trials finish
        end, limit = _value(deadline), _value(cap)
        end = math.inf if end is None else end
        until = end if limit is None else min(end, started + limit)
        try:
            return get(max(0.0, min(until - time.time(), POLL_SECONDS)))
        except timeout_error:
            if time.time() < until:
                continue
        seconds = time.time() - started
        if until < end:
            on_cap()
            raise TrialStopped(f"stopped after {seconds:.1f} s, the most one trial may "
                               f"take now ({limit:.0f} s)", seconds, reason="trial cap")
        on_deadline()
        raise TrialStopped(f"stopped at the time limit after {seconds:.1f} s", seconds)
