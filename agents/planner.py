"""The planner: which model families to try and how to split the trial budget among them,
from retrieved knowledge cards and similar past runs, citing what it used."""

from __future__ import annotations

import math
from math import ceil
from typing import Any

from pydantic import BaseModel, Field

from hyperpilot.agents.runner import AgentSpec, Decision, decide
from hyperpilot.tools.errors import TaskSpecError
from hyperpilot.tools.knowledge import shipped_cards
from hyperpilot.tools.retrieval import Retrieved, ScoredCard, retrieve
from hyperpilot.tools.types import DataProfile, TaskSpec
from hyperpilot.tools.zoo import ZOO


class FamilyPlan(BaseModel):
    name: str
    share: float = Field(1.0, gt=0, le=1e6, allow_inf_nan=False)
    reason: str = ""


class PlanDraft(BaseModel):
    """One plan as the LLM planner writes it."""

    families: list[FamilyPlan]
    rationale: str = ""
    cites: list[str] = Field(default_factory=list)
    steps: dict[str, Any] = Field(default_factory=dict)


class PlansDraft(BaseModel):
    """What the LLM planner answers when asked for several plans."""

    plans: list[PlanDraft]


class Plan(BaseModel):
    """A plan the tuner can execute: families, their trial counts, why, and what it cites."""

    id: str
    families: list[FamilyPlan]
    trials: dict[str, int]
    rationale: str
    source: str = "rules"
    sources: list[str] = Field(default_factory=list)
    # Preprocessing choices (a ``DataSteps`` dump); empty means the default steps.
    steps: dict[str, Any] = Field(default_factory=dict)


PLANS_AGENT = AgentSpec(name="planner", prompt="plans.j2", output_type=PlansDraft)
# A plan needs this many trials to be worth running beside others; fewer plans otherwise.
MIN_TRIALS_PER_PLAN = 6
MIN_TRIALS_PER_FAMILY = 3
BASE_WEIGHT = 1.5
# A situation card shapes the plan only when it scores at least this share of the best card.
APPLY_SHARE = 0.6
# How much a similar past run's winning family gains, times the runs' similarity.
PAST_WINNER_BOOST = 2.0
MIN_RUN_SIMILARITY = 0.5
# The family whose scikit-learn defaults every run evaluates, in its first plan.
BASELINE = "random_forest"


def eligible_families(task: TaskSpec, profile: DataProfile, cuda: bool = False) -> list[str]:
    """Zoo families that fit the task type, the data size and the constraints."""
    if task.constraints.interpretable:
        return ["linear"]
    names = []
    for name, entry in ZOO.items():
        if task.task_type not in entry.task_types:
            continue
        if entry.max_rows is not None and profile.n_rows > entry.max_rows:
            continue
        if name == "torch_mlp" and not (cuda or profile.n_rows >= 3000):
            continue  # on small data a network rarely beats trees and costs the most
        if name == "knn" and len(profile.features) > profile.n_rows:
            continue
        names.append(name)
    return names


def family_weights(eligible: list[str], retrieved: Retrieved) -> dict[str, tuple[float, list[str]]]:
    """Each family's weight from the cards and past runs, with the ids that moved it."""
    out = {name: (BASE_WEIGHT, []) for name in eligible}
    for name in eligible:
        card = retrieved.family_cards.get(name)
        if card is not None:
            out[name] = (out[name][0] + card.families.get(name, 0.0), [card.id])
    for scored in applied_cards(retrieved):
        strength = scored.relative
        for name, change in scored.card.families.items():
            if name in out and change:
                weight, cites = out[name]
                out[name] = (max(0.1, weight + change * strength), cites + [scored.card.id])
    for past in retrieved.runs:
        winner = past.run.best_model
        if past.similarity >= MIN_RUN_SIMILARITY and winner in out:
            weight, cites = out[winner]
            out[winner] = (weight + PAST_WINNER_BOOST * past.similarity, cites + [past.run.run_id])
    return out


