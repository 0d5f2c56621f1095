"""Successive halving over a fidelity: stop trials that are clearly losing before the end.

A trial reports its score at increasing rungs of a fidelity (epochs, rows, trees, or the
number of CV folds evaluated). ``SuccessiveHalving`` keeps every score reported at each
rung, and stops a trial whose score at a rung is below the top ``1/eta`` of the scores
reported there (its own included), once the rung holds ``min_trials`` scores: the
asynchronous rule of ASHA (Li et al. 2020), where no trial waits for a full bracket.

For the run's tuner the fidelity is the number of CV folds: every trial uses the same
folds, so the mean of the first ``r`` fold scores is comparable across trials, and a
pruner is rebuilt from the stored fold scores of earlier trials (``fold_pruner``), so it
keeps no state a checkpoint would have to hold. ``evaluate_with_halving`` runs a config
fold by fold and stops it at a rung where it is losing; ``tell_outcome`` records it as
``TrialState.PRUNED`` with the rung and the reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperpilot.agents.tuner.history import DIRECTIONS
from hyperpilot.tools.errors import TrialFailed
from hyperpilot.tools.evaluate import cross_validate_oof
from hyperpilot.tools.types import TaskSpec, TrialRecord, TrialState

if TYPE_CHECKING:
    from hyperpilot.agents.tuner.agent import TrainingData
    from hyperpilot.agents.tuner.study import Study, Trial


@dataclass(frozen=True)
class Verdict:
    """The pruner's answer to one report: stop or go on, and why."""

    stop: bool
    rung: int
    score: float
    reason: str = ""


