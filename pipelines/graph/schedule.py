"""Tuning: one trial of every running plan per step, in parallel (LangGraph ``Send``), and
successive halving between plans: when a stage's trials are in, the plans with the best CV
scores go on with the next stage's budget."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from math import ceil
from typing import Any

import numpy as np
from langgraph.types import Send

from hyperpilot.agents.planner import BASELINE
from hyperpilot.agents.tuner.agent import halving_for, next_family, one_fit_seconds, run_trial
from hyperpilot.pipelines.graph.planning import revision_budget
from hyperpilot.pipelines.graph.state import (
    RunContext,
    RunState,
    Tick,
    event,
    plans_of,
    profile_of,
    space_of,
    task_of,
    trials_of,
)
from hyperpilot.tools.types import TaskSpec, TrialRecord, TrialState, best_trial, ranked_trials

# Tuning stops this far before --time-limit, leaving time to refit and verify the winner:
# a share of the limit, but never less than a fixed reserve (a fresh-process reload alone
# takes a few seconds), nor less than the winner's refit is expected to take plus that reserve.
FINISH_SHARE_OF_TIME = 0.2
FINISH_RESERVE_SECONDS = 5.0
# A trial may train at most this many times the run's median complete trial, and at least
# this share of --time-limit, once this many trials are complete: trials of the running plans
# train side by side and each round waits for its slowest, so one slow family (a big forest
# on many rows) would otherwise leave the other cores idle for most of the budget.
TRIAL_CAP_FACTOR = 4.0
TRIAL_CAP_SHARE = 0.15
TRIAL_CAP_AFTER = 2
# The refit on every row (holdout included) sees a quarter more rows than the first refit.
REFIT_ALL_SHARE = 1.25
# The finish reserve holds refits for an ensemble of the best trials of this many families.
ENSEMBLE_FAMILIES = 3
# With no trial count given, each extra round while time is left gives the best plan's
# families this many trials, best family first.
EXTRA_ROUND = (3, 2, 1)


def open_plans(state: RunState) -> list[str]:
    """Running plans with trials left in this stage (and a family left to try)."""
    plans = plans_of(state)
    out = []
    for plan_id in state["active"]:
        own = trials_of(state, {plan_id})
        if len(own) < state["allot"][plan_id] and next_family(plans[plan_id].trials, own):
            out.append(plan_id)
    return out


def schedule_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """Stop on time, or when a stage is done keep the best plans for the next one; after
    the last stage of a run tuned until its time limit, give the best plan another round."""
    current = trials_of(state, set(plans_of(state)))
    stop = time_stop(state, current, ctx)
    if stop:
        return {"stop_reason": stop}
    if open_plans(state):
        return {}
    stage, stages = int(state["stage"]), state["stages"]
    direction = task_of(state).direction
    ranked = sorted(state["active"], key=lambda p: _plan_rank(plan_best(state, p, direction),
                                                              direction))
    if stage + 1 >= len(stages):
        if state.get("until_deadline") and ctx.options.time_limit is not None:
            return extra_round(state, ctx, ranked[0], direction)
        return {"stop_reason": f"all {len(current)} planned trials done"}
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


def extra_round(state: RunState, ctx: RunContext, plan_id: str, direction: str) -> dict[str, Any]:
    """More trials for the best plan's best families (``EXTRA_ROUND``), while time is left."""
    plans = plans_of(state)
    plan = plans[plan_id]
    own = trials_of(state, {plan_id})
    bests = {f: best_trial([t for t in own if t.model == f], direction) for f in plan.trials}
    scored = [f for f, b in bests.items() if b is not None]
    if not scored:
        return {"stop_reason": f"no trial of {plan_id} completed; nothing to tune further"}
    sign = -1.0 if direction == "maximize" else 1.0
    order = sorted(scored, key=lambda f: sign * float(bests[f].score))  # type: ignore[union-attr]
    extra = dict(zip(order, EXTRA_ROUND, strict=False))
    # next_family hands out trials by each family's share of the plan, so the plan's
    # shares grow; trials a family has not run yet (a plan cut short) still count.
    done = {f: sum(t.model == f for t in own) for f in plan.trials}
    allocation = {f: done[f] + extra.get(f, 0) for f in plan.trials}
    grown = plan.model_copy(update={"trials": allocation})
    allot = {**state["allot"], plan_id: len(own) + sum(extra.values())}
    line = (f"time left: {plan_id} gets " + ", ".join(f"{f} x{n}" for f, n in extra.items()))
    ctx.progress(f"[tune] {line}")
    return {"plans": [(grown if p.id == plan_id else p).model_dump() for p in plans.values()],
            "active": [plan_id], "allot": allot, "events": [event("tune", None, line)]}


