"""Entry points: run a task end to end, and predict with a saved run."""

from __future__ import annotations

import logging
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from langgraph.checkpoint.sqlite import SqliteSaver
from threadpoolctl import threadpool_limits

from hyperpilot.agents.llm import LLMClient, make_llm
from hyperpilot.pipelines.graph import build_graph
from hyperpilot.pipelines.state import RunContext, RunState
from hyperpilot.tools.data import load_table
from hyperpilot.tools.errors import DataError, HyperpilotError, OutputDirError, TaskSpecError
from hyperpilot.tools.experience import ExperienceStore, default_store_path
from hyperpilot.tools.knowledge import shipped_cards, user_cards

log = logging.getLogger(__name__)
SMALL_DATA_ROWS = 20_000
MARKER = ".hyperpilot-run"
# Only these are ever removed when a run folder is reused; anything else in it stays.
RUN_FILES = ("model.joblib", "result.json", "leaderboard.csv", "trials.jsonl", "report.md",
             "transcript.jsonl", "holdout.parquet", "checkpoints.sqlite",
             "checkpoints.sqlite-wal", "checkpoints.sqlite-shm", "hyperpilot.log")


def default_out_dir(text: str) -> Path:
    slug = "-".join(re.findall(r"[a-z0-9]+", text.lower())[:5]) or "run"
    return Path("runs") / f"{slug}-{datetime.now():%Y%m%d-%H%M%S}"


def check_options(trials: int, time_limit: float | None) -> None:
    if trials < 1:
        raise TaskSpecError(f"--trials must be at least 1, got {trials}")
    if time_limit is not None and time_limit <= 0:
        raise TaskSpecError(f"--time-limit must be a positive number of seconds, got {time_limit}")


def prepare_out_dir(out: Path) -> bool:
    """Make ``out`` ready for a run; returns True when an earlier run's files were replaced.

    A non-empty folder that is not a hyperpilot run is refused, so nothing a user had is lost.
    """
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--out {out} is a file, not a folder")
    replaced = False
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise OutputDirError(f"--out {out} is not empty and holds no hyperpilot run; "
                                 "choose a new or empty folder")
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        replaced = True
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("hyperpilot run folder\n")
    return replaced


def run_task(text: str, source: str, out: Path, *, llm_spec: str | None = None, trials: int = 30,
             time_limit: float | None = None, seed: int = 0,
             progress: Callable[[str], None] = lambda line: None,
             llm: LLMClient | None = None, frame: pd.DataFrame | None = None,
             experience: Path | None | bool = True, knowledge: Path | None = None,
             llm_budget: int = 0, plans: int = 3, revisions: int = 2,
             halving: bool = True) -> dict[str, Any]:
    """Run one task end to end and return the final state; the run folder holds the artifacts.

    ``llm`` (an already built client) takes the place of ``llm_spec``; ``frame`` (a table
    already in memory) takes the place of loading ``source``, which then only names it.
    ``experience`` is the experience store's path, ``True`` for the default one, ``False``
    for none. ``knowledge`` adds a folder of the user's notes to the shipped cards.
    ``llm_budget`` is the LLM calls the tuner may spend on LLAMBO proposals. ``plans`` is
    how many plans run side by side (successive halving between them) and ``revisions`` how
    often a failed verification may send the run back to the planner. ``halving`` stops a
    trial that is clearly losing to its family's earlier ones after its first CV folds
    (recorded as PRUNED). Bad input
    raises a ``HyperpilotError`` before anything is written to ``out``.
    """
    if not text.strip():
        raise TaskSpecError("the task text is empty; say what to predict")
    check_options(trials, time_limit)
    if plans < 1 or revisions < 0:
        raise TaskSpecError(f"--plans must be at least 1 and --revisions at least 0, got "
                            f"{plans} and {revisions}")
    frame = load_table(source) if frame is None else frame
    cards = shipped_cards() + (user_cards(knowledge) if knowledge is not None else [])
    if llm is None:
        llm, described = make_llm(llm_spec, transcript_path=out / "transcript.jsonl")
    else:
        described = f"{type(llm).__name__} given by the caller"
    if prepare_out_dir(out):
        progress(f"[run] replacing the earlier run in {out}")
    (out / "transcript.jsonl").touch()
    progress(f"[run] {len(frame)} rows from {source}; LLM: {described}; output: {out}")
    ctx = RunContext(frame=frame, out_dir=out, llm=llm, progress=progress, cuda=_cuda(),
                     cards=cards, experience=_store(experience), llm_budget=llm_budget,
                     plans=plans, revisions=revisions, halving=halving)
    state: RunState = {"text": text, "source": source, "trials_budget": trials,
                       "time_limit": time_limit, "seed": seed, "started_at": time.time(),
                       "run_id": new_run_id()}
    with threadpool_limits(limits=threads_for(len(frame))):
        try:
            return _invoke(ctx, state, recursion_limit=(revisions + 1) * (3 * trials + 30) + 50,
                           max_concurrency=_concurrency(ctx))
        finally:
            _close_llm(llm)


