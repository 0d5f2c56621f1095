"""The one typed state of a run, its typed accessors, and the context its nodes share."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

import pandas as pd

from hyperpilot.agents.planner import Plan
from hyperpilot.agents.request import RequestDraft
from hyperpilot.agents.tuner.agent import TrainingData
from hyperpilot.agents.verifier import Measurements, Revision
from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.tools.evaluate import make_folds
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
    slot: int  # in a tune_plan branch: its place among the branches (for trial numbers)
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
        "deployment": state["deployment"], "leak_screen": state["leak_screen"]})


def revision_of(state: RunState) -> Revision:
    """The change a failed verification asks for."""
    return Revision.model_validate(state["pending_revision"])


def best_record(state: RunState) -> TrialRecord:
    """The trial that won (after ``finalize``)."""
    number = state["best"]["trial"]
    return next(t for t in trials_of(state) if t.number == number)


# --- what nodes share but never checkpoint ------------------------------------------------

@dataclass
class RunContext:
    """The run's options and folder, the loaded table, the LLM, the progress printer."""

    frame: pd.DataFrame
    folder: RunFolder
    options: RunOptions = field(default_factory=RunOptions)
    llm: Any = None
    progress: Callable[[str], None] = lambda line: None
    cuda: bool = False
    cards: list[Card] = field(default_factory=shipped_cards)
    experience: ExperienceStore | None = None
    _training: TrainingData | None = field(default=None, repr=False)

    def training(self, state: RunState) -> TrainingData:
        """The non-holdout rows and folds, built once from the split in the state."""
        if self._training is None:
            rows = self.frame.iloc[state["split"]["train"]]
            task = task_of(state)
            data = TrainingData.of(rows, task, self.options.seed)
            if task.time_column is not None:  # the split kept the training rows in time order
                folds = make_folds(data.y.to_numpy(), task.task_type, len(data.folds),
                                   self.options.seed, time_ordered=True)
                data = TrainingData(X=data.X, y=data.y, folds=folds)
            self._training = data
        return self._training

    def holdout_rows(self, state: RunState) -> pd.DataFrame:
        return self.frame.iloc[state["split"]["holdout"]]

    def holdout(self, state: RunState) -> tuple[pd.DataFrame, pd.Series]:
        rows = self.holdout_rows(state)
        target = state["task"]["target"]
        return rows.drop(columns=[target]), rows[target]

    def train_rows(self, state: RunState) -> pd.DataFrame:
        return self.frame.iloc[state["split"]["train"]]
