"""The ``ray`` executor: trials on Ray actors, on a local Ray or on a cluster.

The run (the Ray driver) keeps the studies, the run folder and the journal; the actors only
compute. The training data goes into Ray's object store once (``ray.put``) and each actor
reads it once, when it starts; a trial sends its unfitted pipeline and gets back its fold
scores, as with local worker processes. Each actor reserves ``threads`` CPUs and limits its
native threads to as many, so the workers do not oversubscribe a node. Trials of a family
that trains on a GPU (``ModelEntry.gpu``) go to actors that reserve one GPU each, when the
cluster has any.

A trial past its cap or the run's deadline has its actor killed (``ray.kill``), not waited
for. An actor that dies under a trial (its process killed, its node lost) is replaced and
the trial runs once more on the fresh actor; dying again fails the trial with the reason,
so a lost worker or node costs at most its own trials.

Ray is an optional extra: ``pip install 'hyperpilot[ray]'``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from threadpoolctl import threadpool_limits

from hyperpilot.agents.tuner.workers import (
    POLL_SECONDS,
    WORKER_DIED,
    Bound,
    TrialStopped,
    wait_within,
)
from hyperpilot.tools.errors import TaskSpecError, TrialFailed

if TYPE_CHECKING:
    from hyperpilot.agents.tuner.agent import TrainingData

R = TypeVar("R")
NEEDS_RAY = "--executor ray needs Ray: pip install 'hyperpilot[ray]'"


def import_ray() -> Any:
    """The ``ray`` module, or one ``TaskSpecError`` line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise TaskSpecError(NEEDS_RAY) from None
    return ray


# How long a cluster's address may take to answer before the run says it cannot reach it.
PROBE_SECONDS = 5.0
# Whether this process started the Ray it is connected to (and so stops it when done).
_STARTED_HERE = False


def connect(address: str | None) -> None:
    """Start a local Ray (``address`` None) or join the cluster at ``address``, unless this
    process is connected already: a Ray the caller started is used as it is, and left
    running. One ``TaskSpecError`` line when Ray is missing or cannot be reached."""
    global _STARTED_HERE
    ray = import_ray()
    if ray.is_initialized():
        return
    # Ray's own notices are not the run's progress: what goes wrong in a worker reaches the
    # run as a failed trial, with the reason.
    settings: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR,
                                "include_dashboard": False}
    if address is not None:
        unreachable = _unreachable(address)
        if unreachable:  # Ray itself would wait minutes, printing retries, before giving up
            raise TaskSpecError(f"--executor: cannot reach the Ray cluster at {address}: "
                                f"{unreachable}")
    try:
        if address is None:
            ray.init(num_cpus=os.cpu_count() or 1, **settings)
        else:
            ray.init(address=address, **settings)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TaskSpecError(f"--executor: cannot reach {where}: {first}") from None
    _STARTED_HERE = True


