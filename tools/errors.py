"""The error tree. Everything the user caused is a ``HyperpilotError`` with one clear line."""

from __future__ import annotations


class HyperpilotError(Exception):
    """Base of every error hyperpilot raises on purpose; ``str(err)`` is one line for the user."""


class TaskSpecError(HyperpilotError):
    """The task text or options cannot become a valid task (not ML, bad metric, bad budget)."""


class DataError(HyperpilotError):
    """The data cannot be loaded or does not fit the task (missing file, no target, one class)."""


class LLMOutputError(HyperpilotError):
    """An LLM kept answering with output that does not validate; ``raw`` holds the last reply."""

    def __init__(self, message: str, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class NoLogprobsError(LLMOutputError):
    """The server answered but gives no token log-probabilities (callers can sample instead)."""


class LLMUnavailableError(HyperpilotError):
    """The LLM server cannot be reached or refused the request after retries."""


class BudgetExceeded(HyperpilotError):
    """A budget (time, trials, LLM tokens) ran out before the work could start."""


class TrialFailed(HyperpilotError):
    """One trial could not be evaluated; the study records it as FAIL with this reason."""


class OutputDirError(HyperpilotError):
    """The output folder is unsafe to write (not empty and not a hyperpilot run)."""


class LocalLLMError(HyperpilotError):
    """The embedded local LLM cannot be set up (engine or model missing, model file corrupt)."""
