"""The last nodes of a run: refit the winner, verify it, and write the run folder."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier, DummyRegressor

from hyperpilot.agents.tuner.agent import build_model_pipeline
from hyperpilot.agents.verifier import check_execution, check_implementation, review
from hyperpilot.pipelines.report import write_run_folder
from hyperpilot.pipelines.state import RunContext, RunState
from hyperpilot.tools.artifacts import save_frame, save_model
from hyperpilot.tools.data import single_feature_leakage
from hyperpilot.tools.errors import HyperpilotError
from hyperpilot.tools.evaluate import score_pipeline
from hyperpilot.tools.experience import Experience, FamilyResult, meta_features, top_configs
from hyperpilot.tools.types import DataProfile, TaskSpec, TrialRecord, TrialState

log = logging.getLogger(__name__)


def best_trial(trials: list[TrialRecord], direction: str) -> TrialRecord:
    """The complete trial with the best mean CV score; the earlier one wins a tie."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.score is not None]
    if not done:
        first = next((t.error for t in trials if t.error), "no trial ran")
        raise HyperpilotError(f"all {len(trials)} trials failed; first reason: {first}")
    sign = 1.0 if direction == "maximize" else -1.0
    return max(done, key=lambda t: (sign * float(t.score), -t.number))  # type: ignore[arg-type]


def finalize_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    task = TaskSpec.model_validate(state["task"])
    profile = DataProfile.model_validate(state["profile"])
    trials = [TrialRecord.model_validate(t) for t in state["trials"]]
    # Only the current plan's trials were trained on the current features.
    best = best_trial([t for t in trials if t.plan_id == state["plan"]["id"]], task.direction)
    ctx.progress(f"[select] {best.model} (trial #{best.number}) with CV {task.metric} "
                 f"{best.score:.4f}; refitting on {len(state['split']['train'])} rows")
    data = ctx.training(state)
    pipeline = build_model_pipeline(best.model, best.config, task, profile, state["seed"])
    pipeline.fit(data.X, data.y)
    X_hold, y_hold = ctx.holdout(state)
    score = score_pipeline(pipeline, X_hold, y_hold, task.metric, task.positive_class)
    save_model(pipeline, ctx.out_dir / "model.joblib")
    save_frame(ctx.frame.iloc[state["split"]["holdout"]], ctx.out_dir / "holdout.parquet")
    ctx.progress(f"[holdout] {task.metric} {score:.4f} on {len(y_hold)} rows never seen in tuning")
    return {
        "best": {"model": best.model, "config": best.config, "cv_score": best.score,
                 "cv_std": float(np.std(best.fold_scores)) if best.fold_scores else 0.0,
                 "trial": best.number},
        "holdout": {"metric": task.metric, "score": score, "rows": len(y_hold),
                    "baseline": _baseline_holdout(ctx, state, task)},
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
    holdout = state["holdout"]
    train_rows = ctx.frame.iloc[state["split"]["train"]]
    leakage = single_feature_leakage(train_rows, task.target, profile.features, task.task_type,
                                     seed=state["seed"])
    execution = check_execution(task, trials, best, holdout["score"], state["baseline_cv"],
                                holdout["baseline"], leakage)
    implementation, measured = check_implementation(
        ctx.out_dir / "model.joblib", ctx.out_dir / "holdout.parquet", task, holdout["score"])
    notes = review(_facts(state, task, best, execution.status, implementation.status), ctx.llm)
    checks = {"request": state["verification"]["request"], "execution": execution.model_dump(),
              "implementation": implementation.model_dump()}
    ok = all(c["status"] == "pass" for c in checks.values())
    for name, check in checks.items():
        ctx.progress(f"[verify] {name}: {check['status']}"
                     + ("" if check["status"] == "pass" else f" ({'; '.join(check['reasons'])})"))
    return {"verification": {**checks, "review": notes.value.model_dump(),
                             "review_source": notes.source, "predict": measured},
            "status": "ok" if ok else "failed"}


def _facts(state: RunState, task: TaskSpec, best: TrialRecord, execution: str,
           implementation: str) -> dict[str, Any]:
    trials = state["trials"]
    return {
        "text": task.text, "task_type": task.task_type, "target": task.target,
        "metric": task.metric, "direction": task.direction, "model": best.model,
        "cv_score": float(best.score or 0.0), "holdout_score": state["holdout"]["score"],
        "baseline": state["baseline_cv"], "holdout_rows": state["holdout"]["rows"],
        "failed_trials": sum(t["state"] != "COMPLETE" for t in trials),
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
        failures=[t.error for t in trials if t.error][:20],
        seconds=time.time() - state["started_at"])
