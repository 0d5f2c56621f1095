"""LLM calls that the run's time limit pays for, or that are not made.

With ``--time-limit`` every LLM call is part of the budget the user gave. ``TimedLLM`` wraps
the run's client and, before each call, compares what a call is expected to take (the mean
of this run's calls so far; a prior before the first) with what is left: the time to the
deadline less the run's finish reserve, and the LLM's share of the limit. When the call
cannot be paid for it raises ``TimeBudgetExceeded`` and the caller decides by its rules,
saying so. A call that is made may take only what is left (``CALL_DEADLINE``): the transport
stops waiting then, so one slow reply cannot overrun the limit.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hyperpilot.tools.errors import BudgetExceeded
from hyperpilot.tools.experience import default_store_path

# What a first call is expected to take before one has been timed (a local model's first
# call also starts its server).
FIRST_CALL_SECONDS = 10.0
# The most of --time-limit that LLM calls may take in all: tuning gets the rest.
LLM_SHARE_OF_TIME = 0.3


# When the LLM call being made must have answered (``time.time()`` seconds), set by
# ``TimedLLM`` around each call and read by the transport, which stops waiting then: an
# estimate says whether to make a call, this bound says how long it may take.
CALL_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "hyperpilot_call_deadline", default=None)


def seconds_left_for_call() -> float | None:
    """Seconds the current LLM call may still take (None: no bound)."""
    deadline = CALL_DEADLINE.get()
    return None if deadline is None else deadline - time.time()


class TimeBudgetExceeded(BudgetExceeded):
    """An LLM call was not made: the time limit cannot pay for it."""


# How many of an agent's latest call times are kept per LLM.
KEPT_TIMES = 5


class CallTimes:
    """What each agent's calls to one LLM took on this machine, kept across runs in a small
    JSON file (``{llm name: {agent: [seconds, ...]}}``), so that a run knows before its first
    call whether a call of that agent can fit its time limit: an embedded model on two cores
    may need longer for one plan than a 60 s run can give. A call cut short at its deadline
    counts with the time it was given, a lower bound."""

    def __init__(self, path: Path, llm_name: str) -> None:
        self.path = path
        self.llm_name = llm_name
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def expected(self, agent: str) -> float | None:
        """The median of the agent's kept call times (None when none are kept)."""
        times = self._read().get(self.llm_name, {}).get(agent, [])
        times = [float(t) for t in times if isinstance(t, int | float) and math.isfinite(t)]
        return statistics.median(times) if times else None

    def add(self, agent: str, seconds: float) -> None:
        """Keep one call's time (an unreadable file is started again; a failed write only
        loses the memory)."""
        with self._lock:
            data = self._read()
            by_agent = data.setdefault(self.llm_name, {})
            if not isinstance(by_agent, dict):
                by_agent = data[self.llm_name] = {}
            kept = [t for t in by_agent.get(agent, []) if isinstance(t, int | float)]
            by_agent[agent] = [*kept, round(seconds, 2)][-KEPT_TIMES:]
            with contextlib.suppress(OSError):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
                partial.write_text(json.dumps(data, indent=1) + "\n")
                os.replace(partial, self.path)


def default_times_path() -> Path:
    """``$XDG_DATA_HOME/hyperpilot/llm_seconds.json``, beside the experience store."""
    return default_store_path().with_name("llm_seconds.json")


class TimedLLM:
    """``llm`` with each call made only while ``deadline`` (``time.time()`` seconds, less
    ``reserve``) and the LLM's share of ``limit`` can pay for it.

    What a call is expected to take: this run's calls of the same agent, else what ``times``
    kept of that agent's earlier calls, else this run's calls of any agent, else
    ``first_call``. Everything else (usage, transcript, close) is the wrapped client's.
    """

    def __init__(self, llm: Any, deadline: float, limit: float, *, reserve: float = 0.0,
                 share: float = LLM_SHARE_OF_TIME, first_call: float = FIRST_CALL_SECONDS,
                 times: CallTimes | None = None,
                 progress: Callable[[str], None] = lambda line: None) -> None:
        self.llm = llm
        self.deadline = deadline
        self.allowance = share * limit
        self.reserve = reserve
        self.first_call = first_call
        self.times = times
        self.progress = progress
        self.spent = 0.0
        self.calls = 0
        self.refused = 0
        self._by_agent: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.llm, name)

    def expected_seconds(self, agent: str = "") -> float:
        """What the next call of ``agent`` is expected to take."""
        own = self._by_agent.get(agent)
        if own:
            return sum(own) / len(own)
        kept = self.times.expected(agent) if self.times is not None else None
        if kept is not None:
            return kept
        return self.spent / self.calls if self.calls else self.first_call

    def _check(self, agent: str) -> None:
        with self._lock:
            expected = self.expected_seconds(agent)
            left = self.deadline - self.reserve - time.time()
            reason = ""
            if expected >= left:
                reason = (f"the time limit cannot pay for an LLM call ({left:.0f} s left, a "
                          f"call takes about {expected:.0f} s)")
            elif self.spent + expected >= self.allowance:
                what = f"a {agent} call" if agent else "a call"
                reason = (f"LLM calls have used their share of the time limit "
                          f"({self.spent:.0f} of {self.allowance:.0f} s)" if self.spent else
                          f"{what} takes about {expected:.0f} s here, more than the LLM's share "
                          f"of the time limit ({self.allowance:.0f} s)")
            if not reason:
                return
            self.refused += 1
            first = self.refused == 1
        if first:
            self.progress(f"[llm] {reason}: the rules decide{f' for {agent}' if agent else ''} "
                          "and later steps")
        raise TimeBudgetExceeded(reason)

    def _timed(self, call: Callable[..., Any], *args: Any, agent: str, **kwargs: Any) -> Any:
        self._check(agent)
        started = time.time()
        with self._lock:  # the most this call may take: the time left, and the LLM's share
            bound = min(self.deadline - self.reserve, started + self.allowance - self.spent)
        token = CALL_DEADLINE.set(bound)
        try:
            return call(*args, agent=agent, **kwargs)
        finally:
            CALL_DEADLINE.reset(token)
            seconds = time.time() - started
            with self._lock:
                self.spent += seconds
                self.calls += 1
                self._by_agent.setdefault(agent, []).append(seconds)
            if self.times is not None:
                self.times.add(agent, seconds)

    def complete(self, messages: list[dict[str, str]], response_model: type[Any], *,
                 agent: str = "", **settings: Any) -> Any:
        return self._timed(self.llm.complete, messages, response_model, agent=agent, **settings)

    def complete_with_logprobs(self, messages: list[dict[str, str]], response_model: type[Any],
                               *, agent: str = "", **settings: Any) -> Any:
        return self._timed(self.llm.complete_with_logprobs, messages, response_model,
                           agent=agent, **settings)
