"""The one typed state of a run, its typed accessors, and the context its nodes share."""

from __future__ import annotations

import dataclasses
import operator
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

import numpy as np
import pandas as pd

from hyperpilot.agents.planner import Plan
from hyperpilot.agents.request import RequestDraft
from hyperpilot.agents.tuner.agent import TrainingData
from hyperpilot.agents.tuner.executors import TrialExecutor, make_executor
from hyperpilot.agents.tuner.study import InFlight
from hyperpilot.agents.verifier import Measurements, Revision
from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.tools.experience import ExperienceStore
from hyperpilot.tools.knowledge import Card, shipped_cards
from hyperpilot.tools.space import SearchSpace
from hyperpilot.tools.types import DataProfile, TaskSpec, TrialRecord


class RunState(TypedDict, total=False):
    """Everything a run decides, as JSON-able data so every checkpoint can be read back.

    Pydantic types (TaskSpec, DataProfile, Plan, TrialRecord) travel as their dumps; read
    them with the accessors below (``task_of``, ``trials_of``, ...), never by hand.
    """

    text: str
    source: str
    trials_budget: int
    until_deadline: bool  # no trial count was given: tune until the time limit
    started_at: float
    run_id: str
    retrieved: dict[str, Any]
    draft: dict[str, Any]
    problems: list[str]
    task: dict[str, Any]
    profile: dict[str, Any]
    split: dict[str, list[int]]
    baseline_cv: float
    plan: dict[str, Any]  # the plan that won (the first plan until one has)
    plans: list[dict[str, Any]]  # the current revision's plans
    active: list[str]  # ids of the plans still being tuned
    stages: list[list[int]]  # successive halving: [plans kept, trials each] per stage
    stage: int
    allot: dict[str, int]  # trials each plan may have run by the end of this stage
    current_plan: str  # in a tune_plan branch: the plan it tunes
    lanes: list[int]  # in a tune_plan branch: its lanes, the trials it trains at once
    lane_count: int  # in a tune_plan branch: the lanes of its whole round
    lockstep: bool  # in a tune_plan branch: one trial a lane, numbered by lane
    revision: int
    revisions: list[dict[str, Any]]  # {reason, changed} per revision
    past_plans: list[dict[str, Any]]  # earlier revisions' plans, with their best CV scores
    excluded: list[str]  # families a revision ruled out
    pending_revision: dict[str, Any]  # what verification would change, if a revision runs
    deployment: dict[str, Any]
    leak_screen: dict[str, Any]  # single-feature scores, and the features the winner leans on
    spaces: dict[str, dict[str, Any]]
    warm: dict[str, list[dict[str, Any]]]
    trials: Annotated[list[dict[str, Any]], operator.add]
    events: Annotated[list[dict[str, str]], operator.add]
    stop_reason: str
    best: dict[str, Any]
    holdout: dict[str, Any]
    shipped: dict[str, Any]  # the saved model's rows: refit on the holdout too, or not
    verification: dict[str, Any]
    status: str


def event(stage: str, decision: Any = None, message: str = "") -> dict[str, str]:
    """A line for the report: what a stage decided and who decided it."""
    if decision is None:
        return {"stage": stage, "source": "tools", "message": message}
    note = f" ({decision.note})" if decision.note else ""
    return {"stage": stage, "source": decision.source, "message": message + note}


# --- typed accessors -----------------------------------------------------------------------

def task_of(state: RunState) -> TaskSpec:
    return TaskSpec.model_validate(state["task"])


def profile_of(state: RunState) -> DataProfile:
    return DataProfile.model_validate(state["profile"])


def draft_of(state: RunState) -> RequestDraft:
    return RequestDraft.model_validate(state["draft"])


def plans_of(state: RunState) -> dict[str, Plan]:
    """The current revision's plans by id."""
    return {p["id"]: Plan.model_validate(p) for p in state.get("plans") or [state["plan"]]}


def plan_of(state: RunState) -> Plan:
    """The plan that won (the first plan until one has)."""
    return Plan.model_validate(state["plan"])


def space_of(state: RunState, family: str) -> SearchSpace:
    return SearchSpace.model_validate(state["spaces"][family])


def trials_of(state: RunState, plan_ids: set[str] | None = None) -> list[TrialRecord]:
    """Every trial on record, or only those of ``plan_ids``."""
    return [TrialRecord.model_validate(t) for t in state.get("trials", [])
            if plan_ids is None or t.get("plan_id") in plan_ids]


def measurements_of(state: RunState) -> Measurements:
    """What ``finalize`` measured on the refit winner."""
    return Measurements.model_validate({
        "holdout_score": state["holdout"]["score"], "holdout_rows": state["holdout"]["rows"],
        "baseline_cv": state["baseline_cv"], "baseline_holdout": state["holdout"]["baseline"],
        "deployment": state["deployment"], "leak_screen": state["leak_screen"],
        "saved_holdout_score": state.get("shipped", {}).get("holdout_score")})


def revision_of(state: RunState) -> Revision:
    """The change a failed verification asks for."""
    return Revision.model_validate(state["pending_revision"])


def best_record(state: RunState) -> TrialRecord:
    """The trial that won (after ``finalize``)."""
    number = state["best"]["trial"]
    return next(t for t in trials_of(state) if t.number == number)


# --- what nodes share but never checkpoint ------------------------------------------------

@dataclass(frozen=True)
class Tick:
    """Where a run stands after a trial, for a live view: trials done of the budget, the
    best score so far, and the run's clock (``time.time()`` seconds)."""

    done: int
    total: int | None
    best: float | None
    best_model: str
    metric: str
    started: float
    limit: float | None