def _close_llm(llm: LLMClient | None) -> None:
    """Stop what the run's LLM holds: a local llama-server must not outlive the run (it starts
    again on a later call, so a caller's client stays usable)."""
    close = getattr(llm, "close", None)
    if callable(close):
        close()


def threads_for(n_rows: int) -> int | None:
    """Native threads per fit: one on small data, where OpenMP start-up costs more than it
    saves (a 150-row gradient boosting fit runs ~15x faster on one thread); all on large."""
    return 1 if n_rows < SMALL_DATA_ROWS else None


def new_run_id() -> str:
    """A sortable, unique run id: the start time and a random suffix."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _store(experience: Path | None | bool) -> ExperienceStore | None:
    if experience is False or experience is None:
        return None
    return ExperienceStore(default_store_path() if experience is True else Path(experience))


def _concurrency(ctx: RunContext) -> int:
    """Plans train in parallel, except when the tuner talks to an LLM: then one at a time, so
    the calls come in a fixed order and a recorded transcript replays exactly."""
    return 1 if ctx.llm is not None and ctx.llm_budget > 0 else max(1, ctx.plans)


def _invoke(ctx: RunContext, state: RunState, recursion_limit: int,
            max_concurrency: int = 1) -> dict[str, Any]:
    connection = sqlite3.connect(ctx.out_dir / "checkpoints.sqlite", check_same_thread=False)
    try:
        graph = build_graph(ctx).compile(checkpointer=SqliteSaver(connection))
        config = {"configurable": {"thread_id": "run"}, "recursion_limit": recursion_limit,
                  "max_concurrency": max_concurrency}
        return dict(graph.invoke(state, config))
    finally:
        connection.close()


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def predict(run_dir: Path, source: str | pd.DataFrame) -> pd.DataFrame:
    """Predictions of a saved run on new rows: the rows' ``prediction`` (and class probabilities).

    ``source`` is a file, ``sklearn:NAME`` or a DataFrame of rows.
    """
    model_path = run_dir / "model.joblib"
    if not model_path.exists():
        raise DataError(f"{run_dir} holds no model.joblib; is it a finished hyperpilot run?")
    import json

    result = json.loads((run_dir / "result.json").read_text())
    frame = load_table(source) if isinstance(source, str) else source
    missing = [f for f in result.get("features", []) if f not in frame.columns]
    if missing:
        raise DataError(f"the data lacks columns the model needs: {missing}")
    model = joblib.load(model_path)
    target = (result.get("task") or {}).get("target")
    X = frame.drop(columns=[target]) if target in frame.columns else frame
    out = pd.DataFrame({"prediction": model.predict(X)}, index=frame.index)
    if hasattr(model, "predict_proba"):
        try:
            proba = model.predict_proba(X)
        except (AttributeError, NotImplementedError):
            return out
        for i, cls in enumerate(model.classes_):
            out[f"proba_{cls}"] = proba[:, i]
    return out


__all__ = ["run_task", "predict", "prepare_out_dir", "default_out_dir", "HyperpilotError"]
