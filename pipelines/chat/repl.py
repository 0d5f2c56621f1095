"""The terminal loop of ``hyperpilot chat``: greeting, readline history, resume."""

from __future__ import annotations

import contextlib
import shlex
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from hyperpilot.agents.llm import make_llm
from hyperpilot.pipelines.chat.chat import Chat
from hyperpilot.pipelines.chat.session import SessionStore, new_session_id
from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.pipelines.options import RunOptions

HISTORY_LINES = 1000


def run_chat(data: str | None, session: str | None, llm_spec: str | None, trials: int | None,
             runs_root: Path, console: Console | None = None,
             options: RunOptions | None = None) -> int:
    """Hold a conversation until /quit or end of input; returns the exit status. ``options``
    are the run options the session's runs start from (``--workers``, ``--executor``)."""
    console = console or Console(highlight=False)
    attach = session if session is not None and RunFolder(Path(session)).is_run() else None
    if attach is not None:  # --session names a run folder: a new session that works on it
        session = None
    store = SessionStore(runs_root, session or new_session_id())
    try:
        llm, described = make_llm(llm_spec, transcript_path=store.folder / "transcript.jsonl")
        session_options = (options or RunOptions()).changed(
            llm=llm_spec if llm is not None else "none")
        chat = Chat(store, llm, console, session_options)
        _greet(chat, store, described, resumed=session is not None and not store.is_new)
        if trials is not None:
            store.save({"trials": trials})
        if attach is not None:
            chat.handle(f"/attach {shlex.quote(attach)}")
        if data is not None:
            chat.use_data(data)
        _loop(chat, store.folder / "history", console)
    finally:
        store.close()
    console.print(f"Bye. Resume with: hyperpilot chat --session {store.session_id}")
    return 0


def _greet(chat: Chat, store: SessionStore, described: str, resumed: bool) -> None:
    state = store.state
    if not resumed:
        chat.console.print(f"hyperpilot chat, session {store.session_id} (LLM: {described}). "
                           "Describe what to predict, or /help.")
        return
    chat.console.print(f"Resumed session {store.session_id} (LLM: {described}); "
                       f"{len(state.get('messages', []))} messages so far. The last ones:")
    for message in state.get("messages", [])[-4:]:
        chat.console.print(f"  {message['role']}: {escape(message['text'])}", style="dim")
    if state.get("data"):
        chat.status()


def _loop(chat: Chat, history: Path, console: Console) -> None:
    readline = _readline(history)
    while True:
        try:
            line = console.input("you> ")
        except EOFError:
            console.print()
            return
        except KeyboardInterrupt:
            console.print("\n(/quit or Ctrl-D leaves; Ctrl-C during a run stops the run)")
            continue
        if readline is not None:
            with contextlib.suppress(OSError):
                readline.write_history_file(str(history))
        if not chat.handle(line):
            return


def _readline(history: Path) -> Any:
    try:
        import readline
    except ImportError:  # not on every platform; the chat works without history
        return None
    readline.set_history_length(HISTORY_LINES)
    if history.exists():
        with contextlib.suppress(OSError):
            readline.read_history_file(str(history))
    return readline
