"""The first nodes of a run: read the request, settle the task and the data, check the request."""

from __future__ import annotations

from typing import Any

from hyperpilot.agents.data_agent import prepare_data
from hyperpilot.agents.request import understand_request
from hyperpilot.agents.request_reading import summarise_table
from hyperpilot.agents.verifier import check_request
from hyperpilot.pipelines.graph.state import RunContext, RunState, draft_of, event, task_of
from hyperpilot.tools.data import bundled_target
from hyperpilot.tools.errors import HyperpilotError
from hyperpilot.tools.types import Budget

# Asked where the rules are unsure, the embedded LLM made the reading worse (target 98.9% ->
# 95.6% over 396 texts, and guesses on texts that should be asked about:
# benchmarks/results/request_understanding/results_local_rules-ask.md), so a run does not ask it.
ASK_LLM_WHEN_UNSURE = False


def parse_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    llm = ctx.llm if ASK_LLM_WHEN_UNSURE else None
    decision = understand_request(state["text"], summarise_table(ctx.frame), llm,
                                  declared=bundled_target(state["source"]))
    draft = decision.value
    ctx.progress(f"[parse] target: {draft.target or '(not named)'}, {draft.task_type or 'kind ?'}, "
                 f"metric: {draft.metric or '(not named)'} [{decision.source}]")
    return {"draft": draft.model_dump(), "events": [event("parse", decision, "read the request")]}


def data_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    draft = draft_of(state)
    if not draft.is_ml:
        return {"problems": []}
    if draft.question is not None:
        return {"problems": [draft.question]}
    budget = Budget(trials=state["trials_budget"], time_limit=ctx.options.time_limit)
    try:
        data = prepare_data(state["text"], draft, ctx.frame, state["source"], budget,
                            ctx.options.seed, ctx.llm)
    except HyperpilotError as err:
        return {"problems": [str(err)]}
    task, profile = data.task, data.profile
    ctx.progress(f"[data] target '{task.target}' ({data.target.note or data.target.source}); "
                 f"{task.task_type}, {profile.n_rows} rows, {len(profile.features)} features; "
                 f"metric {task.metric}; holdout {len(data.holdout)} rows")
    if task.time_column is not None:
        ctx.progress(f"[data] rows ordered in time by '{task.time_column}': the holdout is the "
                     "latest rows, cross-validation trains on the past only")
    for name, why in {**profile.dropped, **profile.leakage}.items():
        ctx.progress(f"[data] dropped column '{name}': {why}")
    events = [event("data", data.target, f"target '{task.target}'"),
              event("data", None, f"{task.task_type} task, metric {task.metric}, "
                                  f"{len(data.train)} training rows, {len(data.holdout)} holdout rows")]
    return {"task": task.model_dump(), "profile": profile.model_dump(), "problems": [],
            "split": {"train": data.train, "holdout": data.holdout}, "events": events}


def verify_request_node(state: RunState) -> dict[str, Any]:
    task = task_of(state) if "task" in state else None
    result = check_request(draft_of(state), state.get("problems", []), task)
    update: dict[str, Any] = {"verification": {"request": result.model_dump()}}
    if result.status == "fail":
        update["status"] = "rejected"
    return update


def after_request(state: RunState) -> str:
    return "report" if state.get("status") == "rejected" else "plan"
