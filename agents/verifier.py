"""The verifier: request, execution and implementation checks, each measured, never guessed.

The LLM policy only writes a review of the measured facts (concerns and a summary); the
pass/fail of every check comes from code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, Field

from hyperpilot.agents.request import RequestDraft
from hyperpilot.agents.runner import AgentSpec, Decision, decide
from hyperpilot.agents.tuner.agent import TrainingData
from hyperpilot.tools.artifacts import reload_and_score
from hyperpilot.tools.constraints import check_constraints, measure_deployment
from hyperpilot.tools.data import leakage_flags, single_feature_scores
from hyperpilot.tools.ensemble import model_features
from hyperpilot.tools.errors import HyperpilotError
from hyperpilot.tools.evaluate import (
    baseline_holdout,
    baseline_score,
    get_metric,
    is_better,
    score_pipeline,
)
from hyperpilot.tools.importance import SUSPECT_SCORE, dominant_leaks
from hyperpilot.tools.shift import distribution_shift
from hyperpilot.tools.types import (
    ConstraintResult,
    DataProfile,
    DeploymentFacts,
    ShiftFinding,
    TaskSpec,
    TrialRecord,
    TrialState,
)

# The reloaded model must reproduce the in-process holdout score this closely.
REPRODUCE_TOLERANCE = 1e-9


class CheckResult(BaseModel):
    status: Literal["pass", "fail"]
    reasons: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, failures: list[str], passes: list[str]) -> CheckResult:
        return cls(status="fail", reasons=failures) if failures else cls(status="pass",
                                                                          reasons=passes)


class Review(BaseModel):
    """Concerns about the measured facts, for the report."""

    concerns: list[str] = Field(default_factory=list)
    summary: str = ""


VERIFIER_AGENT = AgentSpec(name="verifier", prompt="verifier.j2", output_type=Review)


def check_request(draft: RequestDraft, problems: list[str], task: TaskSpec | None) -> CheckResult:
    """Is the task ML, is the target present, does the metric fit the task type?"""
    failures = list(problems)
    if not draft.is_ml:
        failures.insert(0, "the task does not ask to predict, classify or estimate anything")
    passes = []
    if task is not None:
        passes = [f"target '{task.target}' is present", f"{task.task_type} task",
                  f"metric {task.metric} fits a {task.task_type} task",
                  *measurable_constraints(task)]
    elif not failures:
        failures.append("the task could not be resolved against the data")
    return CheckResult.of(failures, passes)


def measurable_constraints(task: TaskSpec) -> list[str]:
    """How each constraint the task states will be measured (every one is measurable)."""
    limits = task.constraints
    lines = []
    if limits.max_latency_ms is not None:
        lines.append(f"latency limit {limits.max_latency_ms:g} ms per row: measured as the saved "
                     "model's batch prediction time per row (single-row time reported too)")
    if limits.max_features is not None:
        lines.append(f"feature limit {limits.max_features}: every plan keeps at most that many "
                     "input columns; the saved model's inputs are counted")
    if limits.max_model_mb is not None:
        lines.append(f"size limit {limits.max_model_mb:g} MB: measured on model.joblib")
    if limits.interpretable:
        lines.append("interpretable: only linear models are planned; the saved estimator is checked")
    return lines


def check_execution(task: TaskSpec, trials: list[TrialRecord], best: TrialRecord,
                    holdout_score: float, baseline_cv: float, baseline_holdout: float,
                    leakage: dict[str, str], shift: Sequence[ShiftFinding] = (),
                    constraints: Sequence[ConstraintResult] = ()) -> CheckResult:
    """Finite in-range scores, better than the trivial baseline, no leaking feature used,
    compatible train and holdout distributions, and every stated constraint met (measured)."""
    metric = get_metric(task.metric)
    failures: list[str] = []
    for name, value in (("best CV score", best.score), ("holdout score", holdout_score)):
        if value is None or not math.isfinite(value) or not metric.low <= value <= metric.high:
            failures.append(f"{name} {value} is not a finite {metric.name} in "
                            f"[{metric.low}, {metric.high}]")
    if not failures:
        failures += _baseline_failures(task, best.score or 0.0, holdout_score, baseline_cv,
                                       baseline_holdout)
    failures += [f"feature '{f}' leaks the target: {why}" for f, why in leakage.items()]
    # In a forecast the holdout is the latest stretch: drift from the past is what the model
    # has to face, not a sign of a broken split.
    drift = [f for f in shift if f.severe]
    if task.time_column is None:
        failures += [f"train and holdout differ: {f.line}" for f in drift]
    failures += [f"constraint not met: {c.line}" for c in constraints if not c.ok]
    complete = sum(r.state == TrialState.COMPLETE for r in trials)
    passes = [f"{complete} of {len(trials)} trials completed with finite scores",
              f"best CV {metric.name} {best.score:.4f} beats the trivial baseline {baseline_cv:.4f}",
              f"holdout {metric.name} {holdout_score:.4f} beats the baseline {baseline_holdout:.4f}",
              "no feature alone predicts the target, and the model leans on none that nearly does",
              (f"holdout is the latest rows by '{task.time_column}'; {len(drift)} of "
               f"{len(shift)} columns drift from the past (expected in a forecast)"
               if task.time_column is not None else
               f"train and holdout distributions are compatible ({len(shift)} columns compared)"),
              *[c.line for c in constraints]]
    return CheckResult.of(failures, passes)


class Revision(BaseModel):
    """What a failed verification asks the planner to change, and why."""

    reason: str
    changed: str
    drop: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)

    def apply(self, profile: DataProfile) -> DataProfile:
        """The profile with the dropped features moved to its leakage, with the reason."""
        if not self.drop:
            return profile
        return profile.model_copy(update={
            "features": [f for f in profile.features if f not in self.drop],
            "leakage": {**profile.leakage, **{f: self.reason for f in self.drop}}})


def propose_revision(leakage: dict[str, str], constraints: Sequence[ConstraintResult],
                     winner: str, excluded: Sequence[str], profile: DataProfile
                     ) -> Revision | None:
    """The change a new plan can make to fix a failed check, or None when no plan can
    (a model no better than the baseline, or a reload that does not reproduce its score,
    is reported, not re-planned).

    Leaking features are dropped; a latency or size limit the winner missed rules its
    family out, so the planner picks cheaper ones.
    """
    if leakage:
        names = sorted(leakage)
        return Revision(reason=f"feature(s) {', '.join(names)} leak the target",
                        changed=f"dropped {', '.join(names)} and planned again", drop=names)
    missed = [c for c in constraints if not c.ok and c.name in ("max_latency_ms", "max_model_mb")]
    if missed and winner not in excluded:
        left = len(profile.features)
        return Revision(reason="; ".join(c.line for c in missed),
                        changed=f"ruled out {winner} and planned again with the other families "
                                f"({left} features)", exclude=[winner])
    return None


def _baseline_failures(task: TaskSpec, cv: float, holdout: float, base_cv: float,
                       base_holdout: float) -> list[str]:
    out = []
    if not is_better(cv, base_cv, task.direction):
        out.append(f"best CV score {cv:.4f} is no better than the trivial baseline {base_cv:.4f}")
    if not is_better(holdout, base_holdout, task.direction):
        out.append(f"holdout score {holdout:.4f} is no better than the trivial baseline "
                   f"{base_holdout:.4f}")
    return out


def check_implementation(model_path: Path, rows_path: Path, task: TaskSpec,
                         expected: float, *, refit: bool = False
                         ) -> tuple[CheckResult, dict[str, Any]]:
    """Reload the saved model in a fresh process, predict raw holdout rows, reproduce the score
    (``refit``: the saved model was refit on those rows too, so the score is its own)."""
    try:
        report = reload_and_score(model_path, rows_path, task.target, task.metric,
                                  task.positive_class)
    except HyperpilotError as err:
        return CheckResult(status="fail", reasons=[str(err)]), {}
    score = float(report["score"])
    if abs(score - expected) > REPRODUCE_TOLERANCE:
        reason = f"reloaded model scores {score:.6f} on the holdout, not {expected:.6f}"
        return CheckResult(status="fail", reasons=[reason]), report
    per_row_ms = 1000 * report["seconds"] / max(report["rows"], 1)
    passes = [f"model.joblib reloads in a fresh process and predicts {report['rows']} raw rows",
              (f"it reproduces its own {task.metric} {score:.4f} on the holdout rows, which it "
               "was refit on after they scored the model fitted without them") if refit else
              f"it reproduces the holdout {task.metric} {score:.4f}",
              f"prediction took {per_row_ms:.3f} ms per row in a batch"]
    return CheckResult(status="pass", reasons=passes), report


def review(facts: dict[str, Any], llm: object | None) -> Decision[Review]:
    """Concerns about the run: the LLM's reading of the facts, else rules over them."""
    return decide(VERIFIER_AGENT, facts, llm,  # type: ignore[arg-type]
                  accept=lambda answer: answer, rules=lambda: review_rules(facts))


