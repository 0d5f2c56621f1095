"""What the run ships: the best trial, or a greedy ensemble of the best trials, with a
decision threshold or a probability calibration where either beats it on OOF predictions."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from hyperpilot.agents.planner import Plan
from hyperpilot.agents.tuner.agent import TrainingData, build_model_pipeline, one_fit_seconds
from hyperpilot.tools.ensemble import (
    CALIBRATION_METRICS,
    CalibratedModel,
    ThresholdClassifier,
    WeightedEnsemble,
    blend,
    choose_calibration,
    greedy_selection,
    model_features,
    tested_rows,
    thresholds_apply,
    tune_threshold,
)
from hyperpilot.tools.evaluate import is_better, oof_classes
from hyperpilot.tools.types import DataProfile, TaskSpec, TrialRecord, ranked_trials

# Ensemble candidates: the best complete trials of the current revision, across plans.
ENSEMBLE_CANDIDATES = 16
ENSEMBLE_ROUNDS = 20
# A refit takes about a fold's fit on all rows; this margin covers the spread.
REFIT_MARGIN = 1.3

OOFSource = Callable[[str, int], np.ndarray | None]


class Member(BaseModel):
    """A trial in the final model, with its weight (how often greedy selection picked it)."""

    trial: int
    plan_id: str
    model: str
    config: dict[str, Any]
    weight: int = 1
    cv_score: float


class FinalChoice(BaseModel):
    """The final model: its members, the decision threshold or calibration on top, and
    its CV estimate (an ensemble's and a threshold's are scored on OOF predictions)."""

    kind: Literal["single", "ensemble"]
    members: list[Member]
    base_cv: float
    cv_score: float
    threshold: float | None = None
    calibration: dict[str, Any] | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def summary(self) -> str:
        if self.kind == "single":
            head = f"{self.members[0].model} (trial #{self.members[0].trial}, {self.members[0].plan_id})"
        else:
            head = "ensemble of " + " + ".join(f"{m.weight}x {m.model} #{m.trial}"
                                               for m in self.members)
        if self.threshold is not None:
            head += f", decision threshold {self.threshold:.4f}"
        if self.calibration is not None:
            head += f", {self.calibration['method']} calibration"
        return head


def single(best: TrialRecord, task: TaskSpec, notes: Sequence[str] = ()) -> FinalChoice:
    """The best trial alone, as it was cross-validated."""
    member = Member(trial=best.number, plan_id=best.plan_id, model=best.model,
                    config=best.config, cv_score=float(best.score or 0.0))
    return FinalChoice(kind="single", members=[member], base_cv=member.cv_score,
                       cv_score=member.cv_score, notes=list(notes))


def choose_final(trials: Sequence[TrialRecord], best: TrialRecord, task: TaskSpec,
                 data: TrainingData, oof_of: OOFSource, deadline: float | None,
                 refits: float = 1) -> FinalChoice:
    """The ensemble when it beats ``best``'s CV score and its ``refits`` refits (in
    first-refit units) fit before ``deadline``, else ``best``; then a threshold or
    calibration where it helps on OOF."""
    choice, oof = _ensemble_or_single(trials, best, task, data, oof_of, deadline, refits)
    if oof is None:
        return choice
    oof, y, tests = tested_rows(oof, data.y, [test for _, test in data.folds])
    classes = oof_classes(data.y, task.task_type)
    if thresholds_apply(task.task_type, task.metric, classes):
        # Trials and blends were scored at their own tuned cut-off where it helps: the
        # cut-off ships when it beats the most-probable-class decision on the same rows.
        found = tune_threshold(oof, y, tests, task.metric, classes, task.positive_class)
        if found.helps:
            return choice.model_copy(update={"threshold": found.threshold,
                                             "cv_score": found.score})
        return choice
    if task.metric in CALIBRATION_METRICS and classes is not None:
        calibrated = choose_calibration(oof, y, tests, classes)
        if is_better(calibrated.score, min(calibrated.default_score, choice.cv_score),
                     "minimize"):
            return choice.model_copy(update={
                "calibration": {"method": calibrated.method, "params": calibrated.params},
                "cv_score": calibrated.score})
    return choice


def _ensemble_or_single(trials: Sequence[TrialRecord], best: TrialRecord, task: TaskSpec,
                        data: TrainingData, oof_of: OOFSource, deadline: float | None,
                        refits: float = 1) -> tuple[FinalChoice, np.ndarray | None]:
    tested = np.unique(np.concatenate([test for _, test in data.folds]))
    # Time-ordered folds leave the earliest rows untested (NaN): every tested row must be finite.
    candidates = [(t, o) for t in ranked_trials(trials, task.direction)[:ENSEMBLE_CANDIDATES]
                  if (o := oof_of(t.plan_id, t.number)) is not None
                  and np.isfinite(o[tested]).all()]
    # A model without predict_proba has one-hot OOF labels; the wrappers read it the same way.
    best_oof = next((o for t, o in candidates if t.number == best.number), None)
    reason = ensemble_refusal(task, len(candidates))
    if reason:
        return single(best, task, [reason]), best_oof
    tests = [test for _, test in data.folds]
    # Members join only while their refits fit in the time left.
    costs = [refits * refit_seconds(t, len(data.folds)) for t, _ in candidates]
    selecting = time.time()
    budget = math.inf if deadline is None else deadline - selecting
    picked = greedy_selection([o for _, o in candidates], data.y, tests, task.metric,
                              oof_classes(data.y, task.task_type), task.positive_class,
                              ENSEMBLE_ROUNDS, costs=costs, budget=budget,
                              task_type=task.task_type)
    if len(picked.members) < 2 or not is_better(picked.score, best.score, task.direction):
        if picked.priced_out:
            return single(best, task, ["no ensemble: none that beats the best single trial "
                                       f"can be refitted in the {max(budget, 0):.0f} s the time "
                                       "limit leaves"]), best_oof
        return single(best, task, [f"greedy ensemble ({picked.score:.4f} on OOF) does not beat "
                                   "the best single trial"]), best_oof
    chosen = [(candidates[i][0], picked.weights[i]) for i in picked.members]
    seconds = refits * sum(refit_seconds(t, len(data.folds)) for t, _ in chosen)
    # Judged as of the selection's start, as its budget was: the second or so that the
    # selection itself takes comes out of the verification reserve after ``deadline``.
    if deadline is not None and selecting + seconds > deadline:
        return single(best, task, [f"ensemble dropped: refitting its {len(chosen)} members "
                                   f"(about {seconds:.0f} s) would pass the time limit"]), best_oof
    members = [Member(trial=t.number, plan_id=t.plan_id, model=t.model, config=t.config,
                      weight=w, cv_score=float(t.score or 0.0)) for t, w in chosen]
    oof = blend([candidates[i][1] for i in picked.members],
                [picked.weights[i] for i in picked.members])
    return FinalChoice(kind="ensemble", members=members, base_cv=picked.score,
                       cv_score=picked.score), oof


def ensemble_refusal(task: TaskSpec, n_candidates: int) -> str:
    """Why no ensemble may be built for ``task``, or ''."""
    limits = task.constraints
    if limits.interpretable:
        return "no ensemble: the task asks for an interpretable model"
    if limits.max_latency_ms is not None or limits.max_model_mb is not None:
        return "no ensemble: the task limits latency or size, which an ensemble multiplies"
    if n_candidates < 2:
        return "no ensemble: fewer than two trials with out-of-fold predictions"
    return ""


def refit_seconds(trial: TrialRecord, n_folds: int) -> float:
    """About how long refitting ``trial`` on every training row takes, with a margin."""
    return REFIT_MARGIN * one_fit_seconds(trial, n_folds)


def fit_final(choice: FinalChoice, task: TaskSpec, profile: DataProfile, plans: dict[str, Plan],
              data: TrainingData, seed: int) -> Any:
    """The final model, fitted on every training row."""
    pipelines = [build_model_pipeline(m.model, m.config, task, profile, seed,
                                      plans[m.plan_id].steps) for m in choice.members]
    model: Any = pipelines[0] if choice.kind == "single" else WeightedEnsemble(
        pipelines, [m.weight for m in choice.members], task.task_type)
    if choice.threshold is not None:
        model = ThresholdClassifier(model, choice.threshold, task.positive_class)
    if choice.calibration is not None:
        model = CalibratedModel(model, choice.calibration["method"],
                                choice.calibration["params"])
    return model.fit(data.X, data.y)


def fits_feature_limit(model: Any, task: TaskSpec, profile: DataProfile) -> bool:
    """Whether the members of an ensemble use at most ``max_features`` columns together
    (each plan's pipeline already keeps at most that many)."""
    limit = task.constraints.max_features
    return limit is None or len(model_features(model, profile)) <= limit
