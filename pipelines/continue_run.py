"""Going on with a run in its own folder: resuming one that was stopped or killed, and
continuing a finished one with more trials or without some columns.

The run's LangGraph checkpoint is the record: finished trials are read from it and never
run again. A resumed run goes on from its last checkpoint, taking trials that finished
after it from the folder's journal (``trials.jsonl``). A continued run's state is amended
as if the model node had just run, and the graph goes on from the tuner, then refits,
verifies and rewrites the folder's files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from hyperpilot.agents.data_agent import without_columns
from hyperpilot.agents.llm import LLMClient
from hyperpilot.agents.planner import eligible_families, respread, widen
from hyperpilot.agents.tuner.agent import family_searches
from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.pipelines.graph.state import RunContext, Tick, event, plan_of, profile_of, task_of
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import (
    checkpointed_state,
    close_llm,
    invoke,
    run_context,
    threads_for,
    timed,
)
from hyperpilot.tools.data import load_table
from hyperpilot.tools.errors import DataError, TaskSpecError
from hyperpilot.tools.types import DataProfile, TaskSpec, TrialRecord


def continue_run(run_dir: Path, *, more: int = 0, family: str | None = None,
                 drop: list[str] | tuple[str, ...] = (), llm: LLMClient | None = None,
                 frame: pd.DataFrame | None = None,
                 progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Continue the run in ``run_dir`` with the options it was started with, and return its
    new final state.

    ``more`` trials are added (all to ``family`` when given, else spread over the plan);
    ``drop`` names feature columns to leave out, which starts a new plan on the remaining
    features with the same budget (or ``more``) while the earlier trials stay on record.
    With neither, an interrupted run finishes its planned trials. ``llm`` (a client the
    caller holds, e.g. the chat's) replaces the LLM the options name; ``frame`` replaces
    reloading the run's data source (needed for runs made from a DataFrame).
    """
    if more < 0:
        raise TaskSpecError(f"more trials must be zero or more, got {more}")
    folder = RunFolder(run_dir)
    if not folder.can_continue():
        raise DataError(f"{run_dir} holds no hyperpilot run to continue")
    values = checkpointed_state(folder)
    if "spaces" not in values:
        raise DataError("this run stopped before its plan was made; start a new run instead")
    options = folder.load_options() or legacy_options(values)
    table = _table(values, frame)
    ctx, _ = run_context(folder, table, options, llm, progress)
    try:
        update = amend(values, ctx, more=more, family=family, drop=list(drop))
        ctx.llm = timed(ctx.llm, options, update["started_at"], progress)
        budget = update["trials_budget"] - len(values.get("trials", []))
        with threadpool_limits(limits=threads_for(len(table))):
            return invoke(ctx, None, budget, update)
    finally:
        ctx.close()
        close_llm(ctx.llm)


# The options a resumed run may change: where its trials train, not what they are.
WHERE_OPTIONS = ("workers", "executor")


def resume_run(run_dir: Path, *, llm: LLMClient | None = None, frame: pd.DataFrame | None = None,
               progress: Callable[[str], None] = lambda line: None,
               where: dict[str, Any] | None = None,
               watch: Callable[[Tick], None] | None = None) -> dict[str, Any]:
    """Resume the stopped or killed run in ``run_dir`` with its own options, and return its
    final state: what the run would have ended with had it not been stopped.

    Trials in the last checkpoint are kept; trials that finished after it (the journal,
    ``trials.jsonl``) are taken as they are instead of being trained again; trials that were
    still training when the run stopped are trained once more. With a time limit, the time
    the run was stopped for does not count. ``llm`` and ``frame`` are as for ``continue_run``.
    ``where`` may change where the trials train (``workers``, ``executor``: a cluster run
    resumed on another machine, or with more workers) and nothing else; the run keeps it.
    ``watch`` is called after each trial, as for ``run_task``.
    """
    folder = RunFolder(run_dir)
    if not folder.is_run():
        raise DataError(f"{run_dir} holds no hyperpilot run to resume")
    if folder.result.is_file():
        raise DataError(f"the run in {run_dir} has finished; there is nothing to resume "
                        "(more trials: the chat's /more, or hyperpilot.continue_run)")
    values = checkpointed_state(folder) if folder.checkpoints.exists() else {}
    if "source" not in values:
        raise DataError(f"the run in {run_dir} stopped before its first step; start it again "
                        "with `hyperpilot run ... --restart`")
    options = folder.load_options() or legacy_options(values)
    if where:
        unknown = sorted(set(where) - set(WHERE_OPTIONS))
        if unknown:
            raise TaskSpecError(f"a resumed run keeps its options; only "
                                f"{', '.join(WHERE_OPTIONS)} "
                                f"may change, not {', '.join(unknown)}")
        options = options.changed(**where)
    table = _table(values, frame)
    ctx, _ = run_context(folder, table, options, llm, progress, watch)
    if where:
        folder.save_options(options)
    try:
        known = {int(t["number"]) for t in values.get("trials", [])}
        journal = [TrialRecord.model_validate(t) for t in folder.read_trials()
                   if isinstance(t.get("number"), int) and t["number"] not in known]
        ctx.journal = {t.number: t for t in journal}
        last = folder.last_written()
        if options.time_limit is not None and last is not None:
            ctx.paused = max(0.0, time.time() - last)
        ctx.llm = timed(ctx.llm, options, ctx.started(values), progress)  # type: ignore[arg-type]
        used = f"; {time.time() - ctx.started(values):.0f} s of its time limit used" \
            if options.time_limit is not None else ""  # type: ignore[arg-type]
        progress(f"[resume] {len(known)} trials in the checkpoint and {len(journal)} finished "
                 f"after it kept{used}")
        with threadpool_limits(limits=threads_for(len(table))):
            return invoke(ctx, None, int(values.get("trials_budget") or options.planned_trials))
    finally:
        ctx.close()
        close_llm(ctx.llm)