def plan_best(state: RunState, plan_id: str, direction: str) -> float | None:
    best = best_trial(trials_of(state, {plan_id}), direction)
    return None if best is None else best.score


def _plan_rank(best: float | None, direction: str) -> tuple[int, float]:
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


def tuning_deadline(state: RunState, ctx: RunContext) -> float | None:
    """When tuning must end to leave time to refit, verify and report (None: no limit).
    Until a trial has completed, the run's own end: without one there is nothing to refit."""
    end, limit = ctx.deadline(state), ctx.options.time_limit
    if end is None or limit is None:
        return None
    trials = current_trials(state, ctx)
    direction = task_of(state).direction
    if best_trial(trials, direction) is None:
        return end
    task = task_of(state)
    refits = final_refits(ctx.options.refit_all)
    return end - finish_reserve(trials, limit, direction, refits,
                                ensemble_refits=refits if task.time_column else 1)


def final_refits(refit_all: bool) -> float:
    """How many fits on all training rows the shipped model takes, in first-refit units."""
    return 1 + REFIT_ALL_SHARE if refit_all else 1


def current_trials(state: RunState, ctx: RunContext) -> list[TrialRecord]:
    """The current revision's trials: the state's, and those this round's branches have
    finished since it began (``ctx.live``, not in the state until the round ends)."""
    plans = set(plans_of(state))
    trials = trials_of(state, plans)
    known = {(t.plan_id, t.number) for t in trials}
    with ctx.round_lock:
        live = list(ctx.live)
    return trials + [t for t in live if t.plan_id in plans and (t.plan_id, t.number) not in known]


def finish_reserve(trials: list[TrialRecord], limit: float, direction: str,
                   refits: float = 1, ensemble_refits: float = 1) -> float:
    """Seconds kept for what follows tuning: a share of the limit, at least a fixed reserve,
    and on top of that reserve, the longer of the best trial's refits (``refits`` fits on all
    training rows) and one refit of the ensemble likely to ship: the best trial of each of
    the ``ENSEMBLE_FAMILIES`` leading families. A reserve for the best one alone left an
    ensemble that beat it on CV no time to be refitted. The ensemble's own refit on every
    row happens only if time is left, unless ``ensemble_refits`` holds time for it too (in
    time order, where the holdout is the latest stretch and a model without it is stale)."""
    reserve = max(FINISH_SHARE_OF_TIME * limit, FINISH_RESERVE_SECONDS)
    members = likely_members(trials, direction)
    if members:
        best = refits * one_fit_seconds(members[0], len(members[0].fold_scores))
        ensemble = ensemble_refits * sum(one_fit_seconds(t, len(t.fold_scores)) for t in members)
        reserve = max(reserve, max(best, ensemble) + FINISH_RESERVE_SECONDS)
    return min(reserve, 0.5 * limit)


def likely_members(trials: list[TrialRecord], direction: str) -> list[TrialRecord]:
    """The best complete trial of each family, for the ``ENSEMBLE_FAMILIES`` best families."""
    leaders: dict[str, TrialRecord] = {}
    for trial in ranked_trials(trials, direction):  # best first
        if len(trial.fold_scores) > 1:
            leaders.setdefault(trial.model, trial)
    return list(leaders.values())[:ENSEMBLE_FAMILIES]


def time_stop(state: RunState, trials: list[TrialRecord], ctx: RunContext) -> str:
    """Why tuning must stop now to leave time to refit and verify, or ''."""
    deadline = tuning_deadline(state, ctx)
    if deadline is None:
        return ""
    limit = ctx.options.time_limit
    now = time.time()
    if ctx.stopped or now >= deadline:
        return f"time limit: stopped after {len(trials)} trials ({limit:.0f} s budget)"
    if best_trial(trials, task_of(state).direction) is None:
        return ""  # tune on to the run's end rather than finish with no model
    # Running plans train at once, sharing the cores: a round takes longer than one trial.
    rounds = ceil(len(open_plans(state)) / (os.cpu_count() or 1))
    typical = float(np.median([t.seconds for t in trials])) * max(1, rounds)
    if now + typical > deadline:
        return f"time limit: stopped after {len(trials)} trials ({limit:.0f} s budget)"
    return ""


