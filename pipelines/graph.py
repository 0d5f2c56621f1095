"""The run graph.

parse -> data -> request check -> plan -> model -> tune (one trial a step, looping)
-> finalize (select, refit, holdout) -> verify -> report.
"""

from __future__ import annotations

import time
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
from hyperpilot.agents.model_agent import choose_space
from hyperpilot.agents.planner import Plan, make_plan
from hyperpilot.agents.request import RequestDraft, parse_request
from hyperpilot.agents.runner import Decision
from hyperpilot.agents.tuner.agent import next_family, run_trial, warm_start
from hyperpilot.agents.verifier import check_request
from hyperpilot.pipelines.finish import finalize_node, report_node, verify_node
from hyperpilot.pipelines.state import RunContext, RunState
from hyperpilot.tools.data import profile_table, single_feature_leakage, split_holdout
from hyperpilot.tools.errors import HyperpilotError
from hyperpilot.tools.evaluate import baseline_score, get_metric
from hyperpilot.tools.retrieval import Retrieved, retrieve
from hyperpilot.tools.space import SearchSpace
from hyperpilot.tools.types import Budget, Constraints, DataProfile, TaskSpec, TrialRecord

# Tuning stops this far before --time-limit, leaving time to refit and verify the winner:
# a share of the limit, but never less than a fixed reserve (a fresh-process reload alone
# takes a few seconds).
FINISH_SHARE_OF_TIME = 0.2
FINISH_RESERVE_SECONDS = 5.0


def event(stage: str, decision: Decision[Any] | None = None, message: str = "") -> dict[str, str]:
    """A line for the report: what a stage decided and who decided it."""
    if decision is None:
        return {"stage": stage, "source": "tools", "message": message}
    note = f" ({decision.note})" if decision.note else ""
    return {"stage": stage, "source": decision.source, "message": message + note}


def build_graph(ctx: RunContext) -> StateGraph:
    """The run's graph over ``RunState``; nodes close over ``ctx``. Compile with a checkpointer."""
    graph = StateGraph(RunState)
    graph.add_node("parse", lambda s: parse_node(s, ctx))
    graph.add_node("data", lambda s: data_node(s, ctx))
    graph.add_node("verify_request", verify_request_node)
    graph.add_node("plan", lambda s: plan_node(s, ctx))
    graph.add_node("model", lambda s: model_node(s, ctx))
    graph.add_node("tune", lambda s: tune_node(s, ctx))
    graph.add_node("finalize", lambda s: finalize_node(s, ctx))
    graph.add_node("verify", lambda s: verify_node(s, ctx))
    graph.add_node("report", lambda s: report_node(s, ctx))
    graph.add_edge(START, "parse")
    graph.add_edge("parse", "data")
    graph.add_edge("data", "verify_request")
    graph.add_conditional_edges("verify_request", _after_request, ["plan", "report"])
    graph.add_edge("plan", "model")
    graph.add_edge("model", "tune")
    graph.add_conditional_edges("tune", _after_tune, ["tune", "finalize"])
    graph.add_edge("finalize", "verify")
    graph.add_edge("verify", "report")
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
                                max_features=draft.max_features, interpretable=draft.interpretable),
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


def plan_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    task = TaskSpec.model_validate(state["task"])
    profile = DataProfile.model_validate(state["profile"])
    retrieved = retrieve(task, profile, ctx.cards, ctx.experience)
    for past in retrieved.runs:
        ctx.progress(f"[plan] similar past run {past.run.run_id} ({past.similarity:.2f}): "
                     f"{past.run.best_model} won with CV {past.run.best_cv:.4f}")
    decision = make_plan(task, profile, ctx.llm, cuda=ctx.cuda, retrieved=retrieved)
    plan = decision.value
    listing = ", ".join(f"{n} x{k}" for n, k in plan.trials.items())
    ctx.progress(f"[plan] {listing} [{decision.source}]; cites {', '.join(plan.sources) or 'nothing'}")
    return {"plan": plan.model_dump(), "retrieved": retrieval_summary(retrieved),
            "events": [event("plan", decision, listing)]}


