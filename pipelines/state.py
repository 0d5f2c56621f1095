"""The one typed state of a run, and the context its nodes share."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pandas as pd

from hyperpilot.agents.tuner.agent import TrainingData
from hyperpilot.tools.evaluate import make_folds
from hyperpilot.tools.experience import ExperienceStore
from hyperpilot.tools.knowledge import Card, shipped_cards


class RunState(TypedDict, total=False):
    """Everything a run decides, as JSON-able data so every checkpoint can be read back.

    Pydantic types (TaskSpec, DataProfile, Plan, TrialRecord) travel as their dumps.
    """

    text: str
    source: str
    trials_budget: int
    time_limit: float | None
    seed: int
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


@dataclass
class RunContext:
    """What nodes share but never checkpoint: the loaded table, the LLM, the output folder."""

    frame: pd.DataFrame
    out_dir: Path
    llm: Any = None
    progress: Callable[[str], None] = lambda line: None
    cuda: bool = False
    cards: list[Card] = field(default_factory=shipped_cards)
    experience: ExperienceStore | None = None
    llm_budget: int = 0  # LLM calls the tuner may spend (LLAMBO proposals)
    plans: int = 3  # plans the planner writes (fewer when the trial budget is small)
    revisions: int = 2  # times a failed verification may send the run back to the planner
    halving: bool = True  # stop a clearly losing trial after its first CV folds
    _training: TrainingData | None = field(default=None, repr=False)

    def training(self, state: RunState) -> TrainingData:
        """The non-holdout rows and folds, built once from the split in the state."""
        if self._training is None:
            task = state["task"]
            rows = self.frame.iloc[state["split"]["train"]]
            X, y = rows.drop(columns=[task["target"]]), rows[task["target"]]
            n_splits = 5 if len(rows) < 20_000 else 3
            folds = make_folds(y.to_numpy(), task["task_type"], n_splits, state["seed"])
            self._training = TrainingData(X=X, y=y, folds=folds)
        return self._training

    def holdout(self, state: RunState) -> tuple[pd.DataFrame, pd.Series]:
        rows = self.frame.iloc[state["split"]["holdout"]]
        target = state["task"]["target"]
        return rows.drop(columns=[target]), rows[target]
