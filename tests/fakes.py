"""Strict LLM fakes for tests: scripted replies in order, or a function that answers.

Import them as ``from fakes import ScriptedLLM`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hyperpilot.agents.llm import LLM, ChatReply, Transcript

Messages = list[dict[str, str]]
# A reply (str, dict, BaseModel, ChatReply), an exception to raise, a callable
# messages -> reply, or (expected_schema_name, step).
Step = Any


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def as_reply(value: Any, messages: Messages) -> ChatReply:
    """Turn what a step or function gave into a ``ChatReply`` with rough token counts."""
    if isinstance(value, ChatReply):
        return value
    if isinstance(value, BaseModel):
        text = value.model_dump_json()
    elif isinstance(value, dict | list):
        text = json.dumps(value)
    elif isinstance(value, str):
        text = value
    else:
        kind = type(value).__name__
        raise TypeError(f"fake LLM reply must be str, dict or BaseModel, not {kind}")
    prompt = sum(_tokens(message.get("content", "")) for message in messages)
    return ChatReply(text=text, prompt_tokens=prompt, completion_tokens=_tokens(text))


def _last_content(messages: Messages) -> str:
    return messages[-1].get("content", "")[:200] if messages else ""


class ScriptedLLM:
    """A ``ChatBackend`` that plays ``steps`` in order and fails on any call past the end.

    ``calls`` holds ``(messages, schema_name)`` of every call; ``settings`` the settings.
    """

    name = "scripted"

    def __init__(self, steps: Iterable[Step]) -> None:
        self._steps = list(steps)
        self.calls: list[tuple[Messages, str]] = []
        self.settings: list[dict[str, Any]] = []

    @property
    def remaining(self) -> int:
        return len(self._steps)

    def chat(
        self,
        messages: Messages,
        *,
        schema: dict[str, Any] | None,
        schema_name: str,
        settings: dict[str, Any],
    ) -> ChatReply:
        messages = [dict(message) for message in messages]
        self.calls.append((messages, schema_name))
        self.settings.append(dict(settings))
        number = len(self.calls)
        if not self._steps:
            raise AssertionError(
                f"ScriptedLLM: unexpected call #{number} (schema {schema_name}); "
                f"last message: {_last_content(messages)!r}"
            )
        step = self._steps.pop(0)
        if isinstance(step, tuple):
            expected, step = step
            if expected != schema_name:
                raise AssertionError(
                    f"ScriptedLLM: call #{number} asked for {schema_name}, "
                    f"the script expected {expected}"
                )
        if isinstance(step, BaseException):
            raise step
        if callable(step) and not isinstance(step, type):
            step = step(messages)
        return as_reply(step, messages)

    def assert_done(self) -> None:
        """Fail when replies are left unused: the code made fewer calls than scripted."""
        if self._steps:
            raise AssertionError(
                f"ScriptedLLM: {len(self._steps)} scripted repl"
                f"{'y' if len(self._steps) == 1 else 'ies'} left unused "
                f"after {len(self.calls)} calls"
            )


class FunctionLLM:
    """A ``ChatBackend`` whose reply is ``fn(messages, schema_name)``; records calls too."""

    name = "function"

    def __init__(self, fn: Callable[[Messages, str], Any]) -> None:
        self.fn = fn
        self.calls: list[tuple[Messages, str]] = []

    def chat(
        self,
        messages: Messages,
        *,
        schema: dict[str, Any] | None,
        schema_name: str,
        settings: dict[str, Any],
    ) -> ChatReply:
        messages = [dict(message) for message in messages]
        self.calls.append((messages, schema_name))
        return as_reply(self.fn(messages, schema_name), messages)


def scripted_client(steps: Iterable[Step], **kwargs: Any) -> LLM:
    """An ``LLM`` over ``ScriptedLLM(steps)`` with an in-memory transcript.

    The fake is ``llm.backend``; keyword arguments go to ``LLM``.
    """
    kwargs.setdefault("transcript", Transcript(None))
    return LLM(ScriptedLLM(steps), **kwargs)


FAKE_LLAMA_SERVER = Path(__file__).with_name("fake_llama_server.py")


def fake_llama_binary(folder: Path) -> Path:
    """An executable ``folder/llama-server`` that runs tests/fake_llama_server.py in its own
    process (``exec``: the pid is the fake server's)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "llama-server"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_LLAMA_SERVER}" "$@"\n')
    path.chmod(0o755)
    return path
