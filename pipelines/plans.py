"""Several plans side by side: planning, the shared search spaces, and successive halving.

The plan node writes k plans; the schedule node sends one trial of every running plan to
``tune_plan`` branches at once (LangGraph ``Send``), and when a stage's trials are in, keeps
the plans with the best CV scores and gives them the next stage's budget.
"""

from __future__ import annotations

import os
import time
from math import ceil
from typing import Any

import numpy as np
from langgraph.types import Send

from hyperpilot.agents.model_agent import choose_space
from hyperpilot.agents.planner import Plan, halving_stages, make_plans
from hyperpilot.agents.tuner.agent import next_family, run_trial, warm_start
from hyperpilot.agents.tuner.halving import FoldHalving
from hyperpilot.pipelines.state import RunContext, RunState
from hyperpilot.tools.evaluate import baseline_score
from hyperpilot.tools.retrieval import Retrieved, retrieve
from hyperpilot.tools.space import SearchSpace
from hyperpilot.tools.types import DataProfile, TaskSpec, TrialRecord, TrialState

# Tuning stops this far before --time-limit, leaving time to refit and verify the winner:
# a share of the limit, but never less than a fixed reserve (a fresh-process reload alone
# takes a few seconds).
FINISH_SHARE_OF_TIME = 0.2
FINISH_RESERVE_SECONDS = 5.0
# Fold halving starts once a family's full trials take this long (median seconds).
HALVING_MIN_SECONDS = 2.0


def event(stage: str, decision: Any = None, message: str = "") -> dict[str, str]:
    """A line for the report: what a stage decided and who decided it."""
    if decision is None:
        return {"stage": stage, "source": "tools", "message": message}
    note = f" ({decision.note})" if decision.note else ""
    return {"stage": stage, "source": decision.source, "message": message + note}