class SuccessiveHalving:
    """ASHA-style pruner for one study: ``report(trial, rung, score)`` says whether to stop.

    ``eta`` is the reduction factor (the top ``max(1, n // eta)`` of the ``n`` scores at a
    rung go on, ties included); ``min_trials`` is how many scores a rung needs before it
    stops anything. Rungs are any increasing integers (fold counts, epochs).
    """

    def __init__(self, direction: str, eta: float = 3.0, min_trials: int = 3) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if eta <= 1:
            raise ValueError(f"eta must be above 1, got {eta}")
        if min_trials < 1:
            raise ValueError(f"min_trials must be at least 1, got {min_trials}")
        self.direction = direction
        self.eta = eta
        self.min_trials = min_trials
        self._rungs: dict[int, dict[int, float]] = {}

    def scores(self, rung: int) -> dict[int, float]:
        """Trial number -> score reported at ``rung``."""
        return dict(self._rungs.get(rung, {}))

    def record(self, trial: int, rung: int, score: float) -> None:
        """Add a score at a rung without judging it (an earlier trial, read back)."""
        if not math.isfinite(score):
            raise ValueError(f"trial {trial} reported a non-finite score {score} at rung {rung}")
        self._rungs.setdefault(rung, {})[trial] = float(score)

    def judge(self, trial: int, rung: int, score: float) -> Verdict:
        """Record the score and decide: stop when it is below the top ``1/eta`` at ``rung``."""
        self.record(trial, rung, score)
        sign = 1.0 if self.direction == "maximize" else -1.0
        oriented = sorted((sign * s for s in self._rungs[rung].values()), reverse=True)
        if len(oriented) < self.min_trials:
            return Verdict(False, rung, score)
        keep = max(1, int(len(oriented) // self.eta))
        bar = oriented[keep - 1]
        if sign * score >= bar:
            return Verdict(False, rung, score)
        return Verdict(True, rung, score,
                       f"pruned at rung {rung}: {score:.6g} is outside the top {keep} of "
                       f"{len(oriented)} at this rung (needs {sign * bar:.6g})")

    def report(self, trial: int, rung: int, score: float) -> bool:
        """Record the score; True when the trial should stop here."""
        return self.judge(trial, rung, score).stop


@dataclass(frozen=True)
class FoldHalving:
    """Successive halving over CV folds: ``rungs`` are fold counts checked before the rest."""

    eta: float = 3.0
    min_trials: int = 3
    rungs: tuple[int, ...] = (1, 2)


def rung_scores(fold_scores: Sequence[float], rungs: Sequence[int]) -> dict[int, float]:
    """The mean of the first ``r`` fold scores for each rung ``r`` the scores reach."""
    return {r: float(np.mean(fold_scores[:r])) for r in rungs if 0 < r <= len(fold_scores)}


def fold_pruner(history: Sequence[TrialRecord], settings: FoldHalving,
                direction: str) -> SuccessiveHalving:
    """A pruner holding the rung scores of the COMPLETE and PRUNED trials in ``history``."""
    pruner = SuccessiveHalving(direction, settings.eta, settings.min_trials)
    for record in history:
        if record.state is TrialState.FAIL:
            continue
        for rung, score in rung_scores(record.fold_scores, settings.rungs).items():
            pruner.record(record.number, rung, score)
    return pruner


@dataclass(frozen=True)
class CVOutcome:
    """Fold scores evaluated, the verdict that stopped the trial (None: all folds ran), and
    the out-of-fold predictions of the folds that ran (NaN rows for the others)."""

    fold_scores: list[float] = field(default_factory=list)
    stopped: Verdict | None = None
    oof: np.ndarray | None = None
    # Scored out of bag: one fit on every row, not one per fold (``oob_validate``).
    out_of_bag: bool = False


def evaluate_with_halving(pipeline: Any, data: TrainingData, task: TaskSpec, trial: int,
                          pruner: SuccessiveHalving, rungs: Sequence[int]) -> CVOutcome:
    """Cross-validate ``pipeline`` fold by fold on the run's folds, asking ``pruner`` at each
    rung below the number of folds whether to go on.

    Raises ``TrialFailed`` (fold numbers as in the full CV) like ``cross_validate``.
    """
    checks = sorted(r for r in set(rungs) if 0 < r < len(data.folds))
    scores: list[float] = []
    oof: np.ndarray | None = None
    for end in [*checks, len(data.folds)]:
        start = len(scores)
        more, part = _folds(pipeline, data, task, start, end)
        scores += more
        oof = part if oof is None else np.where(np.isnan(part), oof, part)
        if end == len(data.folds):
            break
        verdict = pruner.judge(trial, end, float(np.mean(scores)))
        if verdict.stop:
            return CVOutcome(scores, verdict, oof)
    return CVOutcome(scores, oof=oof)


def _folds(pipeline: Any, data: TrainingData, task: TaskSpec, start: int,
           end: int) -> tuple[list[float], np.ndarray]:
    try:
        return cross_validate_oof(pipeline, data.X, data.y, data.folds[start:end], task.metric,
                                  task.positive_class, task.task_type)
    except TrialFailed as err:
        renumbered = re.sub(r"^fold (\d+)", lambda m: f"fold {int(m[1]) + start}", str(err))
        raise TrialFailed(renumbered) from err


def tell_outcome(study: Study, trial: Trial, outcome: CVOutcome, seconds: float) -> TrialRecord:
    """Tell ``study`` the outcome: COMPLETE with the mean score, or PRUNED with no score (a
    partial mean is not comparable to full ones), the partial fold scores, the reason in
    ``error`` and ``pruned_rung`` / ``rung_score`` in ``tuner``."""
    if outcome.stopped is None:
        return study.tell(trial, float(np.mean(outcome.fold_scores)),
                          fold_scores=outcome.fold_scores, seconds=seconds,
                          info={"out_of_bag": True} if outcome.out_of_bag else None)
    verdict = outcome.stopped
    return study.tell(trial, None, state=TrialState.PRUNED, fold_scores=outcome.fold_scores,
                      seconds=seconds, error=verdict.reason,
                      info={"pruned_rung": verdict.rung, "rung_score": verdict.score})