def with_baseline(plan: Plan, eligible: list[str]) -> Plan:
    """The plan with a default random forest run first when it is eligible and missing, so
    no run ends below the model a user would have tried first; it takes one trial from the
    plan's largest family (none when no family has two). Rule-based first plans get it; an
    LLM's plans are taken as written."""
    if BASELINE not in eligible or BASELINE in plan.trials:
        return plan
    largest = max(plan.trials, key=plan.trials.__getitem__)
    if plan.trials[largest] <= 1:
        return plan  # no family can spare the trial: the budget is the user's
    trials = {BASELINE: 1, **plan.trials}
    trials[largest] -= 1
    family = FamilyPlan(name=BASELINE, share=min(f.share for f in plan.families),
                        reason="scikit-learn's default forest, always evaluated as the baseline")
    return plan.model_copy(update={"families": [family, *plan.families], "trials": trials})


def applied_cards(retrieved: Retrieved) -> list[ScoredCard]:
    """The retrieved cards strong enough to change the plan."""
    return [c for c in retrieved.cards if c.relative >= APPLY_SHARE]


def allocate(shares: dict[str, float], trials: int) -> dict[str, int]:
    """Split ``trials`` by relative ``shares`` (largest remainder), at least one each."""
    names = list(shares)
    total = sum(shares.values())
    raw = {n: trials * shares[n] / total for n in names}
    counts = {n: max(1, int(raw[n])) for n in names}
    order = sorted(names, key=lambda n: raw[n] - int(raw[n]), reverse=True)
    for name in order:
        if sum(counts.values()) >= trials:
            break
        counts[name] += 1
    while sum(counts.values()) > trials and max(counts.values()) > 1:
        counts[max(counts, key=counts.__getitem__)] -= 1
    return counts


def _reason(name: str, weighted: tuple[float, list[str]]) -> str:
    weight, cites = weighted
    return f"weight {weight:.2f} from {', '.join(cites) or 'the base weight'}"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _inputs(task: TaskSpec, profile: DataProfile, eligible: list[str],
            retrieved: Retrieved) -> dict[str, object]:
    cards = [*(retrieved.family_cards[n] for n in eligible if n in retrieved.family_cards),
             *(c.card for c in retrieved.cards)]
    return {
        "task_type": task.task_type, "target": task.target, "metric": task.metric,
        "direction": task.direction, "n_rows": profile.n_rows,
        "n_numeric": len(profile.numeric_features),
        "n_categorical": len(profile.categorical_features), "missing": profile.missing_fraction,
        "imbalance": profile.imbalance_ratio,
        "constraints": task.constraints.model_dump(exclude_defaults=True),
        "trials": task.budget.trials, "families": {n: ZOO[n].summary for n in eligible},
        "cards": [{"id": c.id, "title": c.title, "text": c.body[:400]} for c in cards],
        "past_runs": [{"id": r.run.run_id, "similarity": round(r.similarity, 2),
                       "task": r.run.text, "winner": r.run.best_model,
                       "best_cv": round(r.run.best_cv, 4)} for r in retrieved.runs],
    }


STEP_KEYS = {"max_features": int, "numeric": ("standard", "quantile"),
             "categorical": ("onehot", "ordinal")}
# A wide table gets a plan that keeps only the most informative share of its columns.
WIDE_FEATURES = 30