# Out-of-fold arrays held in memory; the rest are read back from the run folder.
OOF_CACHE_SIZE = 24

@dataclass
class RunContext:
    """The run's options and folder, the loaded table, the LLM, the progress printer."""

    frame: pd.DataFrame
    folder: RunFolder
    options: RunOptions = field(default_factory=RunOptions)
    llm: Any = None
    progress: Callable[[str], None] = lambda line: None
    watch: Callable[[Tick], None] = lambda tick: None  # after each trial: a live view
    cuda: bool = False
    cards: list[Card] = field(default_factory=shipped_cards)
    experience: ExperienceStore | None = None
    workers: int = 1  # trials trained at once
    worker_threads: int | None = None  # native threads per trial; None: the library's own
    executor_kind: str = "inprocess"  # where trials train (``executors.make_executor``)
    # Lanes of a round that have started and that have stopped training, by the round's
    # first trial number.
    rounds_started: dict[int, int] = field(default_factory=dict, repr=False)
    rounds_done: dict[int, int] = field(default_factory=dict, repr=False)
    rounds_claimed: dict[int, int] = field(default_factory=dict, repr=False)  # trials numbered
    # The trials being trained now, shown to each new ask as pending.
    in_flight: InFlight = field(default_factory=InFlight, repr=False)
    round_lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    # Every trial this process has finished, as soon as it has (the state has a round's
    # trials only once the whole round is in).
    live: list[TrialRecord] = field(default_factory=list, repr=False)
    # A resumed run: the seconds it was stopped for (its clock does not count them), and the
    # finished trials its journal holds by number, taken instead of training them again.
    paused: float = 0.0
    journal: dict[int, TrialRecord] = field(default_factory=dict, repr=False)
    _training: TrainingData | None = field(default=None, repr=False)
    _executor: TrialExecutor | None = field(default=None, repr=False)
    _oof: OrderedDict[tuple[str, int], np.ndarray] = field(default_factory=OrderedDict,
                                                           repr=False)

    def training(self, state: RunState) -> TrainingData:
        """The non-holdout rows and folds, built once from the split in the state; complete
        trials' out-of-fold predictions go to ``keep_oof``. The executor that trains the
        trials starts here too (worker processes, Ray actors: holding the rows, not the hook)."""
        if self._training is None:
            rows = self.frame.iloc[state["split"]["train"]]
            data = TrainingData.of(rows, task_of(state), self.options.seed)
            self._training = dataclasses.replace(data, keep_oof=self.keep_oof)
            self._executor = make_executor(self.executor_kind, data, self.workers,
                                           self.worker_threads)
            self._executor.warm()
        return self._training

    @property
    def executor(self) -> TrialExecutor | None:
        """Where the run's trials train (None until the training data is built)."""
        return self._executor

    @property
    def stopped(self) -> bool:
        """Whether the executor has stopped every worker at the time limit."""
        return self._executor is not None and self._executor.stopped

    def started(self, state: RunState) -> float:
        """When the run's clock started (``time.time()`` seconds), moved on by the time a
        resumed run was stopped for."""
        return float(state["started_at"]) + self.paused

    def deadline(self, state: RunState) -> float | None:
        """When the run must have ended (``time.time()`` seconds), None without a limit."""
        limit = self.options.time_limit
        return None if limit is None else self.started(state) + limit

    def journaled(self, number: int, plan_id: str, family: str) -> TrialRecord | None:
        """The finished trial a stopped run's journal holds for this trial (same number,
        plan and family), or None: it is then trained."""
        found = self.journal.get(number)
        if found is None or found.plan_id != plan_id or found.model != family:
            return None
        return found

    def record_trial(self, record: TrialRecord) -> None:
        """A trial has finished: the round sees it now, and the run folder's journal keeps it
        (a trial taken from the journal is there already)."""
        with self.round_lock:
            self.live.append(record)
            if self.journal.get(record.number) is not record:
                self.folder.append_trial(record.model_dump(mode="json"))

    def close(self) -> None:
        """Stop the run's workers (processes, Ray actors and a local Ray it started)."""
        if self._executor is not None:
            self._executor.close()
            self._executor = None
        if self.executor_kind.startswith("ray"):
            from hyperpilot.agents.tuner.ray_executor import disconnect

            disconnect()  # the run may end before its trials start

    def keep_oof(self, plan_id: str, number: int, oof: np.ndarray) -> None:
        """Save a trial's out-of-fold predictions in the run folder and the memory cache."""
        self.folder.save_oof(plan_id, number, oof)
        self._remember((plan_id, number), oof)

    def _remember(self, key: tuple[str, int], oof: np.ndarray) -> None:
        self._oof[key] = oof
        while len(self._oof) > OOF_CACHE_SIZE:
            self._oof.popitem(last=False)

    def oof(self, plan_id: str, number: int) -> np.ndarray | None:
        """A trial's out-of-fold predictions (memory, else the run folder), or None."""
        key = (plan_id, number)
        if key not in self._oof:
            found = self.folder.load_oof(plan_id, number)
            if found is None:
                return None
            self._remember(key, found)
        return self._oof[key]

    def holdout_rows(self, state: RunState) -> pd.DataFrame:
        return self.frame.iloc[state["split"]["holdout"]]

    def holdout(self, state: RunState) -> tuple[pd.DataFrame, pd.Series]:
        rows = self.holdout_rows(state)
        target = state["task"]["target"]
        return rows.drop(columns=[target]), rows[target]

    def train_rows(self, state: RunState) -> pd.DataFrame:
        return self.frame.iloc[state["split"]["train"]]
