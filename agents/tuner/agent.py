"""The tuner agent: warm starts, budget-aware family scheduling, and one trial at a time."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from hyperpilot.agents.model_agent import choose_space
from hyperpilot.agents.runner import AgentSpec, Decision, decide
from hyperpilot.agents.tuner.executors import TrialExecutor
from hyperpilot.agents.tuner.factory import tuner_sampler
from hyperpilot.agents.tuner.halving import (
    CVOutcome,
    FoldHalving,
    SuccessiveHalving,
    evaluate_with_halving,
    fold_pruner,
    tell_outcome,
)
from hyperpilot.agents.tuner.study import InFlight, Study
from hyperpilot.agents.tuner.workers import Bound, TrialStopped
from hyperpilot.tools.ensemble import tested_rows, thresholds_apply, tune_threshold
from hyperpilot.tools.errors import TrialFailed
from hyperpilot.tools.evaluate import (
    cross_validate,
    cross_validate_oof,
    get_metric,
    make_folds,
    oob_applies,
    oob_validate,
    oof_classes,
)
from hyperpilot.tools.preprocess import build_pipeline
from hyperpilot.tools.space import SearchSpace
from hyperpilot.tools.types import (
    Config,
    DataProfile,
    DataSteps,
    TaskSpec,
    TrialRecord,
    TrialState,
)
from hyperpilot.tools.zoo import get_model

# Fold halving starts once a family's full trials take this long (median seconds).
HALVING_MIN_SECONDS = 2.0


class WarmStartDraft(BaseModel):
    """What the LLM tuner answers: starting configurations."""

    configs: list[dict[str, Any]] = Field(default_factory=list)


TUNER_AGENT = AgentSpec(name="tuner", prompt="tuner.j2", output_type=WarmStartDraft,
                        settings={"temperature": 0.7})


@dataclass(frozen=True)
class TrainingData:
    """The non-holdout rows and the CV folds every trial of a run shares."""

    X: pd.DataFrame
    y: pd.Series
    folds: list[tuple[np.ndarray, np.ndarray]]
    # Where a complete trial's out-of-fold predictions go: (plan id, trial number, array).
    keep_oof: Callable[[str, int, np.ndarray], None] | None = field(
        default=None, repr=False, compare=False)

    @classmethod
    def of(cls, rows: pd.DataFrame, task: TaskSpec, seed: int) -> TrainingData:
        """The training rows split into features and target, with 5 folds (3 from 20,000 rows)."""
        X, y = rows.drop(columns=[task.target]), rows[task.target]
        n_splits = 5 if len(rows) < 20_000 else 3
        # A task in time order trains every fold on its past only.
        folds = make_folds(y.to_numpy(), task.task_type, n_splits, seed,
                           time_ordered=task.time_column is not None)
        return cls(X=X, y=y, folds=folds)


@dataclass(frozen=True)
class FamilySearch:
    """A family's search space (the model agent's) and its warm starts (the tuner's)."""

    space: Decision[SearchSpace]
    warm: Decision[list[Config]]


def family_searches(families: Sequence[str], task: TaskSpec, profile: DataProfile, n_train: int,
                    llm: object | None, past_runs: Sequence[dict[str, Any]] = ()
                    ) -> dict[str, FamilySearch]:
    """Each family's space and warm starts. ``past_runs`` are retrieved similar runs (with
    ``configs`` and ``top_configs`` per family), most similar first."""
    out = {}
    for family in families:
        space = choose_space(family, task, profile, n_train, llm)
        past = [r.get("top_configs", {}).get(family) or r["configs"][family]
                for r in past_runs if family in r.get("configs", {})]
        out[family] = FamilySearch(space, warm_start(family, space.value, task, profile, llm,
                                                     past=past))
    return out


def warm_start(family: str, space: SearchSpace, task: TaskSpec, profile: DataProfile,
               llm: object | None, n: int = 2, past: Sequence[Config | list[Config]] | None = None,
               *, per_run: int = 3, max_past: int = 3) -> Decision[list[Config]]:
    """Starting configurations: the family's own defaults first (so a run is never worse on
    CV than the default a user would have tried), then winners of similar past runs, then the
    zoo's shipped strong-defaults portfolio, then up to ``n`` of the LLM's proposals.

    ``past`` holds one entry per similar past run, most similar first: that run's best config
    for ``family``, or a list of its best configs, best first (up to ``per_run`` of each are
    used, ``max_past`` in all). Past and LLM configurations are repaired into the space; ones
    that do not fit are dropped, and a config is never tried twice.
    """
    entry = get_model(family)
    planned = _past_then_strong(past or [], entry.strong_defaults(task.task_type), space, per_run,
                                max_past, first=entry.defaults(task.task_type))
    inputs = {"n": n, "family": family, "task_type": task.task_type, "n_rows": profile.n_rows,
              "n_numeric": len(profile.numeric_features),
              "n_categorical": len(profile.categorical_features),
              "imbalance": profile.imbalance_ratio, "metric": task.metric,
              "direction": task.direction, "space": space.describe(), "planned": planned}
    return decide(TUNER_AGENT, inputs, llm,  # type: ignore[arg-type]
                  accept=lambda draft: planned + repaired_configs(draft.configs, space, planned, n),
                  rules=lambda: planned)


def _past_then_strong(past: Sequence[Config | list[Config]], strong: list[Config],
                      space: SearchSpace, per_run: int, max_past: int,
                      first: Config | None = None) -> list[Config]:
    fill = next((c for c in ([first] if first else []) + strong if space.contains(c)), None)
    runs = [entry if isinstance(entry, list) else [entry] for entry in past]
    out: list[Config] = []
    seen: set[str] = set()

    def add(raw: dict[str, Any]) -> None:
        try:
            config = space.repair(raw, fill=fill)
        except ValueError:
            return  # a past config from a space this run no longer has
        if space.key(config) not in seen:
            seen.add(space.key(config))
            out.append(config)

    if first is not None:
        add(first)
    for config in [c for run in runs for c in run[:per_run]]:
        if len(out) < max_past + (first is not None):
            add(config)
    for config in strong:
        add(config)
    return out


def repaired_configs(configs: list[dict[str, Any]], space: SearchSpace, planned: list[Config],
                     limit: int) -> list[Config]:
    """Configs repaired into ``space`` (missing keys from the first planned one), deduplicated."""
    fill = planned[0] if planned else None
    seen = {space.key(c) for c in planned}
    out: list[Config] = []
    for raw in configs:
        try:
            config = space.repair(raw, fill=fill)
        except ValueError:
            continue
        if space.key(config) not in seen:
            seen.add(space.key(config))
            out.append(config)
    if configs and not out and not planned:
        raise ValueError("no proposed configuration fits the search space")
    return out[:limit]


def next_family(allocation: dict[str, int], trials: list[TrialRecord],
                running: Sequence[str] = ()) -> str | None:
    """The family furthest behind its share, so a budget cut short still covers every family;
    ``running`` are the families of trials training now, counted as done."""
    done = {name: 0 for name in allocation}
    for model in [r.model for r in trials] + list(running):
        if model in done:
            done[model] += 1
    open_families = [n for n in allocation if done[n] < allocation[n]]
    if not open_families:
        return None
    return min(open_families, key=lambda n: (done[n] / allocation[n], list(allocation).index(n)))


def run_trial(family: str, space: SearchSpace, warm: list[Config], history: list[TrialRecord],
              task: TaskSpec, profile: DataProfile, data: TrainingData, seed: int,
              plan_id: str = "", *, llm: Any = None, llm_budget: int = 0,
              number: int | None = None, steps: dict[str, Any] | None = None,
              halving: FoldHalving | None = None, executor: TrialExecutor | None = None,
              deadline: Bound | None = None, cap: Bound | None = None,
              in_flight: InFlight | None = None) -> TrialRecord:
    """Ask the family's study for one configuration, train it with CV, and tell the result.

    The sampler is the ``SurrogateSampler``: classical parts, plus the LLAMBO parts while
    ``llm_budget`` (LLM calls over the whole run, all families) lasts. ``number`` is the
    trial's number (the history's length by default; plans tuned in parallel each get
    their own); ``steps`` are the plan's preprocessing choices (a ``DataSteps`` dump). With
    ``halving``, a config losing to the family's earlier trials after the first folds is
    stopped there and recorded as PRUNED (``halving.py``); without it every trial runs
    every fold. With ``executor`` (a ``TrialExecutor`` holding ``data``) the trial trains
    where it says (a worker process, a Ray actor); one still training at ``deadline`` is
    stopped and recorded as FAIL with ``tuner["stopped"] = "time limit"``; one still training
    after ``cap`` seconds is stopped alone and recorded the same way with ``"trial cap"``.
    Without one, it trains here. ``in_flight`` holds the trials other workers are training:
    the ask is made under its lock, with those of this plan and family shown to the sampler
    as pending (``Study(pending=...)``), so parallel trials spread out.
    """
    own = [r for r in history if r.model == family and r.plan_id == plan_id]
    number = len(history) if number is None else number
    key = (plan_id, family)
    with nullcontext([]) if in_flight is None else in_flight.asking(key) as pending:
        rng = np.random.default_rng([seed, number])
        others = sum(int(r.tuner.get("llm_calls", 0)) for r in history if r.model != family)
        sampler = tuner_sampler(llm, _tuning_text(family, task, profile), llm_budget - others)
        study = Study(space, task.direction, sampler, rng, model=family, plan_id=plan_id,
                      history=own, first_number=number, pending=pending)
        for config in warm:
            study.enqueue(config, source="warm start")
        trial = study.ask()
        if in_flight is not None:
            in_flight.add(key, trial)
    try:
        return _train_and_tell(study, trial, family, task, profile, data, seed, steps, own,
                               halving, executor, deadline, cap)
    finally:
        if in_flight is not None:
            in_flight.told(key, trial.number)


def _train_and_tell(study: Study, trial: Any, family: str, task: TaskSpec, profile: DataProfile,
                    data: TrainingData, seed: int, steps: dict[str, Any] | None,
                    own: list[TrialRecord], halving: FoldHalving | None,
                    executor: TrialExecutor | None, deadline: Bound | None,
                    cap: Bound | None) -> TrialRecord:
    started = time.perf_counter()
    pipeline = build_model_pipeline(family, trial.config, task, profile, seed, steps)
    pruner = None if halving is None else fold_pruner(own, halving, task.direction)
    rungs = () if halving is None else halving.rungs
    try:
        if executor is None:
            outcome = evaluate_trial(data, pipeline, task, trial.number, pruner, rungs)
        else:
            outcome = executor.run(evaluate_trial, pipeline, task, trial.number, pruner, rungs,
                                   deadline=math.inf if deadline is None else deadline,
                                   cap=cap, gpu=get_model(family).gpu)
    except TrialStopped as stop:
        return study.tell(trial, None, state=TrialState.FAIL, error=str(stop),
                          seconds=time.perf_counter() - started, info={"stopped": stop.reason})
    except TrialFailed as err:
        return study.tell(trial, None, state=TrialState.FAIL, error=str(err),
                          seconds=time.perf_counter() - started)
    return _kept(tell_outcome(study, trial, outcome, time.perf_counter() - started),
                 outcome.oof, data)


def evaluate_trial(data: TrainingData, pipeline: Any, task: TaskSpec, number: int,
                   pruner: SuccessiveHalving | None, rungs: Sequence[int]) -> CVOutcome:
    """Cross-validate an unfitted pipeline on the run's folds, with its out-of-fold
    predictions: every fold, or fold by fold with ``pruner`` judging at ``rungs``; a bagged
    forest is fitted once and scored out of bag on the same folds (``oob_validate``), about a
    fifth of the time of five fits. Takes and returns plain data, so it runs the same in a
    worker process."""
    decided = thresholds_apply(task.task_type, task.metric, oof_classes(data.y, task.task_type))
    if oob_applies(pipeline, data.folds, len(data.y), task.metric):
        scores, oof = oob_validate(pipeline, data.X, data.y, data.folds, task.metric,
                                   task.positive_class, task.task_type)
        outcome = CVOutcome(scores, oof=oof, out_of_bag=True)
    elif pruner is None or decided:  # a fold or two cannot cross-fit a cut-off: no halving
        scores, oof = cross_validate_oof(pipeline, data.X, data.y, data.folds, task.metric,
                                         task.positive_class, task.task_type)
        outcome = CVOutcome(scores, oof=oof)
    else:
        return evaluate_with_halving(pipeline, data, task, number, pruner, rungs)
    return at_threshold(outcome, data, task) if decided else outcome


def at_threshold(outcome: CVOutcome, data: TrainingData, task: TaskSpec) -> CVOutcome:
    """The outcome scored as the shipped model would decide: where a binary F1 or balanced
    accuracy gains from a cut-off tuned on the OOF probabilities, each fold's score at the
    cut-off chosen on the other folds (``tune_threshold``). Most-probable-class scores of an
    imbalanced task barely move between configs (a balanced accuracy of 0.50 for nearly
    all), so without this the search cannot tell the configs apart."""
    if outcome.oof is None:
        return outcome
    classes = oof_classes(data.y, task.task_type)
    oof, y, tests = tested_rows(outcome.oof, data.y, [test for _, test in data.folds])
    if not np.isfinite(oof).all():
        return outcome
    found = tune_threshold(oof, y, tests, task.metric, classes, task.positive_class)  # type: ignore[arg-type]
    if not found.helps:
        return outcome
    return dataclasses.replace(outcome, fold_scores=list(found.fold_scores))


def _kept(record: TrialRecord, oof: np.ndarray | None, data: TrainingData) -> TrialRecord:
    """Hand a complete trial's out-of-fold predictions to ``data.keep_oof``."""
    if data.keep_oof is not None and oof is not None and record.state == TrialState.COMPLETE:
        data.keep_oof(record.plan_id, record.number, oof)
    return record


def _tuning_text(family: str, task: TaskSpec, profile: DataProfile) -> str:
    return (f"{family} for a {task.task_type} task ({task.text!r}), {profile.n_rows} rows, "
            f"{len(profile.features)} features; score = cross-validated {task.metric}"
            f"{' (negated: lower is better)' if task.direction == 'minimize' else ''}")


def evaluate_config(family: str, config: Config, task: TaskSpec, profile: DataProfile,
                    data: TrainingData, seed: int,
                    steps: dict[str, Any] | None = None) -> list[float]:
    """Cross-validated scores of ``family`` with ``config`` on the run's shared folds."""
    pipeline = build_model_pipeline(family, config, task, profile, seed, steps)
    return cross_validate(pipeline, data.X, data.y, data.folds, task.metric, task.positive_class)


def build_model_pipeline(family: str, config: Config, task: TaskSpec, profile: DataProfile,
                         seed: int, steps: dict[str, Any] | None = None) -> Any:
    """An unfitted preprocessing + estimator pipeline for one configuration; ``steps`` are
    a plan's preprocessing choices (a ``DataSteps`` dump; none means the defaults)."""
    entry = get_model(family)
    needs_proba = get_metric(task.metric).needs_proba
    estimator = entry.build(task.task_type, config, seed, needs_proba=needs_proba)
    return build_pipeline(profile, estimator, scale=entry.scale,
                          steps=DataSteps.model_validate(steps) if steps else None, seed=seed,
                          sparse=entry.sparse)


def halving_for(history: Sequence[TrialRecord], family: str, plan_id: str,
                enabled: bool) -> FoldHalving | None:
    """Fold halving for a family whose full trials are slow enough for it to pay: on fast,
    small data it saves seconds and costs the search the complete trials it learns from."""
    full = [t.seconds for t in history if t.model == family and t.plan_id == plan_id
            and t.state == TrialState.COMPLETE]
    if not enabled or not full or float(np.median(full)) < HALVING_MIN_SECONDS:
        return None
    return FoldHalving()


def one_fit_seconds(trial: TrialRecord, n_folds: int) -> float:
    """About how long fitting ``trial``'s pipeline once on every training row takes: its
    trial was one fit each of ``n_folds`` folds on ``(k - 1) / k`` of the rows, or one fit on
    all of them when scored out of bag."""
    if trial.tuner.get("out_of_bag"):
        return trial.seconds
    return trial.seconds / max(n_folds - 1, 1)


def refit(trial: TrialRecord, task: TaskSpec, profile: DataProfile, data: TrainingData,
          seed: int, steps: dict[str, Any] | None = None) -> Any:
    """The trial's pipeline fitted on every training row (no fold held out)."""
    pipeline = build_model_pipeline(trial.model, trial.config, task, profile, seed, steps)
    return pipeline.fit(data.X, data.y)