def legacy_options(values: dict[str, Any]) -> RunOptions:
    """The options of a run folder made before they were saved: what its checkpoint kept."""
    return RunOptions(trials=int(values.get("trials_budget", 30)),
                      time_limit=values.get("time_limit"), seed=int(values.get("seed", 0)))


def checkpointed_trials(run_dir: Path) -> int:
    """How many finished trials the run keeps: its checkpoint's and, of a stopped run, those
    its journal holds beyond them (0 when there are none)."""
    folder = RunFolder(run_dir)
    numbers = {t.get("number") for t in checkpointed_state(folder).get("trials", [])}
    if folder.is_stopped():
        numbers |= {t.get("number") for t in folder.read_trials()}
    return len(numbers)


def _table(values: dict[str, Any], frame: pd.DataFrame | None) -> pd.DataFrame:
    if frame is None:
        if values["source"].startswith("DataFrame"):
            raise DataError("this run's data came from a DataFrame; pass it again as frame=")
        try:
            frame = load_table(values["source"])
        except DataError as err:
            raise DataError(f"cannot reload the run's data ({err}); pass the table as frame=") \
                from None
    if "profile" not in values:  # stopped before the data was read: nothing to compare
        return frame
    profile = values["profile"]
    needed = [*profile["features"], profile["target"]]
    if len(frame) != profile["n_rows"] or any(c not in frame.columns for c in needed):
        raise DataError(f"the data at {values['source']} has changed since the run "
                        f"({len(frame)} rows now, {profile['n_rows']} then); start a new run")
    return frame


def amend(values: dict[str, Any], ctx: RunContext, *, more: int, family: str | None,
          drop: list[str]) -> dict[str, Any]:
    """The state update that continues the run: new plan, spaces, budget, an event."""
    task, profile = task_of(values), profile_of(values)  # type: ignore[arg-type]
    plan = plan_of(values)  # type: ignore[arg-type]
    update: dict[str, Any] = {"stop_reason": "", "started_at": time.time()}
    if more:  # the user asked for a number of trials: those, not the rest of a time limit
        update["until_deadline"] = False
    if drop:
        profile = without_columns(profile, drop)
        plan = respread(plan, more or sum(plan.trials.values()), new_id=_next_plan_id(values))
        update["profile"] = profile.model_dump()
        spaces, warm = _search(list(plan.trials), task, profile, values, ctx)
        what = f"without {', '.join(drop)}: a new search, {sum(plan.trials.values())} trials"
    else:
        plan = widen(plan, more, family, eligible_families(task, profile, ctx.cuda))
        new = [f for f in plan.trials if f not in values["spaces"]]
        spaces, warm = _search(new, task, profile, values, ctx)
        spaces, warm = {**values["spaces"], **spaces}, {**values["warm"], **warm}
        what = f"{more} more trials" + (f" for {family}" if family else "")
    added = sum(plan.trials.values()) - _done(values, plan.id)
    total = len(values.get("trials", [])) + max(added, 0)
    task = task.model_copy(update={"budget": task.budget.model_copy(update={"trials": total})})
    ctx.progress(f"[continue] {what}; {len(values.get('trials', []))} finished trials kept")
    # The continuation tunes one plan (the winner, or the new one) with no halving.
    allot = sum(plan.trials.values())
    return {**update, "plan": plan.model_dump(), "plans": [plan.model_dump()],
            "active": [plan.id], "stages": [[1, allot]], "stage": 0, "allot": {plan.id: allot},
            "spaces": spaces, "warm": warm, "task": task.model_dump(), "trials_budget": total,
            "events": [event("continue", None, what)]}


def _search(families: list[str], task: TaskSpec, profile: DataProfile, values: dict[str, Any],
            ctx: RunContext) -> tuple[dict[str, Any], dict[str, Any]]:
    searches = family_searches(families, task, profile, len(values["split"]["train"]), ctx.llm)
    return ({f: s.space.value.model_dump() for f, s in searches.items()},
            {f: s.warm.value for f, s in searches.items()})


def _next_plan_id(values: dict[str, Any]) -> str:
    used = {t.get("plan_id", "") for t in values.get("trials", [])} | {values["plan"]["id"]}
    return f"plan-{len(used) + 1}"


def _done(values: dict[str, Any], plan_id: str) -> int:
    return sum(t.get("plan_id") == plan_id for t in values.get("trials", []))


