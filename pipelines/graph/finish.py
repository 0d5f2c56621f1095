"""The last nodes of a run: refit the winner, measure and verify it, or revise the plan."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import pandas as pd

from hyperpilot.agents.tuner.agent import TrainingData
from hyperpilot.agents.verifier import measure, verify
from hyperpilot.pipelines.graph.final_model import (
    REFIT_MARGIN,
    FinalChoice,
    choose_final,
    fit_final,
    fits_feature_limit,
    single,
)
from hyperpilot.pipelines.graph.report import plan_summaries
from hyperpilot.pipelines.graph.schedule import final_refits
from hyperpilot.pipelines.graph.state import (
    RunContext,
    RunState,
    best_record,
    event,
    measurements_of,
    plans_of,
    profile_of,
    revision_of,
    task_of,
    trials_of,
)
from hyperpilot.tools.ensemble import model_features
from hyperpilot.tools.errors import HyperpilotError
from hyperpilot.tools.evaluate import score_pipeline
from hyperpilot.tools.evaluation import bounded_importance, holdout_predictions
from hyperpilot.tools.types import TrialRecord, TrialState, best_trial

# A revision starts only while at least this share of --time-limit is left.
REVISION_TIME_SHARE = 0.4
# Refitting stops this long before --time-limit: what verifying the model takes (holdout
# scores, the leak screen, latency timing, a fresh-process reload).
VERIFY_RESERVE_SECONDS = 8.0
# Once the model has been measured, verifying it takes about this many times as long as
# measuring did, and at least the floor (the fresh-process reload alone).
VERIFY_PER_MEASURE = 2.0
VERIFY_FLOOR_SECONDS = 3.0
# After verifying, drawing the plots and writing report.html take about this long.
REPORT_SECONDS = 1.5
# The report's permutation importances take at most this long, and at most this share of
# --time-limit, of the time the refit on every row leaves before verifying must start.
IMPORTANCE_SECONDS = 20.0
IMPORTANCE_TIME_SHARE = 0.05


def winner(trials: list[TrialRecord], direction: str, limit: float | None = None) -> TrialRecord:
    """The best complete trial; when every trial failed, the error says why the first did
    (or that the time limit ran out first)."""
    best = best_trial(trials, direction)
    if best is None and limit is not None and all(t.tuner.get("stopped") for t in trials):
        raise HyperpilotError(f"no trial finished within the time limit of {limit:g} s; "
                              "allow more time with --time-limit")
    if best is None:
        first = next((t.error for t in trials if t.state == TrialState.FAIL and t.error),
                     "no trial ran")
        raise HyperpilotError(f"all {len(trials)} trials failed; first reason: {first}")
    return best


def finalize_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    return finalize(state, ctx, finish_deadline(ctx.started(state), ctx.options.time_limit))


def finish_deadline(started: float, limit: float | None) -> float | None:
    """When refitting must be done (``time.time()`` based) to leave time to verify and
    report, for a run whose clock started at ``started``; None without a time limit."""
    return None if limit is None else started + limit - VERIFY_RESERVE_SECONDS - REPORT_SECONDS


def finalize(state: RunState, ctx: RunContext, deadline: float | None) -> dict[str, Any]:
    """Choose the final model (the best trial, or an ensemble of the best trials, with a
    tuned decision threshold or calibration where either helps on OOF predictions), refit
    it on every training row before ``deadline`` allows, save it and measure it."""
    task, profile, plans = task_of(state), profile_of(state), plans_of(state)
    # Only the current revision's plans were trained on the current features.
    trials = trials_of(state, set(plans))
    best = winner(trials, task.direction, ctx.options.time_limit)
    plan = plans[best.plan_id]
    data = ctx.training(state)
    # In time order the model must also be refit on the latest rows (the holdout): an
    # ensemble is worth it only if that refit fits too.
    refits = final_refits(ctx.options.refit_all) if task.time_column else 1
    choice = choose_final(trials, best, task, data, ctx.oof, deadline, refits)
    ctx.progress(f"[select] {choice.summary} with CV {task.metric} {choice.cv_score:.4f}; "
                 f"refitting on {len(state['split']['train'])} rows")
    fit_started = time.time()
    model = fit_final(choice, task, profile, plans, data, ctx.options.seed)
    if not fits_feature_limit(model, task, profile):
        ctx.progress(f"[select] the ensemble's members use more than "
                     f"{task.constraints.max_features} features together; keeping {best.model}")
        choice = single(best, task)
        fit_started = time.time()
        model = fit_final(choice, task, profile, plans, data, ctx.options.seed)
    fit_seconds = time.time() - fit_started
    ctx.folder.save_model(model)
    ctx.folder.save_holdout(ctx.holdout_rows(state))
    X_hold, y_hold = ctx.holdout(state)
    measuring = time.time()
    measured = measure(model, data, X_hold, y_hold, task, profile, ctx.folder.model,
                       ctx.options.seed)
    ctx.progress(f"[holdout] {task.metric} {measured.holdout_score:.4f} on {len(y_hold)} rows "
                 "never seen in tuning")
    # The refit on every row comes first (it makes the model better, the importances only
    # describe it); the importances then take what time is left, of the model measured here.
    late = refit_deadline(deadline, time.time() - measuring)
    shipped = refit_every_row(ctx, state, choice, data, X_hold, y_hold, fit_seconds, late)
    keep_evaluation(ctx, state, model, X_hold, y_hold, late)
    return {
        "shipped": shipped,
        "plan": plan.model_dump(),
        "best": {"model": best.model, "config": best.config, "cv_score": best.score,
                 "cv_std": float(np.std(best.fold_scores)) if best.fold_scores else 0.0,
                 "trial": best.number, "plan_id": best.plan_id,
                 "final": choice.model_dump()},
        "holdout": {"metric": task.metric, "score": measured.holdout_score,
                    "rows": measured.holdout_rows, "baseline": measured.baseline_holdout},
        "baseline_cv": measured.baseline_cv,
        "deployment": measured.deployment.model_dump(),
        "leak_screen": measured.leak_screen.model_dump(),
    }


def keep_evaluation(ctx: RunContext, state: RunState, model: Any, X_hold: pd.DataFrame,
                    y_hold: pd.Series, deadline: float | None) -> None:
    """Save the holdout predictions and permutation importances of the model the holdout
    scored, for the report's plots: after a refit on every row, the saved model has seen
    those rows, and its errors and importances on them would flatter it."""
    task, profile = task_of(state), profile_of(state)
    predictions, classes = holdout_predictions(model, X_hold, y_hold)
    budget = importance_budget(ctx.options.time_limit, deadline)
    found = bounded_importance(model, X_hold, y_hold, model_features(model, profile), task.metric,
                               task.positive_class, budget, ctx.options.seed)
    if found.table:
        top = ", ".join(f"{r['feature']} {r['importance']:.4f}" for r in found.table[:3])
        ctx.progress(f"[holdout] permutation importance ({found.note}): {top}")
    else:
        ctx.progress(f"[holdout] permutation importance {found.note}")
    ctx.folder.save_evaluation(predictions, {
        "model": "fitted on the training rows; scored on the holdout",
        "classes": classes, "positive_class": task.positive_class,
        "importance": found.model_dump()})


def importance_budget(limit: float | None, deadline: float | None) -> float:
    """The seconds the report's importances may take: ``IMPORTANCE_SECONDS``, and under a
    time limit its ``IMPORTANCE_TIME_SHARE`` and no more than is left before ``deadline``."""
    if limit is None or deadline is None:
        return IMPORTANCE_SECONDS
    return max(0.0, min(IMPORTANCE_SECONDS, IMPORTANCE_TIME_SHARE * limit, deadline - time.time()))


def refit_deadline(deadline: float | None, measure_seconds: float) -> float | None:
    """When the refit on every row must be done: the verification reserve is a guess made
    before anything was measured; by now measuring the model has taken ``measure_seconds``,
    and verifying it (the same holdout scoring and timing, plus a fresh-process reload) takes
    about twice that, at least ``VERIFY_FLOOR_SECONDS``. Never earlier than ``deadline``."""
    if deadline is None:
        return None
    verify = max(VERIFY_FLOOR_SECONDS, VERIFY_PER_MEASURE * measure_seconds)
    return max(deadline, deadline + VERIFY_RESERVE_SECONDS - verify)


def refit_every_row(ctx: RunContext, state: RunState, choice: FinalChoice, data: TrainingData,
                    X_hold: pd.DataFrame, y_hold: pd.Series, fit_seconds: float,
                    deadline: float | None) -> dict[str, Any]:
    """Refit the chosen model on the training and holdout rows together and save it over the
    measured one, once the holdout has scored that one: more rows (in a forecast, the latest
    ones) for the model that is used, the same pipeline and choices for the scores reported.
    Kept out with ``--no-refit-all``, or when the refit (the first one's time, scaled to the
    rows) would pass ``deadline``. Says how many rows the saved model saw, and its own score
    on the holdout rows (no longer unseen), which the reload check reproduces."""
    task, profile, plans = task_of(state), profile_of(state), plans_of(state)
    n_train, n_all = len(data.y), len(data.y) + len(y_hold)
    kept = {"rows": n_train, "holdout_included": False}
    if not ctx.options.refit_all:
        return kept | {"note": "fitted on the training rows only (--no-refit-all)"}
    expected = REFIT_MARGIN * fit_seconds * n_all / max(n_train, 1)
    if deadline is not None and time.time() + expected > deadline:
        note = (f"fitted on the training rows only: refitting on all {n_all} rows "
                f"(about {expected:.0f} s) would pass the time limit")
        ctx.progress(f"[select] {note}")
        return kept | {"note": note}
    every = dataclasses.replace(data, X=pd.concat([data.X, X_hold]),
                                y=pd.concat([data.y, y_hold]))
    model = fit_final(choice, task, profile, plans, every, ctx.options.seed)
    ctx.folder.save_model(model)
    score = score_pipeline(model, X_hold, y_hold, task.metric, task.positive_class)
    ctx.progress(f"[select] refit on all {n_all} rows, holdout included, for the saved model")
    return {"rows": n_all, "holdout_included": True, "holdout_score": score,
            "note": f"refit on all {n_all} rows (training and holdout) after the holdout "
                    "scored the model fitted on the training rows"}


def verify_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    verdict = verify(task_of(state), profile_of(state), trials_of(state), best_record(state),
                     measurements_of(state), ctx.train_rows(state), ctx.holdout_rows(state),
                     ctx.folder.model, ctx.folder.holdout,
                     excluded=state.get("excluded", []), llm=ctx.llm)
    checks = {"request": state["verification"]["request"],
              "execution": verdict.execution.model_dump(),
              "implementation": verdict.implementation.model_dump()}
    ok = all(c["status"] == "pass" for c in checks.values())
    for name, check in checks.items():
        ctx.progress(f"[verify] {name}: {check['status']}"
                     + ("" if check["status"] == "pass" else f" ({'; '.join(check['reasons'])})"))
    return {"verification": {**checks, "review": verdict.review.model_dump(),
                             "review_source": verdict.review_source, "predict": verdict.predict,
                             "constraints": [c.model_dump() for c in verdict.constraints],
                             "shift": [f.model_dump() for f in verdict.shift]},
            "status": "ok" if ok else "failed",
            "pending_revision": verdict.revision.model_dump() if verdict.revision else {}}


def after_verify(state: RunState, ctx: RunContext) -> str:
    """Back to the planner when a check failed for a reason a new plan can fix, while
    revisions and time are left."""
    if state.get("status") != "failed" or not state.get("pending_revision"):
        return "report"
    if int(state.get("revision", 0)) >= ctx.options.revisions:
        ctx.progress(f"[revise] no revision left (--revisions {ctx.options.revisions})")
        return "report"
    limit = ctx.options.time_limit
    if limit is not None and time.time() > ctx.started(state) + (1 - REVISION_TIME_SHARE) * limit:
        ctx.progress("[revise] too little time left for a revision")
        return "report"
    return "revise"


def revise_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Apply the change verification asked for and send the run back to the planner."""
    change = revision_of(state)
    revision = int(state.get("revision", 0)) + 1
    ctx.progress(f"[revise] revision {revision}: {change.reason} -> {change.changed}")
    record = {"revision": revision, "reason": change.reason, "changed": change.changed}
    return {"profile": change.apply(profile_of(state)).model_dump(), "revision": revision,
            "revisions": [*state.get("revisions", []), record],
            "past_plans": [*state.get("past_plans", []), *plan_summaries(state)],
            "excluded": [*state.get("excluded", []), *change.exclude],
            "pending_revision": {}, "stop_reason": "",
            "events": [event("revise", None, f"{change.reason}; {change.changed}")]}
