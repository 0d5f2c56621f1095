"""The last nodes of a run: refit the winner, verify it, and write the run folder."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier, DummyRegressor

from hyperpilot.agents.tuner.agent import build_model_pipeline
from hyperpilot.agents.verifier import (
    Revision,
    check_execution,
    check_implementation,
    propose_revision,
    review,
)
from hyperpilot.pipelines.plans import event
from hyperpilot.pipelines.report import plan_summaries, write_run_folder
from hyperpilot.pipelines.state import RunContext, RunState
from hyperpilot.tools.artifacts import save_frame, save_model
from hyperpilot.tools.constraints import check_constraints, measure_deployment
from hyperpilot.tools.data import leakage_flags, single_feature_scores
from hyperpilot.tools.errors import HyperpilotError
from hyperpilot.tools.evaluate import score_pipeline
from hyperpilot.tools.experience import Experience, FamilyResult, meta_features, top_configs
from hyperpilot.tools.importance import SUSPECT_SCORE, dominant_leaks
from hyperpilot.tools.preprocess import features_used
from hyperpilot.tools.shift import distribution_shift
from hyperpilot.tools.types import DataProfile, DeploymentFacts, TaskSpec, TrialRecord, TrialState

log = logging.getLogger(__name__)
# A revision starts only while at least this share of --time-limit is left.
REVISION_TIME_SHARE = 0.4


def best_trial(trials: list[TrialRecord], direction: str) -> TrialRecord:
    """The complete trial with the best mean CV score; the earlier one wins a tie."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.score is not None]
    if not done:
        first = next((t.error for t in trials if t.state == TrialState.FAIL and t.error),
                     "no trial ran")
        raise HyperpilotError(f"all {len(trials)} trials failed; first reason: {first}")
    sign = 1.0 if direction == "maximize" else -1.0
    return max(done, key=lambda t: (sign * float(t.score), -t.number))  # type: ignore[arg-type]


def finalize_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    task = TaskSpec.model_validate(state["task"])
    profile = DataProfile.model_validate(state["profile"])
    plans = {p["id"]: p for p in state.get("plans") or [state["plan"]]}
    trials = [TrialRecord.model_validate(t) for t in state["trials"]]
    # Only the current revision's plans were trained on the current features.
    best = best_trial([t for t in trials if t.plan_id in plans], task.direction)
    plan = plans[best.plan_id]
    ctx.progress(f"[select] {best.model} (trial #{best.number}, {best.plan_id}) with CV "
                 f"{task.metric} {best.score:.4f}; refitting on {len(state['split']['train'])} rows")
    data = ctx.training(state)
    pipeline = build_model_pipeline(best.model, best.config, task, profile, state["seed"],
                                    plan.get("steps"))
    pipeline.fit(data.X, data.y)
    X_hold, y_hold = ctx.holdout(state)
    score = score_pipeline(pipeline, X_hold, y_hold, task.metric, task.positive_class)
    save_model(pipeline, ctx.out_dir / "model.joblib")
    save_frame(ctx.frame.iloc[state["split"]["holdout"]], ctx.out_dir / "holdout.parquet")
    ctx.progress(f"[holdout] {task.metric} {score:.4f} on {len(y_hold)} rows never seen in tuning")
    facts = measure_deployment(pipeline, X_hold, ctx.out_dir / "model.joblib", profile)
    baseline = _baseline_holdout(ctx, state, task)
    gain = (score - baseline) * (1 if task.direction == "maximize" else -1)
    # One single-feature screen serves both leak checks: the 0.99 flags in verify and the
    # suspects a dominance test looks at here.
    scores = single_feature_scores(ctx.frame.iloc[state["split"]["train"]], task.target,
                                   features_used(pipeline, profile), task.task_type,
                                   seed=state["seed"])
    leaks = dominant_leaks(pipeline, X_hold, y_hold,
                           leakage_flags(scores, task.task_type, SUSPECT_SCORE), task.metric,
                           gain, task.positive_class, state["seed"])
    return {
        "plan": plan,
        "best": {"model": best.model, "config": best.config, "cv_score": best.score,
                 "cv_std": float(np.std(best.fold_scores)) if best.fold_scores else 0.0,
                 "trial": best.number, "plan_id": best.plan_id},
        "holdout": {"metric": task.metric, "score": score, "rows": len(y_hold),
                    "baseline": baseline},
        "deployment": facts.model_dump(),
        "leak_screen": {"scores": scores, "suspected": leaks},
    }


def _baseline_holdout(ctx: RunContext, state: RunState, task: TaskSpec) -> float:
    data = ctx.training(state)
    dummy = DummyRegressor() if task.task_type == "regression" else DummyClassifier(strategy="prior")
    dummy.fit(data.X, data.y)
    X_hold, y_hold = ctx.holdout(state)
    return score_pipeline(dummy, X_hold, y_hold, task.metric, task.positive_class)