def review_rules(facts: dict[str, Any]) -> Review:
    """The rule-based review: flags a CV/holdout gap, failures, a thin margin, a tiny holdout."""
    concerns = []
    gap = facts["cv_score"] - facts["holdout_score"]
    if facts["direction"] == "minimize":
        gap = -gap
    if gap > 0.05 * max(abs(facts["cv_score"]), 1e-9):
        concerns.append(f"holdout is {abs(gap):.4f} worse than CV: the CV estimate may be optimistic")
    if facts["failed_trials"]:
        concerns.append(f"{facts['failed_trials']} trial(s) failed; see trials.jsonl for reasons")
    if facts["holdout_rows"] < 100:
        concerns.append(f"the holdout has only {facts['holdout_rows']} rows, so its score is noisy")
    margin = abs(facts["cv_score"] - facts["baseline"])
    if margin < 0.02:
        concerns.append(f"the winner beats the trivial baseline by only {margin:.4f}")
    summary = (f"{facts['model']} won with CV {facts['metric']} {facts['cv_score']:.4f} and "
               f"holdout {facts['holdout_score']:.4f} against a baseline of {facts['baseline']:.4f}.")
    return Review(concerns=concerns, summary=summary)


# --- what the verifier measures on the refit winner, once ------------------------------

class LeakScreen(BaseModel):
    """The single-feature scores of the features the winner uses, and those it leans on."""

    scores: dict[str, float] = Field(default_factory=dict)
    suspected: dict[str, str] = Field(default_factory=dict)

    def leakage(self, task_type: str) -> dict[str, str]:
        """Every leaking feature with why: near-perfect alone, or leaned on and nearly so."""
        return {**leakage_flags(self.scores, task_type), **self.suspected}  # type: ignore[arg-type]