def retrieval_summary(retrieved: Retrieved) -> dict[str, Any]:
    """What retrieval found, as checkpointable data (past winners' configs included)."""
    return {
        "query": retrieved.query,
        "cards": [{"id": c.card.id, "score": round(c.score, 3)} for c in retrieved.cards],
        "runs": [{"run_id": r.run.run_id, "similarity": round(r.similarity, 3),
                  "winner": r.run.best_model, "best_cv": r.run.best_cv,
                  "configs": {f: v.best_config for f, v in r.run.families.items()}}
                 for r in retrieved.runs],
    }


def model_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    task = TaskSpec.model_validate(state["task"])
    profile = DataProfile.model_validate(state["profile"])
    plan = Plan.model_validate(state["plan"])
    n_train = len(state["split"]["train"])
    spaces, warm, events = {}, {}, []
    for family in plan.trials:
        space = choose_space(family, task, profile, n_train, ctx.llm)
        past = [r["configs"][family] for r in state.get("retrieved", {}).get("runs", [])
                if family in r["configs"]]
        starts = warm_start(family, space.value, task, profile, ctx.llm, past=past)
        spaces[family] = space.value.model_dump()
        warm[family] = starts.value
        events += [event("model", space, f"{family}: {len(space.value.dims)} hyperparameters"),
                   event("tuner", starts, f"{family}: {len(starts.value)} warm-start configs")]
    return {"spaces": spaces, "warm": warm, "events": events,
            "baseline_cv": _baseline(state, ctx, task)}


def _baseline(state: RunState, ctx: RunContext, task: TaskSpec) -> float:
    data = ctx.training(state)
    return baseline_score(data.X, data.y, data.folds, task.task_type, task.metric,
                          task.positive_class)


def tune_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    task = TaskSpec.model_validate(state["task"])
    profile = DataProfile.model_validate(state["profile"])
    plan = Plan.model_validate(state["plan"])
    history = [TrialRecord.model_validate(t) for t in state.get("trials", [])]
    # A continued run may hold trials of an earlier plan (other features): they stay on
    # record, but this plan's schedule and searches count only its own trials.
    current = [t for t in history if t.plan_id == plan.id]
    family = next_family(plan.trials, current)
    if family is None:
        return {"stop_reason": f"all {len(current)} planned trials done"}
    space = SearchSpace.model_validate(state["spaces"][family])
    record = run_trial(family, space, state["warm"][family], history, task, profile,
                       ctx.training(state), state["seed"], plan.id,
                       llm=ctx.llm, llm_budget=ctx.llm_budget)
    _show_trial(ctx, record, history, task)
    update: dict[str, Any] = {"trials": [record.model_dump(mode="json")]}
    stop = _stop_reason(state, current + [record], plan)
    if stop:
        update["stop_reason"] = stop
    return update


def _show_trial(ctx: RunContext, record: TrialRecord, history: list[TrialRecord],
                task: TaskSpec) -> None:
    total = task.budget.trials
    best = _best(history + [record], task.direction)
    score = f"{record.score:.4f}" if record.score is not None else f"FAIL ({record.error[:80]})"
    leader = f"best {best.score:.4f} {best.model}" if best else "no complete trial yet"
    ctx.progress(f"[tune] trial {record.number + 1}/{total} {record.model}: {score} "
                 f"in {record.seconds:.1f}s; {leader}")


def _best(trials: list[TrialRecord], direction: str) -> TrialRecord | None:
    done = [t for t in trials if t.score is not None]
    if not done:
        return None
    sign = 1.0 if direction == "maximize" else -1.0
    return max(done, key=lambda t: (sign * t.score, -t.number))  # type: ignore[operator]


def _stop_reason(state: RunState, trials: list[TrialRecord], plan: Plan) -> str:
    if next_family(plan.trials, trials) is None:
        return f"all {len(trials)} planned trials done"
    limit = state.get("time_limit")
    if limit is None:
        return ""
    reserve = max(FINISH_SHARE_OF_TIME * limit, FINISH_RESERVE_SECONDS)
    deadline = state["started_at"] + limit - reserve
    typical = float(np.median([t.seconds for t in trials]))
    if time.time() + typical > deadline:
        return f"time limit: stopped after {len(trials)} trials ({limit:.0f} s budget)"
    return ""


def _after_tune(state: RunState) -> str:
    return "finalize" if state.get("stop_reason") else "tune"
