"""Entry points: run a task end to end, and predict with a saved run."""

from __future__ import annotations

import logging
import os
import re
import secrets
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver
from threadpoolctl import threadpool_limits

from hyperpilot.agents.llm import LLMClient, make_llm
from hyperpilot.agents.llm.deadline import CallTimes, TimedLLM, default_times_path
from hyperpilot.agents.tuner.executors import resolve_kind
from hyperpilot.agents.tuner.ray_executor import cluster_gpus, connect
from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.pipelines.graph import RunContext, RunState, build_graph
from hyperpilot.pipelines.graph.schedule import FINISH_RESERVE_SECONDS, FINISH_SHARE_OF_TIME
from hyperpilot.pipelines.graph.state import Tick
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.tools.data import load_table
from hyperpilot.tools.errors import DataError, HyperpilotError, TaskSpecError
from hyperpilot.tools.experience import ExperienceStore
from hyperpilot.tools.knowledge import shipped_cards, user_cards

log = logging.getLogger(__name__)
SMALL_DATA_ROWS = 20_000
THREAD = "run"  # the checkpoint thread every run folder's graph uses
# Trials that bound the graph's steps when tuning goes on until the time limit.
UNTIL_DEADLINE_STEPS = 5_000


def default_out_dir(text: str) -> Path:
    slug = "-".join(re.findall(r"[a-z0-9]+", text.lower())[:5]) or "run"
    return Path("runs") / f"{slug}-{datetime.now():%Y%m%d-%H%M%S}"


def run_task(text: str, source: str, out: Path, options: RunOptions | None = None, *,
             progress: Callable[[str], None] = lambda line: None,
             llm: LLMClient | None = None, frame: pd.DataFrame | None = None,
             started_at: float | None = None, restart: bool = False,
             watch: Callable[[Tick], None] | None = None) -> dict[str, Any]:
    """Run one task end to end and return the final state; the run folder holds the artifacts.

    ``options`` (``RunOptions``; the defaults when None) are saved in the run folder, so a
    continued run uses them too. ``llm`` (an already built client) takes the place of
    ``options.llm``; ``frame`` (a table already in memory) takes the place of loading
    ``source``, which then only names it. Bad input raises a ``HyperpilotError`` before
    anything is written to ``out``. ``options.time_limit`` counts from ``started_at``
    (``time.time()`` seconds; the command line passes its process's start), else from now.
    A folder holding a run that did not finish is refused (resume it with ``resume_run``)
    unless ``restart``, which starts it over. ``watch`` is called after each trial with where
    the run stands (a live view).
    """
    started_at = time.time() if started_at is None else started_at
    options = options or RunOptions()
    if not text.strip():
        raise TaskSpecError("the task text is empty; say what to predict")
    frame = load_table(source) if frame is None else frame
    folder = RunFolder(out)
    folder.check(restart)  # before the LLM's transcript is made in it
    ctx, described = run_context(folder, frame, options, llm, progress, watch)
    if folder.prepare(restart):
        progress(f"[run] replacing the earlier run in {out}")
    folder.save_options(options)
    ctx.llm = timed(ctx.llm, options, started_at, progress)
    progress(f"[run] {len(frame)} rows from {source}; LLM: {described}; output: {out}")
    state: RunState = {"text": text, "source": source, "trials_budget": options.planned_trials,
                       "until_deadline": options.until_deadline, "started_at": started_at,
                       "run_id": new_run_id()}
    with threadpool_limits(limits=threads_for(len(frame))):
        try:
            return invoke(ctx, state, options.planned_trials)
        finally:
            ctx.close()
            close_llm(ctx.llm)


def run_context(folder: RunFolder, frame: pd.DataFrame, options: RunOptions,
                llm: LLMClient | None, progress: Callable[[str], None],
                watch: Callable[[Tick], None] | None = None) -> tuple[RunContext, str]:
    """What a run's nodes share, and a line saying which LLM it talks to. The user's
    knowledge folder is read here, so a bad one fails before anything is written."""
    cards = shipped_cards() + (user_cards(options.knowledge) if options.knowledge else [])
    if llm is None:
        llm, described = make_llm(options.llm, transcript_path=folder.transcript)
    else:
        described = f"{type(llm).__name__} given by the caller"
    ctx = RunContext(frame=frame, folder=folder, options=options, llm=llm, progress=progress,
                     cuda=cuda_available(), cards=cards,
                     experience=experience_store(options.experience))
    if watch is not None:
        ctx.watch = watch
    ctx.workers = concurrency(ctx)
    ctx.worker_threads = threads_for(len(frame), ctx.workers)
    ctx.executor_kind = resolve_kind(options.executor, time_limit=options.time_limit,
                                     workers_given=options.workers is not None)
    if ctx.executor_kind.startswith("ray"):  # a missing extra or cluster: one line, now
        connect(ctx.executor_kind.partition(":")[2] or None)
        ctx.cuda = ctx.cuda or cluster_gpus() > 0  # the planner plans for the cluster's GPUs
    if ctx.executor_kind == "inprocess" and options.time_limit is not None:
        progress("[run] --executor inprocess: a trial that has started runs to its end, "
                 "past the time limit if it must")
    if options.workers and options.workers > ctx.workers:
        progress("[run] the tuner talks to the LLM: one trial at a time, so its calls come "
                 "in a fixed order")
    return ctx, described


