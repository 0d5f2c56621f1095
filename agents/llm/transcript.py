"""Transcripts: every LLM call written down with secrets stripped, and played back exactly.

``Transcript`` records calls as JSON lines; ``ReplayBackend`` is a chat backend that
returns the recorded replies in order, so a run can be repeated with no LLM at all.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hyperpilot.agents.llm.secrets import redact_tree
from hyperpilot.tools.errors import LLMOutputError, LLMUnavailableError


class ChatReply(BaseModel):
    """What a backend returns for one chat call."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Per reply token, when asked for: {"token", "logprob", "top": [[token, logprob], ...]}.
    logprobs: list[dict[str, Any]] | None = None
    # The server stopped at its reply-token cap: the text is cut off.
    truncated: bool = False


# --- transcript ----------------------------------------------------------------------


class Transcript:
    """One JSON line per LLM call, secrets stripped; ``path=None`` keeps them in memory.

    Each line is written and flushed when the call ends, so a crash keeps earlier calls.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        """Number, redact and store ``record``; return what was stored."""
        with self._lock:
            clean = redact_tree({"call": len(self.records) + 1, **record})
            self.records.append(clean)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(clean, ensure_ascii=False) + "\n")
                    handle.flush()
            return clean


class ReplayBackend:
    """Plays the replies of a recorded transcript in order; diverging or running out fails."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = f"replay:{self.path}"
        self._records = self._read(self.path)
        self._next = 0
        self._lock = threading.Lock()

    @staticmethod
    def _read(path: Path) -> list[dict[str, Any]]:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
            return [json.loads(line) for line in lines if line.strip()]
        except (OSError, ValueError) as err:
            raise LLMUnavailableError(f"cannot read replay transcript {path}: {err}") from err

    @property
    def remaining(self) -> int:
        return len(self._records) - self._next

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        schema: dict[str, Any] | None,
        schema_name: str,
        settings: dict[str, Any],
    ) -> ChatReply:
        with self._lock:
            if self._next >= len(self._records):
                raise LLMOutputError(f"replay transcript exhausted after {self._next} calls")
            record = self._records[self._next]
            self._next += 1
        call = self._next
        if record.get("schema_name") != schema_name:
            raise LLMOutputError(
                f"replay diverged at call {call}: expected {record.get('schema_name')!r}, "
                f"got {schema_name!r}"
            )
        if record.get("failed"):
            raise LLMUnavailableError(f"replayed failure: {record.get('error', '')}")
        return ChatReply(
            text=record.get("reply", ""),
            prompt_tokens=record.get("prompt_tokens", 0),
            completion_tokens=record.get("completion_tokens", 0),
            logprobs=record.get("logprobs"),
            truncated=bool(record.get("truncated", False)),
        )