def _unreachable(address: str, seconds: float = PROBE_SECONDS) -> str:
    """Why nothing answers at a cluster's ``HOST:PORT`` (``ray://`` too), or '' when it
    answers or the address is one Ray resolves itself (``auto``)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return "" if address == "auto" else "expected HOST:PORT, ray://HOST:PORT or auto"
    try:
        with socket.create_connection((host, int(port)), timeout=seconds):
            return ""
    except OSError as err:
        return err.strerror or type(err).__name__


def cluster_gpus() -> int:
    """The GPUs of the Ray this process is connected to."""
    return int(import_ray().cluster_resources().get("GPU", 0))


def disconnect() -> None:
    """Stop the Ray ``connect`` started (a no-op for one it found running, or none)."""
    global _STARTED_HERE
    if _STARTED_HERE:
        ray = import_ray()
        if ray.is_initialized():
            ray.shutdown()
        _STARTED_HERE = False


class _Worker:
    """A Ray actor holding the run's training data (Ray resolves the object reference it is
    made with to the data itself, once)."""

    def __init__(self, data: TrainingData, threads: int | None) -> None:
        self.data = data
        if threads is not None:
            self._limits = threadpool_limits(limits=threads)  # kept for the actor's life

    def run(self, function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        return function(self.data, *args)

    def pid(self) -> int:
        return os.getpid()


class RayPool:
    """``workers`` Ray actors holding ``data``; ``run`` evaluates one trial on an idle one.
    ``address`` is a cluster's (``ray:ADDRESS``), or None for a local Ray (``connect``;
    ``close`` stops it if it was started for this pool). The contract is
    ``executors.TrialExecutor``'s."""

    kind = "ray"

    def __init__(self, data: TrainingData, workers: int, threads: int | None = None,
                 address: str | None = None) -> None:
        self.ray = import_ray()
        self.workers = max(1, workers)
        self.address = address
        connect(address)
        resources = self.ray.cluster_resources()
        share = float(resources.get("CPU", 1)) / self.workers
        # Native threads per actor (one on small data), and the CPUs each reserves: no more
        # than its share, so every actor is placed even with more workers than CPUs.
        self.threads = max(1, int(threads or share))
        self._reserve = min(float(self.threads), share)
        self.gpus = int(resources.get("GPU", 0))
        self._data = self.ray.put(data)
        self._actor_class = self.ray.remote(_Worker)
        self._lock = threading.Condition()
        self._stopped = False
        self._actors: dict[bool, list[Any]] = {False: [self._new_actor(False)
                                                       for _ in range(self.workers)], True: []}
        self._idle: dict[bool, list[int]] = {False: list(range(self.workers)), True: []}

    def _new_actor(self, gpu: bool) -> Any:
        options: dict[str, Any] = {"num_cpus": self._reserve, "max_restarts": 0}
        if gpu:  # a GPU trial takes a lane whose CPU actor waits: its CPUs are reserved there
            options.update(num_cpus=0, num_gpus=1)
        return self._actor_class.options(**options).remote(self._data, self.threads)

    def warm(self) -> None:
        """The actors start when made; nothing more to do."""

    @property
    def stopped(self) -> bool:
        return self._stopped

    def worker_pids(self) -> list[int]:
        """The process ids of the CPU actors (for tests and diagnostics)."""
        return [int(p) for p in self.ray.get([a.pid.remote() for a in self._actors[False]])]

    def run(self, function: Callable[..., R], *args: Any, deadline: Bound,
            cap: Bound | None = None, gpu: bool = False) -> R:
        exceptions = self.ray.exceptions
        gpu = gpu and self.gpus > 0
        started = time.time()
        for attempt in (1, 2):
            index, actor = self._take(gpu)
            try:
                ref = actor.run.remote(function, args)
                return wait_within(partial(self._get, ref),
                                   exceptions.GetTimeoutError, started, deadline, cap,
                                   on_cap=partial(self._replace, gpu, index, actor),
                                   on_deadline=self.stop)
            except exceptions.RayTaskError as err:  # the trial's own error, raised in the actor
                cause = getattr(err, "cause", None)
                if isinstance(cause, Exception):
                    raise cause from None
                raise TrialFailed(str(err).splitlines()[0]) from None
            except (exceptions.RayActorError, exceptions.WorkerCrashedError,
                    exceptions.NodeDiedError, exceptions.ObjectLostError):
                if self._stopped:
                    seconds = time.time() - started
                    raise TrialStopped(f"stopped at the time limit after {seconds:.1f} s",
                                       seconds) from None
                self._replace(gpu, index, actor)
                if attempt == 2:
                    raise TrialFailed(WORKER_DIED) from None
            finally:
                self._give_back(gpu, index)
        raise AssertionError("unreachable")

    def _get(self, ref: Any, seconds: float) -> Any:
        return self.ray.get(ref, timeout=seconds)

    def _take(self, gpu: bool) -> tuple[int, Any]:
        with self._lock:
            if gpu and len(self._actors[True]) < min(self.workers, self.gpus):
                self._actors[True].append(self._new_actor(True))  # GPU actors start when needed
                self._idle[True].append(len(self._actors[True]) - 1)
            while not self._idle[gpu] and not self._stopped:
                self._lock.wait(POLL_SECONDS)
            if self._stopped:
                raise TrialStopped("not started: the time limit is reached", 0.0)
            index = self._idle[gpu].pop(0)
            return index, self._actors[gpu][index]

    def _give_back(self, gpu: bool, index: int) -> None:
        with self._lock:
            self._idle[gpu].append(index)
            self._lock.notify()

    def _replace(self, gpu: bool, index: int, old: Any) -> None:
        """Kill actor ``index`` (if it is still ``old``) and start a fresh one."""
        with self._lock:
            if self._actors[gpu][index] is not old or self._stopped:
                return
            self._kill(old)
            self._actors[gpu][index] = self._new_actor(gpu)

    def _kill(self, actor: Any) -> None:
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - an actor already gone is what was wanted
            pass

    def stop(self) -> None:
        """Kill every actor now; later calls raise ``TrialStopped``."""
        with self._lock:
            self._stopped = True
            for actors in self._actors.values():
                for actor in actors:
                    self._kill(actor)
            self._lock.notify_all()

    def close(self) -> None:
        """Stop the actors, and the Ray ``connect`` started, if it did."""
        self.stop()
        disconnect()