class Measurements(BaseModel):
    """The refit winner's holdout score, the trivial baselines, its deployment facts and the
    leak screen: every number the checks read, measured on the saved model."""

    holdout_score: float
    holdout_rows: int
    baseline_cv: float
    baseline_holdout: float
    deployment: DeploymentFacts
    leak_screen: LeakScreen
    # The saved model's own score on the holdout rows when it was refit on them too (then it
    # differs from ``holdout_score``, which the model fitted without them earned).
    saved_holdout_score: float | None = None

    @property
    def reload_score(self) -> float:
        """What the saved model, reloaded in a fresh process, must score on the holdout rows."""
        return self.holdout_score if self.saved_holdout_score is None else self.saved_holdout_score


def measure(pipeline: Any, data: TrainingData, X_holdout: pd.DataFrame, y_holdout: pd.Series,
            task: TaskSpec, profile: DataProfile, model_path: Path, seed: int) -> Measurements:
    """Measure the fitted, saved winner (``model_path``) on the holdout it never saw."""
    score = score_pipeline(pipeline, X_holdout, y_holdout, task.metric, task.positive_class)
    base_cv = baseline_score(data.X, data.y, data.folds, task.task_type, task.metric,
                             task.positive_class)
    base_holdout = baseline_holdout(data.X, data.y, X_holdout, y_holdout, task.task_type,
                                    task.metric, task.positive_class)
    gain = (score - base_holdout) * (1 if task.direction == "maximize" else -1)
    # One single-feature screen serves both leak checks: the 0.99 flags and the suspects a
    # dominance test looks at.
    # concat, not assign: a wide frame built column by column warns it is fragmented
    rows = pd.concat([data.X, data.y.rename(task.target)], axis=1)
    scores = single_feature_scores(rows, task.target, model_features(pipeline, profile),
                                   task.task_type, seed=seed)
    suspected = dominant_leaks(pipeline, X_holdout, y_holdout,
                               leakage_flags(scores, task.task_type, SUSPECT_SCORE), task.metric,
                               gain, task.positive_class, seed)
    return Measurements(
        holdout_score=score, holdout_rows=len(y_holdout), baseline_cv=base_cv,
        baseline_holdout=base_holdout,
        deployment=measure_deployment(pipeline, X_holdout, model_path, profile),
        leak_screen=LeakScreen(scores=scores, suspected=suspected))