def lanes_of(branches: int, workers: int) -> list[list[int]]:
    """The lanes of a round (the trials that train at once) for ``branches`` running plans
    on ``workers`` workers: every plan gets one, and spare workers go to the plans in turn
    (branch ``i`` gets lanes ``i``, ``i + branches``, ... below ``max(branches, workers)``)."""
    total = max(branches, workers)
    return [list(range(i, total, branches)) for i in range(branches)]


def dispatch(state: RunState, ctx: RunContext) -> list[Send] | str:
    """One ``tune_plan`` branch per running plan, run in parallel, each with its lanes of
    the run's workers; or the next step."""
    if state.get("stop_reason"):
        return "finalize"
    running = open_plans(state)
    if not running:
        return "schedule"
    # In the run's own process without --workers, one lane a plan: trials in lockstep rounds,
    # so a run repeats exactly (threads asking at once would swap configs between numbers).
    lockstep = ctx.executor_kind == "inprocess" and ctx.options.workers is None
    workers = len(running) if lockstep else ctx.workers
    lanes = lanes_of(len(running), workers)
    return [Send("tune_plan", {**state, "current_plan": plan_id, "lanes": lanes[i],
                               "lane_count": max(len(running), workers), "lockstep": lockstep})
            for i, plan_id in enumerate(running)]


