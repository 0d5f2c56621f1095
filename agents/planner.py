"""The planner: which model families to try and how to split the trial budget among them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from hyperpilot.agents.runner import AgentSpec, Decision, decide
from hyperpilot.tools.types import DataProfile, TaskSpec
from hyperpilot.tools.zoo import ZOO, get_model


class FamilyPlan(BaseModel):
    name: str
    share: float = Field(1.0, gt=0)
    reason: str = ""


class PlanDraft(BaseModel):
    """What the LLM planner answers."""

    families: list[FamilyPlan]
    rationale: str = ""


class Plan(BaseModel):
    """A plan the tuner can execute: families, their trial counts, and why."""

    id: str
    families: list[FamilyPlan]
    trials: dict[str, int]
    rationale: str
    source: str = "rules"
    sources: list[str] = Field(default_factory=list)


PLANNER_AGENT = AgentSpec(name="planner", prompt="planner.j2", output_type=PlanDraft)
MIN_TRIALS_PER_FAMILY = 3


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


def prior_weight(name: str, profile: DataProfile) -> float:
    """How much of the budget a family deserves before any evidence, from the data's shape."""
    small = profile.n_rows < 1000
    wide = len(profile.features) > max(50, profile.n_rows // 5)
    categorical = len(profile.categorical_features) > len(profile.numeric_features)
    weights = {
        "hist_gb": 1.5 if small else 3.0,
        "random_forest": 2.5,
        "extra_trees": 2.0,
        "svm": 2.5 if small or wide else 1.0,
        "linear": 2.0 if wide or small else 1.0,
        "knn": 1.0 if not categorical else 0.5,
        "torch_mlp": 2.0,
    }
    if categorical:
        weights["hist_gb"] += 1.0
    return weights.get(name, 1.0)


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


def plan_rules(task: TaskSpec, profile: DataProfile, cuda: bool = False) -> Plan:
    """The rule-based planner: the best-weighted eligible families that the budget can afford."""
    names = eligible_families(task, profile, cuda)
    ranked = sorted(names, key=lambda n: -prior_weight(n, profile))
    affordable = max(1, task.budget.trials // MIN_TRIALS_PER_FAMILY)
    chosen = ranked[:affordable]
    families = [FamilyPlan(name=n, share=prior_weight(n, profile), reason=_reason(n, profile))
                for n in chosen]
    rationale = (f"{len(chosen)} of {len(names)} eligible families for {profile.n_rows} rows and "
                 f"{len(profile.features)} features, weighted by how each fares on data of this shape")
    return _finish(families, task, rationale, "rules")


def _reason(name: str, profile: DataProfile) -> str:
    entry = get_model(name)
    size = "small" if profile.n_rows < 1000 else "medium" if profile.n_rows < 50_000 else "large"
    return f"{entry.summary} (prior weight {prior_weight(name, profile):.1f} on {size} data)"


def _finish(families: list[FamilyPlan], task: TaskSpec, rationale: str, source: str) -> Plan:
    trials = allocate({f.name: f.share for f in families}, task.budget.trials)
    return Plan(id="plan-1", families=families, trials=trials, rationale=rationale, source=source)


def make_plan(task: TaskSpec, profile: DataProfile, llm: object | None,
              cuda: bool = False) -> Decision[Plan]:
    """The LLM planner when it names eligible families, else the rule-based planner."""
    eligible = eligible_families(task, profile, cuda)
    inputs = {
        "task_type": task.task_type, "target": task.target, "metric": task.metric,
        "direction": task.direction, "n_rows": profile.n_rows,
        "n_numeric": len(profile.numeric_features),
        "n_categorical": len(profile.categorical_features), "missing": profile.missing_fraction,
        "imbalance": profile.imbalance_ratio,
        "constraints": task.constraints.model_dump(exclude_defaults=True),
        "trials": task.budget.trials, "families": {n: ZOO[n].summary for n in eligible},
    }
    return decide(PLANNER_AGENT, inputs, llm,  # type: ignore[arg-type]
                  accept=lambda draft: _accept(draft, eligible, task),
                  rules=lambda: plan_rules(task, profile, cuda))


def _accept(draft: PlanDraft, eligible: list[str], task: TaskSpec) -> Plan:
    families: list[FamilyPlan] = []
    for family in draft.families:
        if family.name in eligible and family.name not in {f.name for f in families}:
            families.append(family)
    if not families:
        raise ValueError(f"no eligible family among {[f.name for f in draft.families]}")
    affordable = max(1, task.budget.trials // MIN_TRIALS_PER_FAMILY)
    families = sorted(families, key=lambda f: -f.share)[:affordable]
    return _finish(families, task, draft.rationale or "chosen by the LLM planner", "llm")