class Verdict(BaseModel):
    """The execution and implementation checks, what they read, and the revision that
    would fix a failure (None when no new plan can)."""

    execution: CheckResult
    implementation: CheckResult
    predict: dict[str, Any] = Field(default_factory=dict)
    constraints: list[ConstraintResult] = Field(default_factory=list)
    shift: list[ShiftFinding] = Field(default_factory=list)
    review: Review
    review_source: str
    revision: Revision | None = None


def verify(task: TaskSpec, profile: DataProfile, trials: list[TrialRecord], best: TrialRecord,
           measured: Measurements, train_rows: pd.DataFrame, holdout_rows: pd.DataFrame,
           model_path: Path, holdout_path: Path, *, excluded: Sequence[str] = (),
           llm: object | None = None) -> Verdict:
    """Check the saved winner: measured scores, leaks, shift, constraints, and a fresh-process
    reload that reproduces its holdout score; the LLM (or rules) only reviews the facts."""
    leakage = measured.leak_screen.leakage(task.task_type)
    shift = distribution_shift(train_rows, holdout_rows, profile)
    constraints = check_constraints(measured.deployment, task.constraints)
    execution = check_execution(task, trials, best, measured.holdout_score, measured.baseline_cv,
                                measured.baseline_holdout, leakage, shift, constraints)
    implementation, report = check_implementation(model_path, holdout_path, task,
                                                  measured.reload_score,
                                                  refit=measured.saved_holdout_score is not None)
    facts = _review_facts(task, trials, best, measured, execution.status, implementation.status)
    notes = review(facts, llm)
    failed = "fail" in (execution.status, implementation.status)
    revision = propose_revision(leakage, constraints, best.model, excluded, profile) \
        if failed else None
    return Verdict(execution=execution, implementation=implementation, predict=report,
                   constraints=list(constraints), shift=list(shift), review=notes.value,
                   review_source=notes.source, revision=revision)


def _review_facts(task: TaskSpec, trials: list[TrialRecord], best: TrialRecord,
                  measured: Measurements, execution: str, implementation: str) -> dict[str, Any]:
    return {
        "text": task.text, "task_type": task.task_type, "target": task.target,
        "metric": task.metric, "direction": task.direction, "model": best.model,
        "cv_score": float(best.score or 0.0), "holdout_score": measured.holdout_score,
        "baseline": measured.baseline_cv, "holdout_rows": measured.holdout_rows,
        "failed_trials": sum(t.state == TrialState.FAIL for t in trials),
        "checks": {"execution": execution, "implementation": implementation},
    }