def revision_budget(state: RunState) -> int:
    """Trials for the current revision: the whole budget first, half of it for a revision."""
    budget = int(state["trials_budget"])
    return budget if not state.get("revision") else max(3, budget // 2)


def plan_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    task = TaskSpec.model_validate(state["task"])
    profile = DataProfile.model_validate(state["profile"])
    revision = int(state.get("revision", 0))
    retrieved = retrieve(task, profile, ctx.cards, ctx.experience)
    if not revision:
        for past in retrieved.runs:
            ctx.progress(f"[plan] similar past run {past.run.run_id} ({past.similarity:.2f}): "
                         f"{past.run.best_model} won with CV {past.run.best_cv:.4f}")
    budget = revision_budget(state)
    scoped = task.model_copy(update={"budget": task.budget.model_copy(update={"trials": budget})})
    decision = make_plans(scoped, profile, ctx.llm, cuda=ctx.cuda, retrieved=retrieved,
                          k=ctx.plans, excluded=tuple(state.get("excluded", [])),
                          prefix="plan" if not revision else f"rev{revision}-plan")
    plans = decision.value
    stages = halving_stages(budget, len(plans))
    events = []
    for plan in plans:
        line = describe_plan(plan)
        ctx.progress(f"[plan] {plan.id}: {line} [{decision.source}]; cites "
                     f"{', '.join(plan.sources) or 'nothing'}")
        events.append(event("plan", decision, f"{plan.id}: {line}"))
    if len(plans) > 1:
        ctx.progress("[plan] successive halving: " + "; ".join(
            f"{n} plan(s) x {t} trials" for n, t in stages))
    return {"plans": [p.model_dump() for p in plans], "plan": plans[0].model_dump(),
            "active": [p.id for p in plans], "stages": [list(s) for s in stages], "stage": 0,
            "allot": {p.id: stages[0][1] for p in plans}, "stop_reason": "",
            "retrieved": retrieval_summary(retrieved), "events": events}


def describe_plan(plan: Plan) -> str:
    families = ", ".join(f"{n} x{k}" for n, k in plan.trials.items())
    steps = ", ".join(f"{k}={v}" for k, v in plan.steps.items())
    return families + (f" with {steps}" if steps else "")


def retrieval_summary(retrieved: Retrieved) -> dict[str, Any]:
    """What retrieval found, as checkpointable data (past winners' configs included)."""
    return {
        "query": retrieved.query,
        "cards": [{"id": c.card.id, "score": round(c.score, 3)} for c in retrieved.cards],
        "runs": [{"run_id": r.run.run_id, "similarity": round(r.similarity, 3),
                  "winner": r.run.best_model, "best_cv": r.run.best_cv,
                  "configs": {f: v.best_config for f, v in r.run.families.items()},
                  "top_configs": {f: v.starts() for f, v in r.run.families.items()}}
                 for r in retrieved.runs],
    }


def model_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Search spaces and warm starts per family, shared by every plan that uses it (each plan
    still searches in its own study)."""
    task = TaskSpec.model_validate(state["task"])
    profile = DataProfile.model_validate(state["profile"])
    families = list(dict.fromkeys(f for p in state["plans"] for f in p["trials"]))
    n_train = len(state["split"]["train"])
    spaces, warm, events = {}, {}, []
    for family in families:
        space = choose_space(family, task, profile, n_train, ctx.llm)
        # Each similar run's ranked configs for the family (its top few), most similar first.
        past = [r.get("top_configs", {}).get(family) or r["configs"][family]
                for r in state.get("retrieved", {}).get("runs", []) if family in r["configs"]]
        starts = warm_start(family, space.value, task, profile, ctx.llm, past=past)
        spaces[family] = space.value.model_dump()
        warm[family] = starts.value
        events += [event("model", space, f"{family}: {len(space.value.dims)} hyperparameters"),
                   event("tuner", starts, f"{family}: {len(starts.value)} warm-start configs")]
    ctx.training(state)  # built once here, before branches share it
    return {"spaces": spaces, "warm": warm, "events": events,
            "baseline_cv": _baseline(state, ctx, task)}


def _baseline(state: RunState, ctx: RunContext, task: TaskSpec) -> float:
    data = ctx.training(state)
    return baseline_score(data.X, data.y, data.folds, task.task_type, task.metric,
                          task.positive_class)


# --- the schedule --------------------------------------------------------------------------

def _plans(state: RunState) -> dict[str, Plan]:
    return {p["id"]: Plan.model_validate(p) for p in state["plans"]}


def _records(state: RunState, plan_ids: set[str] | None = None) -> list[TrialRecord]:
    return [TrialRecord.model_validate(t) for t in state.get("trials", [])
            if plan_ids is None or t.get("plan_id") in plan_ids]


def open_plans(state: RunState) -> list[str]:
    """Running plans with trials left in this stage (and a family left to try)."""
    plans = _plans(state)
    out = []
    for plan_id in state["active"]:
        own = _records(state, {plan_id})
        if len(own) < state["allot"][plan_id] and next_family(plans[plan_id].trials, own):
            out.append(plan_id)
    return out


def schedule_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Stop on time, or when a stage is done keep the best plans for the next one."""
    current = _records(state, set(_plans(state)))
    stop = time_stop(state, current)
    if stop:
        return {"stop_reason": stop}
    if open_plans(state):
        return {}
    stage, stages = int(state["stage"]), state["stages"]
    if stage + 1 >= len(stages):
        return {"stop_reason": f"all {len(current)} planned trials done"}
    task = TaskSpec.model_validate(state["task"])
    ranked = sorted(state["active"], key=lambda p: _plan_rank(state, p, task.direction))
    keep, trials_each = ranked[:stages[stage + 1][0]], stages[stage + 1][1]
    dropped = [p for p in ranked if p not in keep]
    line = (f"after stage {stage + 1}: kept {_scores(state, keep)}; stopped "
            f"{_scores(state, dropped)}")
    ctx.progress(f"[halving] {line}")
    allot = dict(state["allot"])
    for plan_id in keep:
        allot[plan_id] += trials_each
    return {"active": keep, "stage": stage + 1, "allot": allot,
            "events": [event("halving", None, line)]}


def plan_best(state: RunState, plan_id: str, direction: str) -> float | None:
    scores = [t.score for t in _records(state, {plan_id}) if t.score is not None]
    if not scores:
        return None
    return max(scores) if direction == "maximize" else min(scores)


def _plan_rank(state: RunState, plan_id: str, direction: str) -> tuple[int, float]:
    best = plan_best(state, plan_id, direction)
    if best is None:
        return (1, 0.0)
    return (0, -best if direction == "maximize" else best)


def _scores(state: RunState, plan_ids: list[str]) -> str:
    if not plan_ids:
        return "none"
    direction = state["task"]["direction"]
    parts = []
    for plan_id in plan_ids:
        best = plan_best(state, plan_id, direction)
        parts.append(f"{plan_id} ({'no score' if best is None else f'best CV {best:.4f}'})")
    return ", ".join(parts)


def time_stop(state: RunState, trials: list[TrialRecord]) -> str:
    """Why tuning must stop now to leave time to refit and verify, or ''."""
    limit = state.get("time_limit")
    if limit is None or not trials:
        return ""
    reserve = max(FINISH_SHARE_OF_TIME * limit, FINISH_RESERVE_SECONDS)
    deadline = state["started_at"] + limit - reserve
    # Running plans train at once, sharing the cores: a round takes longer than one trial.
    rounds = ceil(len(open_plans(state)) / (os.cpu_count() or 1))
    typical = float(np.median([t.seconds for t in trials])) * max(1, rounds)
    if time.time() + typical > deadline:
        return f"time limit: stopped after {len(trials)} trials ({limit:.0f} s budget)"
    return ""


def dispatch(state: RunState) -> list[Send] | str:
    """One ``tune_plan`` branch per running plan, run in parallel; or the next step."""
    if state.get("stop_reason"):
        return "finalize"
    running = open_plans(state)
    if not running:
        return "schedule"
    return [Send("tune_plan", {**state, "current_plan": plan_id, "slot": slot})
            for slot, plan_id in enumerate(running)]


def tune_plan_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """One trial of one plan, in that plan's own study."""
    task = TaskSpec.model_validate(state["task"])
    profile = DataProfile.model_validate(state["profile"])
    plan = _plans(state)[state["current_plan"]]
    history = _records(state)
    family = next_family(plan.trials, [t for t in history if t.plan_id == plan.id])
    if family is None:
        return {}
    space = SearchSpace.model_validate(state["spaces"][family])
    record = run_trial(family, space, state["warm"][family], history, task, profile,
                       ctx.training(state), state["seed"], plan.id, llm=ctx.llm,
                       llm_budget=ctx.llm_budget, number=len(history) + int(state["slot"]),
                       steps=plan.steps, halving=_halving(ctx, history, family, plan.id))
    total = revision_budget(state)
    if state.get("revision"):  # count the trials of earlier revisions too
        total += len(history) - len(_records(state, set(_plans(state))))
    _show_trial(ctx, record, history, total, task, plan.id, len(state["plans"]) > 1)
    return {"trials": [record.model_dump(mode="json")]}


def _halving(ctx: RunContext, history: list[TrialRecord], family: str,
             plan_id: str) -> FoldHalving | None:
    """Fold halving for a family whose full trials are slow enough for it to pay: on fast,
    small data it saves seconds and costs the search the complete trials it learns from."""
    full = [t.seconds for t in history if t.model == family and t.plan_id == plan_id
            and t.state == TrialState.COMPLETE]
    if not ctx.halving or not full or float(np.median(full)) < HALVING_MIN_SECONDS:
        return None
    return FoldHalving()


def _show_trial(ctx: RunContext, record: TrialRecord, history: list[TrialRecord], total: int,
                task: TaskSpec, plan_id: str, several: bool) -> None:
    best = _best(history + [record], task.direction)
    if record.state == TrialState.PRUNED:
        score = (f"stopped after {record.tuner.get('pruned_rung', '?')} fold(s) at "
                 f"{record.tuner.get('rung_score', float('nan')):.4f}, behind the family's best")
    else:
        score = f"{record.score:.4f}" if record.score is not None else f"FAIL ({record.error[:80]})"
    leader = f"best {best.score:.4f} {best.model}" if best else "no complete trial yet"
    where = f" [{plan_id}]" if several else ""
    ctx.progress(f"[tune] trial {record.number + 1}/{total}{where} {record.model}: {score} in "
                 f"{record.seconds:.1f}s; {leader}")


def _best(trials: list[TrialRecord], direction: str) -> TrialRecord | None:
    done = [t for t in trials if t.score is not None]
    if not done:
        return None
    sign = 1.0 if direction == "maximize" else -1.0
    return max(done, key=lambda t: (sign * t.score, -t.number))  # type: ignore[operator]
