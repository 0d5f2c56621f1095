"""The run graph.

parse -> data -> request check -> plan (k plans) -> model (spaces, warm starts) -> schedule
-> tune_plan x k in parallel (one trial of each running plan a step; successive halving
between stages) -> finalize (select, refit, holdout) -> verify -> report, or, when a check
fails for a reason a new plan can fix, revise -> plan again (at most ``--revisions`` times).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from langgraph.graph import END, START, StateGraph

from hyperpilot.agents.data_agent import (
    choose_metric,
    choose_positive_class,
    choose_target,
    resolve_task_type,
)
from hyperpilot.agents.request import RequestDraft, parse_request
from hyperpilot.agents.verifier import check_request
from hyperpilot.pipelines.finish import (
    after_verify,
    finalize_node,
    report_node,
    revise_node,
    verify_node,
)
from hyperpilot.pipelines.plans import (
    dispatch,
    event,
    model_node,
    plan_node,
    retrieval_summary,
    schedule_node,
    tune_plan_node,
)
from hyperpilot.pipelines.state import RunContext, RunState
from hyperpilot.tools.data import profile_table, single_feature_leakage, split_holdout
from hyperpilot.tools.errors import HyperpilotError
from hyperpilot.tools.evaluate import get_metric
from hyperpilot.tools.types import Budget, Constraints, DataProfile, TaskSpec


def build_graph(ctx: RunContext) -> StateGraph:
    """The run's graph over ``RunState``; nodes close over ``ctx``. Compile with a checkpointer."""
    graph = StateGraph(RunState)
    graph.add_node("parse", lambda s: parse_node(s, ctx))
    graph.add_node("data", lambda s: data_node(s, ctx))
    graph.add_node("verify_request", verify_request_node)
    graph.add_node("plan", lambda s: plan_node(s, ctx))
    graph.add_node("model", lambda s: model_node(s, ctx))
    graph.add_node("schedule", lambda s: schedule_node(s, ctx))
    graph.add_node("tune_plan", lambda s: tune_plan_node(s, ctx))
    graph.add_node("finalize", lambda s: finalize_node(s, ctx))
    graph.add_node("verify", lambda s: verify_node(s, ctx))
    graph.add_node("revise", lambda s: revise_node(s, ctx))
    graph.add_node("report", lambda s: report_node(s, ctx))
    graph.add_edge(START, "parse")
    graph.add_edge("parse", "data")
    graph.add_edge("data", "verify_request")
    graph.add_conditional_edges("verify_request", _after_request, ["plan", "report"])
    graph.add_edge("plan", "model")
    graph.add_edge("model", "schedule")
    graph.add_conditional_edges("schedule", dispatch, ["tune_plan", "schedule", "finalize"])
    graph.add_edge("tune_plan", "schedule")
    graph.add_edge("finalize", "verify")
    graph.add_conditional_edges("verify", lambda s: after_verify(s, ctx), ["revise", "report"])
    graph.add_edge("revise", "plan")
    graph.add_edge("report", END)
    return graph


def parse_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    decision = parse_request(state["text"], [str(c) for c in ctx.frame.columns], ctx.llm)
    draft = decision.value
    ctx.progress(f"[parse] target: {draft.target or '(not named)'}, metric: "
                 f"{draft.metric or '(not named)'} [{decision.source}]")
    return {"draft": draft.model_dump(), "events": [event("parse", decision, "read the request")]}


def data_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    draft = RequestDraft.model_validate(state["draft"])
    if not draft.is_ml:
        return {"problems": []}
    try:
        return _resolve_data(state, draft, ctx)
    except HyperpilotError as err:
        return {"problems": [str(err)]}


def _resolve_data(state: RunState, draft: RequestDraft, ctx: RunContext) -> dict[str, Any]:
    choice = choose_target(state["text"], draft, ctx.frame, state["source"], ctx.llm)
    target = choice.value
    if target not in ctx.frame.columns:
        raise HyperpilotError(f"target column '{target}' not found; columns are "
                              f"{list(ctx.frame.columns)}")
    task_type = resolve_task_type(draft.task_type, ctx.frame[target])
    profile = profile_table(ctx.frame, target, task_type)
    metric = choose_metric(draft.metric, profile)
    train, holdout = split_holdout(ctx.frame, target, task_type, seed=state["seed"])
    leakage = single_feature_leakage(ctx.frame.iloc[train], target, profile.features, task_type,
                                     seed=state["seed"])
    profile = _without(profile, leakage)
    task = _task_spec(state, draft, profile, metric, ctx.frame[target])
    ctx.progress(f"[data] target '{target}' ({choice.note or choice.source}); {task_type}, "
                 f"{profile.n_rows} rows, {len(profile.features)} features; metric {metric}; "
                 f"holdout {len(holdout)} rows")
    for name, why in {**profile.dropped, **leakage}.items():
        ctx.progress(f"[data] dropped column '{name}': {why}")
    events = [event("data", choice, f"target '{target}'"),
              event("data", None, f"{task_type} task, metric {metric}, {len(train)} training "
                                  f"rows, {len(holdout)} holdout rows")]
    return {"task": task.model_dump(), "profile": profile.model_dump(), "problems": [],
            "split": {"train": train, "holdout": holdout}, "events": events}


def _without(profile: DataProfile, leakage: dict[str, str]) -> DataProfile:
    features = [f for f in profile.features if f not in leakage]
    return profile.model_copy(update={"features": features, "leakage": leakage})


def _task_spec(state: RunState, draft: RequestDraft, profile: DataProfile, metric: str,
               y: pd.Series) -> TaskSpec:
    positive = choose_positive_class(draft.positive_class, profile)
    return TaskSpec(
        text=state["text"], task_type=profile.task_type, target=profile.target, metric=metric,
        direction=get_metric(metric).direction, data_source=state["source"],
        positive_class=_actual_label(positive, y),
        budget=Budget(trials=state["trials_budget"], time_limit=state.get("time_limit")),
        constraints=Constraints(max_latency_ms=draft.max_latency_ms,
                                max_features=draft.max_features, max_model_mb=draft.max_model_mb,
                                interpretable=draft.interpretable),
    )


def _actual_label(label: str | None, y: pd.Series) -> Any:
    """Profiles key classes by their text; metrics need the label with its real type."""
    if label is None:
        return None
    for value in y.dropna().unique():
        if str(value) == label:
            return value.item() if isinstance(value, np.generic) else value
    return label


def verify_request_node(state: RunState) -> dict[str, Any]:
    draft = RequestDraft.model_validate(state["draft"])
    task = TaskSpec.model_validate(state["task"]) if "task" in state else None
    result = check_request(draft, state.get("problems", []), task)
    update: dict[str, Any] = {"verification": {"request": result.model_dump()}}
    if result.status == "fail":
        update["status"] = "rejected"
    return update


def _after_request(state: RunState) -> str:
    return "report" if state.get("status") == "rejected" else "plan"


__all__ = ["build_graph", "event", "retrieval_summary"]