def verify_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    task = TaskSpec.model_validate(state["task"])
    profile = DataProfile.model_validate(state["profile"])
    trials = [TrialRecord.model_validate(t) for t in state["trials"]]
    best = next(t for t in trials if t.number == state["best"]["trial"])
    holdout, deployment = state["holdout"], state["deployment"]
    train_rows = ctx.frame.iloc[state["split"]["train"]]
    screen = state["leak_screen"]
    leakage = {**leakage_flags(screen["scores"], task.task_type), **screen["suspected"]}
    shift = distribution_shift(train_rows, ctx.frame.iloc[state["split"]["holdout"]], profile)
    constraints = check_constraints(DeploymentFacts.model_validate(deployment), task.constraints)
    execution = check_execution(task, trials, best, holdout["score"], state["baseline_cv"],
                                holdout["baseline"], leakage, shift, constraints)
    implementation, measured = check_implementation(
        ctx.out_dir / "model.joblib", ctx.out_dir / "holdout.parquet", task, holdout["score"])
    notes = review(_facts(state, task, best, execution.status, implementation.status), ctx.llm)
    checks = {"request": state["verification"]["request"], "execution": execution.model_dump(),
              "implementation": implementation.model_dump()}
    ok = all(c["status"] == "pass" for c in checks.values())
    for name, check in checks.items():
        ctx.progress(f"[verify] {name}: {check['status']}"
                     + ("" if check["status"] == "pass" else f" ({'; '.join(check['reasons'])})"))
    change = propose_revision(leakage, constraints, state["best"]["model"],
                              state.get("excluded", []), profile) if not ok else None
    return {"verification": {**checks, "review": notes.value.model_dump(),
                             "review_source": notes.source, "predict": measured,
                             "constraints": [c.model_dump() for c in constraints],
                             "shift": [f.model_dump() for f in shift]},
            "status": "ok" if ok else "failed",
            "pending_revision": change.model_dump() if change else {}}


def after_verify(state: RunState, ctx: RunContext) -> str:
    """Back to the planner when a check failed for a reason a new plan can fix, while
    revisions and time are left."""
    if state.get("status") != "failed" or not state.get("pending_revision"):
        return "report"
    if int(state.get("revision", 0)) >= ctx.revisions:
        ctx.progress(f"[revise] no revision left (--revisions {ctx.revisions})")
        return "report"
    limit = state.get("time_limit")
    if limit is not None and time.time() > state["started_at"] + (1 - REVISION_TIME_SHARE) * limit:
        ctx.progress("[revise] too little time left for a revision")
        return "report"
    return "revise"


def revise_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Apply the change verification asked for and send the run back to the planner."""
    change = Revision.model_validate(state["pending_revision"])
    profile = DataProfile.model_validate(state["profile"])
    if change.drop:
        leakage = {**profile.leakage, **{f: change.reason for f in change.drop}}
        profile = profile.model_copy(update={
            "features": [f for f in profile.features if f not in change.drop],
            "leakage": leakage})
    revision = int(state.get("revision", 0)) + 1
    ctx.progress(f"[revise] revision {revision}: {change.reason} -> {change.changed}")
    record = {"revision": revision, "reason": change.reason, "changed": change.changed}
    return {"profile": profile.model_dump(), "revision": revision,
            "revisions": [*state.get("revisions", []), record],
            "past_plans": [*state.get("past_plans", []), *plan_summaries(state)],
            "excluded": [*state.get("excluded", []), *change.exclude],
            "pending_revision": {}, "stop_reason": "",
            "events": [event("revise", None, f"{change.reason}; {change.changed}")]}


def _facts(state: RunState, task: TaskSpec, best: TrialRecord, execution: str,
           implementation: str) -> dict[str, Any]:
    trials = state["trials"]
    return {
        "text": task.text, "task_type": task.task_type, "target": task.target,
        "metric": task.metric, "direction": task.direction, "model": best.model,
        "cv_score": float(best.score or 0.0), "holdout_score": state["holdout"]["score"],
        "baseline": state["baseline_cv"], "holdout_rows": state["holdout"]["rows"],
        "failed_trials": sum(t["state"] == "FAIL" for t in trials),
        "checks": {"execution": execution, "implementation": implementation},
    }


def report_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    write_run_folder(state, ctx)
    if state.get("status") == "rejected":
        return {}
    if ctx.experience is not None:
        ctx.experience.add(experience_record(state))
        ctx.progress(f"[experience] run {state['run_id']} saved to {ctx.experience.path}")
    return {"status": state.get("status", "ok")}


def experience_record(state: RunState) -> Experience:
    """What the next run's planner should know about this one."""
    task = TaskSpec.model_validate(state["task"])
    trials = [TrialRecord.model_validate(t) for t in state["trials"]]
    families: dict[str, FamilyResult] = {}
    for family in dict.fromkeys(t.model for t in trials):
        own = [t for t in trials if t.model == family]
        try:
            best = best_trial(own, task.direction)
        except HyperpilotError:
            continue
        families[family] = FamilyResult(best_config=best.config, best_cv=float(best.score or 0.0),
                                        trials=len(own),
                                        top_configs=top_configs(own, task.direction))
    return Experience(
        run_id=state["run_id"], text=task.text, task_type=task.task_type, metric=task.metric,
        direction=task.direction,
        meta=meta_features(DataProfile.model_validate(state["profile"])),
        best_model=state["best"]["model"], best_cv=float(state["best"]["cv_score"]),
        holdout=state["holdout"]["score"], families=families,
        failures=[t.error for t in trials if t.state == TrialState.FAIL and t.error][:20],
        seconds=time.time() - state["started_at"])