def timed(llm: LLMClient | None, options: RunOptions, started_at: float,
          progress: Callable[[str], None]) -> LLMClient | None:
    """The run's LLM with each call paid for by the time limit (``TimedLLM``, which keeps
    what each agent's calls to this LLM took, for later runs), or as it is when there is no
    limit or no LLM."""
    if llm is None or options.time_limit is None:
        return llm
    limit = options.time_limit
    reserve = max(FINISH_SHARE_OF_TIME * limit, FINISH_RESERVE_SECONDS)
    backend = getattr(llm, "backend", None)
    name = str(getattr(backend, "name", "") or type(backend or llm).__name__)
    return TimedLLM(llm, started_at + limit, limit, reserve=reserve, progress=progress,
                    times=CallTimes(default_times_path(), name))


def close_llm(llm: LLMClient | None) -> None:
    """Stop what the run's LLM holds: a local llama-server must not outlive the run (it starts
    again on a later call, so a caller's client stays usable)."""
    close = getattr(llm, "close", None)
    if callable(close):
        close()


def process_started_at() -> float:
    """When this process started (``time.time()`` seconds), so that a command's time limit
    counts from where a user timing it starts; now where the platform does not say."""
    try:
        after_name = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(after_name[19]) / os.sysconf("SC_CLK_TCK")  # field 22: since boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - max(0.0, uptime - started)
    except (OSError, ValueError, IndexError):
        return time.time()


def threads_for(n_rows: int, workers: int = 1) -> int | None:
    """Native threads per fit: one on small data, where OpenMP start-up costs more than it
    saves (a 150-row gradient boosting fit runs ~15x faster on one thread); on large data the
    cores shared out among the ``workers`` training at once (None: all, for one), since
    OpenMP threads that outnumber the cores spin against each other (LightGBM and
    HistGradientBoosting then take several times as long)."""
    if n_rows < SMALL_DATA_ROWS:
        return 1
    return None if workers <= 1 else max(1, (os.cpu_count() or 1) // workers)


def new_run_id() -> str:
    """A sortable, unique run id: the start time and a random suffix."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def experience_store(path: Path | None) -> ExperienceStore | None:
    return None if path is None else ExperienceStore(path)


def concurrency(ctx: RunContext) -> int:
    """Trials trained at once: ``--workers``, else one per plan; one when the tuner talks to
    an LLM, so the calls come in a fixed order and a recorded transcript replays exactly."""
    if ctx.llm is not None and ctx.options.llm_budget > 0:
        return 1
    return ctx.options.workers or max(1, ctx.options.plans)


def invoke(ctx: RunContext, state: RunState | None, trials: int,
           update: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the graph on the folder's checkpoints: from ``state`` for a new run; for a
    continued one (``state`` None), from the checkpoint amended by ``update`` as if the model
    node had just run. ``trials`` is how many trials are left to run; with the revisions
    allowed it bounds the graph's steps."""
    steps = UNTIL_DEADLINE_STEPS if ctx.options.until_deadline else trials
    recursion_limit = (ctx.options.revisions + 1) * (3 * steps + 30) + 60
    connection = sqlite3.connect(ctx.folder.checkpoints, check_same_thread=False)
    try:
        graph = build_graph(ctx).compile(checkpointer=SqliteSaver(connection))
        config: RunnableConfig = {"configurable": {"thread_id": THREAD},
                                  "recursion_limit": recursion_limit,
                                  "max_concurrency": concurrency(ctx)}
        if update is not None:
            graph.update_state(config, update, as_node="model")
        return dict(graph.invoke(state, config))
    finally:
        connection.close()


def checkpointed_state(folder: RunFolder) -> dict[str, Any]:
    """The latest checkpointed state of the run in ``folder`` (empty when there is none)."""
    if not folder.checkpoints.exists():
        return {}
    connection = sqlite3.connect(folder.checkpoints)
    try:
        latest = SqliteSaver(connection).get_tuple({"configurable": {"thread_id": THREAD}})
    finally:
        connection.close()
    return dict(latest.checkpoint["channel_values"]) if latest else {}


def cuda_available() -> bool:
    """Whether torch sees a CUDA (or ROCm) device. On Linux with no GPU driver loaded the
    answer is no without importing torch, whose import costs seconds of the run's limit."""
    if sys.platform.startswith("linux") and not any(
            Path(p).exists() for p in ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/kfd")):
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def predict(run_dir: Path, source: str | pd.DataFrame) -> pd.DataFrame:
    """Predictions of a saved run on new rows: the rows' ``prediction`` (and class probabilities).

    ``source`` is a file, ``sklearn:NAME`` or a DataFrame of rows.
    """
    folder = RunFolder(run_dir)
    if not folder.model.exists():
        raise DataError(f"{run_dir} holds no model.joblib; is it a finished hyperpilot run?")
    result = folder.read_result()
    frame = load_table(source) if isinstance(source, str) else source
    missing = [f for f in result.get("features", []) if f not in frame.columns]
    if missing:
        raise DataError(f"the data lacks columns the model needs: {missing}")
    model = folder.load_model()
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


__all__ = ["run_task", "predict", "default_out_dir", "HyperpilotError"]