def halving_stages(budget: int, n_plans: int, eta: int = 2) -> list[tuple[int, int]]:
    """Successive halving across plans: ``(plans still running, trials each)`` per stage.

    Every stage gets an equal share of the budget; after each, the best ``1/eta`` of the
    plans (by best CV score) go on. The last stage (one plan) takes what rounding left over.
    """
    survivors = [n_plans]
    while survivors[-1] > 1:
        survivors.append(ceil(survivors[-1] / eta))
    share = budget // len(survivors)
    stages = [(n, max(1, share // n)) for n in survivors]
    left = budget - sum(n * t for n, t in stages)
    if left > 0:
        stages[-1] = (stages[-1][0], stages[-1][1] + left // stages[-1][0])
    return stages


def affordable_plans(budget: int, wanted: int) -> int:
    """How many plans a trial budget can run side by side (at least one)."""
    return max(1, min(wanted, budget // MIN_TRIALS_PER_PLAN))


def clean_steps(steps: dict[str, Any], profile: DataProfile) -> dict[str, Any]:
    """Known preprocessing choices with valid values; anything else is dropped."""
    out: dict[str, Any] = {}
    for key, allowed in STEP_KEYS.items():
        value = steps.get(key)
        if value is None:
            continue
        if allowed is int:  # a whole count of features, finite (an LLM may write 1e999)
            if (isinstance(value, int | float) and not isinstance(value, bool)
                    and math.isfinite(value) and 1 <= value < len(profile.features)):
                out[key] = int(value)
        elif value in allowed and value != allowed[0]:  # type: ignore[operator,index]
            out[key] = value
    return out


def base_steps(task: TaskSpec, profile: DataProfile) -> dict[str, Any]:
    """Steps every plan must take: a feature limit the task states."""
    limit = task.constraints.max_features
    return {"max_features": limit} if limit and len(profile.features) > limit else {}


def step_variants(profile: DataProfile) -> list[tuple[dict[str, Any], str]]:
    """Preprocessing alternatives worth a plan of their own on this data, with why."""
    out: list[tuple[dict[str, Any], str]] = []
    if profile.categorical_features:
        out.append(({"categorical": "ordinal"}, "ordinal-coded categoricals (compact for "
                                                 "tree ensembles, robust to high cardinality)"))
    if len(profile.features) > WIDE_FEATURES:
        keep = max(10, len(profile.features) // 3)
        out.append(({"max_features": keep}, f"wide data: only the {keep} most informative "
                                            "columns"))
    if profile.numeric_features:
        out.append(({"numeric": "quantile"}, "quantile-normal numeric features (tames skew and "
                                             "outliers for linear, kernel and neighbour models)"))
    return out


def plans_rules(task: TaskSpec, profile: DataProfile, cuda: bool = False,
                retrieved: Retrieved | None = None, k: int = 3, excluded: tuple[str, ...] = (),
                prefix: str = "plan") -> list[Plan]:
    """``k`` distinct plans from retrieval scores alone: the best-weighted families, the
    next ones, the best ones under alternative preprocessing, the best one alone."""
    retrieved = retrieved or retrieve(task, profile, shipped_cards(), None)
    eligible = [f for f in eligible_families(task, profile, cuda) if f not in excluded]
    weights = family_weights(eligible or eligible_families(task, profile, cuda), retrieved)
    ranked = sorted(weights, key=lambda n: -weights[n][0])
    cap = plan_capacity(task.budget.trials, k)
    per_plan = max(1, min(3, cap // MIN_TRIALS_PER_FAMILY))
    first = ranked[:per_plan]
    specs = [(first, {}, "the best-weighted families")]
    rest = [n for n in ranked if n not in first][:per_plan]
    if rest:
        specs.append((rest, {}, "the next-weighted families, as a second opinion"))
    specs += [(touched, steps, why) for steps, why in step_variants(profile)
              if (touched := _changed_by(steps, first, ranked))]
    specs.append((first[:1], {}, "the best-weighted family alone, with the whole plan budget"))
    plans: list[Plan] = []
    for names, steps, why in specs:
        families = [FamilyPlan(name=n, share=weights[n][0], reason=_reason(n, weights[n]))
                    for n in names]
        cites = _unique([c for n in names for c in weights[n][1]])
        plan = _build(f"{prefix}-{len(plans) + 1}", families, {**steps, **base_steps(task, profile)},
                      f"{why}; weighted by the cards retrieved for '{retrieved.query}'", "rules",
                      cites, cap)
        if not plans:
            plan = with_baseline(plan, eligible)
        if not any(_same(plan, p) for p in plans):
            plans.append(plan)
        if len(plans) == k:
            break
    return plans


def _changed_by(steps: dict[str, Any], first: list[str], ranked: list[str]) -> list[str]:
    """Two families for a plan trying ``steps``: the best-weighted ones, but only among the
    families the steps change. Tree families do not scale numeric features, so a quantile
    map leaves them as they are and a plan of theirs would repeat the first plan's trials."""
    if "numeric" not in steps:
        return first[:2]
    return [name for name in ranked if ZOO[name].scale][:2]


def plan_capacity(budget: int, k: int) -> int:
    """The most trials one plan can get: what the winner of the halving receives."""
    return sum(t for _, t in halving_stages(budget, k))


def _build(plan_id: str, families: list[FamilyPlan], steps: dict[str, Any], rationale: str,
           source: str, cites: list[str], capacity: int) -> Plan:
    trials = allocate({f.name: f.share for f in families}, capacity)
    return Plan(id=plan_id, families=families, trials=trials, rationale=rationale, source=source,
                sources=cites, steps=steps)


def _same(a: Plan, b: Plan) -> bool:
    return set(a.trials) == set(b.trials) and a.steps == b.steps


def make_plans(task: TaskSpec, profile: DataProfile, llm: object | None, cuda: bool = False,
               retrieved: Retrieved | None = None, k: int = 3, excluded: tuple[str, ...] = (),
               prefix: str = "plan") -> Decision[list[Plan]]:
    """``k`` plans (fewer when the budget cannot run them): the LLM planner's plans that name
    eligible families, topped up with rule-based plans; the rule-based plans otherwise."""
    retrieved = retrieved or retrieve(task, profile, shipped_cards(), None)
    k = affordable_plans(task.budget.trials, k)
    eligible = [f for f in eligible_families(task, profile, cuda) if f not in excluded]

    def rules() -> list[Plan]:
        return plans_rules(task, profile, cuda, retrieved, k, excluded, prefix)

    inputs = {**_inputs(task, profile, eligible, retrieved), "k": k,
              "trials_per_plan": plan_capacity(task.budget.trials, k),
              "required_steps": base_steps(task, profile)}
    return decide(PLANS_AGENT, inputs, llm,  # type: ignore[arg-type]
                  accept=lambda draft: _accept_plans(draft, eligible, task, profile, retrieved,
                                                     k, rules, prefix),
                  rules=rules)


def _accept_plans(draft: PlansDraft, eligible: list[str], task: TaskSpec, profile: DataProfile,
                  retrieved: Retrieved, k: int, rules: Any, prefix: str) -> list[Plan]:
    known = {c.card.id for c in retrieved.cards} | {c.id for c in retrieved.family_cards.values()} \
        | {r.run.run_id for r in retrieved.runs}
    capacity = plan_capacity(task.budget.trials, k)
    plans: list[Plan] = []
    for one in draft.plans:
        families = _unique_families([f for f in one.families if f.name in eligible])
        if not families:
            continue
        families = sorted(families, key=lambda f: -f.share)[:max(1, capacity // MIN_TRIALS_PER_FAMILY)]
        steps = {**clean_steps(one.steps, profile), **base_steps(task, profile)}
        plan = _build(f"{prefix}-{len(plans) + 1}", families, steps,
                      one.rationale or "written by the LLM planner", "llm",
                      _unique([c for c in one.cites if c in known]), capacity)
        if not any(_same(plan, p) for p in plans) and len(plans) < k:
            plans.append(plan)
    if not plans:
        raise ValueError(f"no plan names an eligible family (eligible: {', '.join(eligible)})")
    for extra in rules():
        if len(plans) >= k:
            break
        if not any(_same(extra, p) for p in plans):
            plans.append(extra.model_copy(update={"id": f"{prefix}-{len(plans) + 1}"}))
    return plans


def _unique_families(families: list[FamilyPlan]) -> list[FamilyPlan]:
    seen: dict[str, FamilyPlan] = {}
    for family in families:
        seen.setdefault(family.name, family)
    return list(seen.values())


def respread(plan: Plan, n: int, new_id: str | None = None) -> Plan:
    """The plan with ``n`` more trials over its families by share (the best-weighted first
    when few); with ``new_id``, a new plan of only those ``n`` trials."""
    ranked = sorted(plan.families, key=lambda f: -f.share)
    counts = {f.name: 0 if new_id else plan.trials.get(f.name, 0) for f in plan.families}
    total_share = sum(f.share for f in ranked)
    given = {f.name: int(n * f.share / total_share) for f in ranked}
    for i in range(n - sum(given.values())):
        given[ranked[i % len(ranked)].name] += 1
    trials = {name: counts[name] + given[name] for name in counts if counts[name] + given[name] > 0}
    return plan.model_copy(update={"id": new_id or plan.id, "trials": trials,
                                   "families": [f for f in plan.families if f.name in trials]})


def widen(plan: Plan, more: int, family: str | None, eligible: list[str]) -> Plan:
    """The plan with ``more`` trials: all for ``family`` (added when the plan lacks it; it
    must be eligible), else spread over the plan's families."""
    if family is None:
        return respread(plan, more)
    if family not in eligible:
        raise TaskSpecError(f"'{family}' cannot be used for this task; choose one of {eligible}")
    families, trials = list(plan.families), dict(plan.trials)
    if family not in trials:
        families.append(FamilyPlan(name=family, share=1.0, reason="asked for in a continuation"))
    trials[family] = trials.get(family, 0) + more
    return plan.model_copy(update={"families": families, "trials": trials})
