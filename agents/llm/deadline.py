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

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any

from hyperpilot.tools.errors import BudgetExceeded

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


class TimedLLM:
    """``llm`` with each call made only while ``deadline`` (``time.time()`` seconds, less
    ``reserve``) and the LLM's share of ``limit`` can pay for it.

    Everything else (usage, transcript, close) is the wrapped client's.
    """

    def __init__(self, llm: Any, deadline: float, limit: float, *, reserve: float = 0.0,
                 share: float = LLM_SHARE_OF_TIME, first_call: float = FIRST_CALL_SECONDS,
                 progress: Callable[[str], None] = lambda line: None) -> None:
        self.llm = llm
        self.deadline = deadline
        self.allowance = share * limit
        self.reserve = reserve
        self.first_call = first_call
        self.progress = progress
        self.spent = 0.0
        self.calls = 0
        self.refused = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.llm, name)

    def expected_seconds(self) -> float:
        """What the next call is expected to take."""
        return self.spent / self.calls if self.calls else self.first_call

    def _check(self, agent: str) -> None:
        with self._lock:
            expected = self.expected_seconds()
            left = self.deadline - self.reserve - time.time()
            reason = ""
            if expected > left:
                reason = (f"the time limit cannot pay for an LLM call ({left:.0f} s left, a "
                          f"call takes about {expected:.0f} s)")
            elif self.spent + expected > self.allowance:
                reason = (f"LLM calls have used their share of the time limit "
                          f"({self.spent:.0f} of {self.allowance:.0f} s)")
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
            with self._lock:
                self.spent += time.time() - started
                self.calls += 1

    def complete(self, messages: list[dict[str, str]], response_model: type[Any], *,
                 agent: str = "", **settings: Any) -> Any:
        return self._timed(self.llm.complete, messages, response_model, agent=agent, **settings)

    def complete_with_logprobs(self, messages: list[dict[str, str]], response_model: type[Any],
                               *, agent: str = "", **settings: Any) -> Any:
        return self._timed(self.llm.complete_with_logprobs, messages, response_model,
                           agent=agent, **settings)
