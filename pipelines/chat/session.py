"""A chat session's memory, kept by a LangGraph checkpointer so ``--session ID`` resumes it.

The session graph has one node that records each turn's update; the checkpoint after it is
the session as it stands. Its folder, ``<runs>/chat-<ID>/``, also holds the session's run
folders (``run-1``, ``run-2``, ...), its LLM transcript and its input history.
"""

from __future__ import annotations

import operator
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from hyperpilot.tools.errors import TaskSpecError

DEFAULT_TRIALS = 20


class ChatState(TypedDict, total=False):
    """What a conversation has settled so far; JSON-able so every checkpoint reads back."""

    messages: Annotated[list[dict[str, str]], operator.add]
    data: str
    text: str
    target: str
    metric: str
    positive_class: str
    trials: int
    asking: str
    run_dir: str
    runs: int
    workers: int  # /workers K: trials at once in the session's runs
    executor: str  # /workers K WHERE


def new_session_id() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}"


class SessionStore:
    """Reads and writes one session's state through a checkpointed one-node graph."""

    def __init__(self, runs_root: Path, session_id: str) -> None:
        if not re.fullmatch(r"[\w.-]+", session_id):
            raise TaskSpecError(f"--session must be letters, digits, '.', '_' or '-', "
                                f"got {session_id!r}")
        self.session_id = session_id
        self.folder = runs_root / f"chat-{session_id}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(self.folder / "session.sqlite",
                                           check_same_thread=False)
        graph = StateGraph(ChatState)
        graph.add_node("turn", lambda state: {})
        graph.add_edge(START, "turn")
        graph.add_edge("turn", END)
        self._graph = graph.compile(checkpointer=SqliteSaver(self._connection))
        self._config: RunnableConfig = {"configurable": {"thread_id": session_id}}

    @property
    def state(self) -> ChatState:
        return ChatState(**self._graph.get_state(self._config).values)  # type: ignore[typeddict-item]

    @property
    def is_new(self) -> bool:
        return not self._graph.get_state(self._config).values

    def save(self, update: dict[str, Any]) -> None:
        """Record one turn's changes; ``messages`` are appended, other keys replaced."""
        self._graph.update_state(self._config, update, as_node="turn")

    def close(self) -> None:
        self._connection.close()

    def next_run_dir(self) -> Path:
        return self.folder / f"run-{self.state.get('runs', 0) + 1}"
