"""Planning: the planner's k plans (from retrieved cards and past runs), then each planned
family's search space and warm starts."""

from __future__ import annotations

from typing import Any

from hyperpilot.agents.planner import Plan, halving_stages, make_plans
from hyperpilot.agents.tuner.agent import family_searches
from hyperpilot.pipelines.graph.state import RunContext, RunState, event, profile_of, task_of
from hyperpilot.tools.retrieval import retrieve


def revision_budget(state: RunState) -> int:
    """Trials for the current revision: the whole budget first, half of it for a revision."""
    budget = int(state["trials_budget"])
    return budget if not state.get("revision") else max(3, budget // 2)


def plan_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    task, profile = task_of(state), profile_of(state)
    revision = int(state.get("revision", 0))
    retrieved = retrieve(task, profile, ctx.cards, ctx.experience)
    if not revision:
        for past in retrieved.runs:
            ctx.progress(f"[plan] similar past run {past.run.run_id} ({past.similarity:.2f}): "
                         f"{past.run.best_model} won with CV {past.run.best_cv:.4f}")
    budget = revision_budget(state)
    scoped = task.model_copy(update={"budget": task.budget.model_copy(update={"trials": budget})})
    decision = make_plans(scoped, profile, ctx.llm, cuda=ctx.cuda, retrieved=retrieved,
                          k=ctx.options.plans, excluded=tuple(state.get("excluded", [])),
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
            "retrieved": retrieved.summary(), "events": events}


def describe_plan(plan: Plan) -> str:
    families = ", ".join(f"{n} x{k}" for n, k in plan.trials.items())
    steps = ", ".join(f"{k}={v}" for k, v in plan.steps.items())
    return families + (f" with {steps}" if steps else "")


def model_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Search spaces and warm starts per family, shared by every plan that uses it (each plan
    still searches in its own study)."""
    families = list(dict.fromkeys(f for p in state["plans"] for f in p["trials"]))
    searches = family_searches(families, task_of(state), profile_of(state),
                               len(state["split"]["train"]), ctx.llm,
                               state.get("retrieved", {}).get("runs", []))
    ctx.training(state)  # built once here, before branches share it
    events = []
    for family, search in searches.items():
        events += [event("model", search.space,
                         f"{family}: {len(search.space.value.dims)} hyperparameters"),
                   event("tuner", search.warm, f"{family}: {len(search.warm.value)} warm-start configs")]
    return {"spaces": {f: s.space.value.model_dump() for f, s in searches.items()},
            "warm": {f: s.warm.value for f, s in searches.items()}, "events": events}