def tune_plan_node(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """One plan's trials of this round, in that plan's own studies: one per lane, each lane
    a worker; with an executor that can stop trials (worker processes, Ray), a lane goes on
    with more of the plan's trials while another lane of the round is still training, so a
    worker is not left idle waiting for the round's slowest trial."""
    branch = Branch(state, ctx)
    lanes = list(state.get("lanes") or [0])
    if len(lanes) == 1:
        branch.lane(lanes[0])
    else:
        with ThreadPoolExecutor(len(lanes), thread_name_prefix="hyperpilot-lane") as threads:
            list(threads.map(branch.lane, lanes))
    records = sorted(branch.records, key=lambda r: r.number)
    return {"trials": [r.model_dump(mode="json") for r in records]}


class Branch:
    """The trials one ``tune_plan`` branch trains: its lanes share the plan's allotment and
    see each other's running trials (the family chosen counts them, and each ask shows
    them to the sampler as pending: ``ctx.in_flight``)."""

    def __init__(self, state: RunState, ctx: RunContext) -> None:
        self.state, self.ctx = state, ctx
        self.task = task_of(state)
        self.plans = plans_of(state)
        self.plan = self.plans[state["current_plan"]]
        self.history = trials_of(state)
        self.own = [t for t in self.history if t.plan_id == self.plan.id]
        self.base = max((t.number for t in self.history), default=-1) + 1
        self.lane_count = int(state.get("lane_count") or 1)
        self.total: int | None = None
        if not state.get("until_deadline"):
            self.total = revision_budget(state)
            if state.get("revision"):  # count the trials of earlier revisions too
                self.total += len(self.history) - len(trials_of(state, set(self.plans)))
        self.records: list[TrialRecord] = []
        self.running: list[str] = []  # families of this branch's trials training now

    def lane(self, lane: int) -> None:
        """Train this lane's trials. In lockstep a lane trains one, numbered ``base + lane``
        (the same numbers whatever the threads' timing); otherwise the round's trials are
        numbered on from ``base`` in the order they start."""
        ctx, base = self.ctx, self.base
        with ctx.round_lock:
            ctx.rounds_started[base] = ctx.rounds_started.get(base, 0) + 1
        k = 0
        while True:
            with ctx.round_lock:
                family = self._claim(first=k == 0)
                if family is None:
                    ctx.rounds_done[base] = ctx.rounds_done.get(base, 0) + 1
                    return
                if self.state.get("lockstep"):
                    number = base + lane
                else:
                    number = base + ctx.rounds_claimed.get(base, 0)
                    ctx.rounds_claimed[base] = ctx.rounds_claimed.get(base, 0) + 1
            try:
                self._train(family, number)
            finally:
                with ctx.round_lock:
                    self.running.remove(family)
            k += 1

    def _claim(self, first: bool) -> str | None:
        """The family of this lane's next trial (counted as running), or None: the workers
        were stopped, the plan's stage allotment is used up, or, after its first trial, the
        lane does not go on (``_goes_on``). Called under the round's lock."""
        if self.ctx.stopped or (not first and not self._goes_on()):
            return None
        if len(self.own) + len(self.records) + len(self.running) >= self.state["allot"][self.plan.id]:
            return None
        family = next_family(self.plan.trials, self.own + self.records, running=self.running)
        if family is not None:
            self.running.append(family)
        return family

    def _goes_on(self) -> bool:
        """Whether a lane trains another trial in this round: only where trials flow (an
        executor that can stop them: lockstep rounds in-process keep a run reproducible),
        with every lane of the round started and another still training, while the tuning
        time lasts."""
        ctx, base = self.ctx, self.base
        started = ctx.rounds_started.get(base, 0)
        busy = started - 1 - ctx.rounds_done.get(base, 0)
        if ctx.executor_kind == "inprocess" or busy <= 0:  # lockstep rounds are in-process
            return False
        if started < self.lane_count:
            return False  # a plan waits for a worker: let it have this one
        deadline = tuning_deadline(self.state, ctx)
        typical = float(np.median([r.seconds for r in self.records])) if self.records else 0.0
        return deadline is None or time.time() + typical < deadline

    def _train(self, family: str, number: int) -> None:
        ctx, state, plan = self.ctx, self.state, self.plan
        with ctx.round_lock:
            seen = self.history + self.records
        record = ctx.journaled(number, plan.id, family)
        if record is None:
            record = run_trial(family, space_of(state, family), state["warm"][family], seen,
                               self.task, profile_of(state), ctx.training(state),
                               ctx.options.seed, plan.id, llm=ctx.llm,
                               llm_budget=ctx.options.llm_budget, number=number,
                               steps=plan.steps,
                               halving=halving_for(seen, family, plan.id, ctx.options.halving),
                               executor=ctx.executor,
                               deadline=lambda: tuning_deadline(state, ctx),
                               cap=_cap_of(state, ctx, family), in_flight=ctx.in_flight)
            with ctx.round_lock:  # the trial's place in the run: trials finish out of order
                place = len({(t.plan_id, t.number) for t in self.history + ctx.live}) + 1
            _show_trial(ctx, record, current_trials(state, ctx), self.total, self.task, plan.id,
                        len(self.plans) > 1, place, ctx.started(state))
        else:
            ctx.progress(f"[resume] trial {number + 1} {family}: finished before the stop; kept")
        with ctx.round_lock:
            self.records.append(record)
        ctx.record_trial(record)


def _cap_of(state: RunState, ctx: RunContext, family: str) -> Callable[[], float | None]:
    # Whether this is the spared baseline is decided at the trial's start, not while it trains.
    spared = is_baseline(current_trials(state, ctx), family)
    return lambda: None if spared else trial_cap(current_trials(state, ctx), family, ctx)


def is_baseline(history: list[TrialRecord], family: str) -> bool:
    """Whether the next trial of ``family`` is the run's first default forest."""
    return family == BASELINE and not any(t.model == BASELINE for t in history)


def trial_cap(history: list[TrialRecord], family: str, ctx: RunContext) -> float | None:
    """The seconds the next trial of ``family`` may train (None: up to the run's deadline).
    Only with a time limit and once ``TRIAL_CAP_AFTER`` trials are complete; never for the
    first default forest, the baseline every run evaluates."""
    limit = ctx.options.time_limit
    complete = [t.seconds for t in history if t.state == TrialState.COMPLETE]
    if limit is None or len(complete) < TRIAL_CAP_AFTER:
        return None
    if is_baseline(history, family):
        return None
    return max(TRIAL_CAP_FACTOR * float(np.median(complete)), TRIAL_CAP_SHARE * limit)


def _show_trial(ctx: RunContext, record: TrialRecord, history: list[TrialRecord], total: int | None,
                task: TaskSpec, plan_id: str, several: bool, place: int, started: float) -> None:
    best = best_trial(history + [record], task.direction)
    if record.state == TrialState.PRUNED:
        score = (f"stopped after {record.tuner.get('pruned_rung', '?')} fold(s) at "
                 f"{record.tuner.get('rung_score', float('nan')):.4f}, behind the family's best")
    else:
        score = f"{record.score:.4f}" if record.score is not None else f"FAIL ({record.error[:80]})"
    leader = f"best {best.score:.4f} {best.model}" if best else "no complete trial yet"
    where = f" [{plan_id}]" if several else ""
    count = f"{place}" if total is None else f"{place}/{total}"
    ctx.progress(f"[tune] trial {count}{where} {record.model}: {score} in "
                 f"{record.seconds:.1f}s; {leader}")
    ctx.watch(Tick(place, total, None if best is None else best.score,
                   "" if best is None else best.model, task.metric, started,
                   ctx.options.time_limit))
