"""Where a run's trials train: the executor interface and its three kinds.

- ``inprocess``: in the run's own process, in the thread that asks (plans and workers are
  threads of the run's graph). Nothing to start, nothing to ship; but a trial cannot be
  stopped once it trains, so the time limit is kept only between trials.
- ``process``: a pool of local worker processes (``workers.TrialPool``) holding the
  training data; a trial past the time limit or its cap is killed.
- ``ray`` / ``ray:ADDRESS``: Ray actors on a local Ray or on a cluster
  (``ray_executor.RayPool``), with the data in Ray's object store once; behind the optional
  ``ray`` extra.

Every kind has the same contract (``TrialExecutor``): ``run(function, *args, deadline=,
cap=, gpu=)`` returns ``function(data, *args)`` computed somewhere, or raises
``TrialStopped`` (deadline or cap) or ``TrialFailed`` (the trial's own error, or its worker
died twice: a lost worker is replaced and the trial runs once more). The study stays in the
run's process: executors only compute, so the run's stored trials are the truth whichever
kind trains them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from hyperpilot.agents.tuner.workers import Bound, TrialPool, TrialStopped, _value
from hyperpilot.tools.errors import TaskSpecError

if TYPE_CHECKING:
    from hyperpilot.agents.tuner.agent import TrainingData

R = TypeVar("R")

KINDS = ("auto", "inprocess", "process", "ray")


class TrialExecutor(Protocol):
    """What the tuner asks of wherever its trials train (see the module docstring)."""

    kind: str
    workers: int

    @property
    def stopped(self) -> bool: ...

    def warm(self) -> None: ...

    def run(self, function: Callable[..., R], *args: Any, deadline: Bound,
            cap: Bound | None = None, gpu: bool = False) -> R: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


class InProcess:
    """Trials computed in the calling thread. A trial is not started past ``deadline``, but
    one that has started runs to its end: there is no stopping a thread."""

    kind = "inprocess"

    def __init__(self, data: TrainingData, workers: int = 1) -> None:
        self.data = data
        self.workers = max(1, workers)
        self._stopped = False

    @property
    def stopped(self) -> bool:
        return self._stopped

    def warm(self) -> None:
        """Nothing to start."""

    def run(self, function: Callable[..., R], *args: Any, deadline: Bound,
            cap: Bound | None = None, gpu: bool = False) -> R:
        end = _value(deadline)
        if self._stopped or time.time() >= (math.inf if end is None else end):
            self._stopped = True
            raise TrialStopped("not started: the time limit is reached", 0.0)
        return function(self.data, *args)

    def stop(self) -> None:
        self._stopped = True

    def close(self) -> None:
        self.stop()


def check_kind(spec: str) -> str:
    """``spec`` if it names an executor (``auto``, ``inprocess``, ``process``, ``ray``,
    ``ray:ADDRESS``), else ``ValueError`` with the choices."""
    name, _, address = spec.partition(":")
    if name not in KINDS or (address and name != "ray") or (spec.endswith(":") and not address):
        raise ValueError(f"must be one of {', '.join(KINDS)} or ray:ADDRESS")
    return spec


def resolve_kind(spec: str, *, time_limit: float | None, workers_given: bool) -> str:
    """The executor ``auto`` stands for: worker processes when the run has a time limit (a
    trial must be stoppable) or the user asked for workers, else the run's own process."""
    if spec != "auto":
        return spec
    return "process" if time_limit is not None or workers_given else "inprocess"


def make_executor(spec: str, data: TrainingData, workers: int,
                  threads: int | None) -> TrialExecutor:
    """The executor ``spec`` names (resolved already: not ``auto``), holding ``data`` and
    training ``workers`` trials at once with ``threads`` native threads each."""
    name, _, address = spec.partition(":")
    if name == "inprocess":
        return InProcess(data, workers)
    if name == "process":
        return TrialPool(data, workers, threads)
    if name == "ray":
        from hyperpilot.agents.tuner.ray_executor import RayPool

        return RayPool(data, workers, threads, address=address or None)
    raise TaskSpecError(f"--executor: unknown executor {spec!r}; expected one of "
                        f"{', '.join(KINDS)} or ray:ADDRESS")
