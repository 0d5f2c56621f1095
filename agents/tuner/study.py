"""The study: ask/tell over one search space, owning the history its sampler reads.

Pending trials (asked, not yet told) are shown to the sampler as fantasies, the constant
liar of parallel Bayesian optimisation: each pending config is added to the history the
sampler reads as a COMPLETE record whose score is a lie (by default the mean score
observed), flagged by ``FANTASY`` in its ``tuner`` info. A model-based sampler then treats
the pending configs as known and unremarkable, so a batch spreads out instead of repeating
one proposal. The worst score spreads a batch further but, refitted on every ask, drags a
GP away from the optimum while its lies sit next to it; the mean spreads a GP batch about
5x (minimum pairwise distance) and still converges. Without pending trials the sampler
reads exactly the told history.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hyperpilot.agents.tuner.history import observed
from hyperpilot.agents.tuner.samplers import DIRECTIONS, RandomSampler, Sampler
from hyperpilot.tools.space import SearchSpace
from hyperpilot.tools.types import Config, TrialRecord, TrialState, best_trial

logger = logging.getLogger(__name__)

SAMPLER_RETRIES = 3  # proposals asked of the study's sampler before falling back to random
RANDOM_RETRIES = 20
LIARS = ("worst", "mean", "best")
FANTASY = "fantasy"  # key in a fantasy record's ``tuner`` info; its value names the lie


@dataclass(frozen=True)
class Trial:
    """A config handed out by ``Study.ask`` and not yet told. ``sampler`` names who
    proposed it: a sampler's name, or ``"enqueued:<source>"``."""

    number: int
    config: Config
    sampler: str
    info: dict[str, Any] = field(default_factory=dict, compare=False)


class Study:
    """Ask/tell optimisation of one model's config over ``space``.

    ``history`` rebuilds a study from stored records (resume). ``first_number`` is the next
    trial number to hand out, for runs where several studies share one numbering (it may
    be below numbers in ``history``: parallel workers finish out of order); it defaults to
    one past the highest number in ``history``. ``liar`` is the score pending
    trials are shown to the sampler with (``"worst"``, ``"mean"`` or ``"best"`` observed
    score), or None to hide pending trials from the sampler. ``pending`` are trials of this
    space asked of another study and not yet told (other workers' trials, in a study rebuilt
    from the stored history for each ask): the sampler sees them as fantasies too, and their
    configs are not handed out again; they are told to the study that asked them.
    """

    def __init__(self, space: SearchSpace, direction: str, sampler: Sampler,
                 rng: np.random.Generator, *, model: str = "", plan_id: str = "",
                 history: Sequence[TrialRecord] = (), first_number: int | None = None,
                 liar: str | None = "mean", pending: Sequence[Trial] = ()) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if liar is not None and liar not in LIARS:
            raise ValueError(f"liar must be one of {LIARS} or None, got {liar!r}")
        numbers = [r.number for r in history]
        if len(numbers) != len(set(numbers)):
            raise ValueError("history has repeated trial numbers")
        next_number = max(numbers) + 1 if numbers else 0
        if first_number is not None and first_number in numbers:
            raise ValueError(f"first_number {first_number} would reuse a number in history")
        self.space = space
        self.direction = direction
        self.sampler = sampler
        self.rng = rng
        self.model = model
        self.plan_id = plan_id
        self.liar = liar
        self._records: list[TrialRecord] = list(history)
        self._next_number = next_number if first_number is None else first_number
        self._pending: dict[int, Trial] = {}
        self._queue: deque[tuple[Config, str]] = deque()
        self._others = [t for t in pending if t.number not in set(numbers)]
        self._keys: set[str] = {space.key(r.config) for r in history}
        self._keys.update(space.key(t.config) for t in self._others)

    @property
    def history(self) -> tuple[TrialRecord, ...]:
        return tuple(self._records)

    @property
    def n_complete(self) -> int:
        return sum(r.state is TrialState.COMPLETE for r in self._records)

    @property
    def best(self) -> TrialRecord | None:
        """The best COMPLETE record by the study's direction; the lowest number wins a tie."""
        return best_trial(self._records, self.direction)

    @property
    def pending(self) -> tuple[Trial, ...]:
        """Trials asked and not yet told."""
        return tuple(self._pending.values())

    def enqueue(self, config: Config, source: str = "default") -> None:
        """Evaluate ``config`` before anything the sampler proposes, in enqueue order.

        It is repaired into the space (``ValueError`` if it cannot be); a config already
        tried, pending or queued is skipped silently.
        """
        repaired = self.space.repair(config)
        key = self.space.key(repaired)
        if key in self._keys:
            logger.debug("skipping duplicate enqueued config %s", key)
            return
        self._keys.add(key)
        self._queue.append((repaired, source))

    def ask(self) -> Trial:
        """The next queued config, else the sampler's proposal, avoiding configs already
        tried or pending (a space too small for that gets a repeat rather than a hang)."""
        if self._queue:
            queued, source = self._queue.popleft()
            return self._hand_out(queued, {}, sampler=f"enqueued:{source}")
        proposal = self._propose(self.sampler, SAMPLER_RETRIES)
        if proposal is not None:
            return self._hand_out(*proposal, sampler=self.sampler.name)
        logger.info("sampler %s kept repeating tried configs; sampling at random",
                    self.sampler.name)
        fallback = RandomSampler()
        proposal = self._propose(fallback, RANDOM_RETRIES)
        if proposal is None:
            proposal = (self.space.sample(self.rng), {})
        return self._hand_out(*proposal, sampler=fallback.name)

    def ask_batch(self, n: int) -> list[Trial]:
        """``n`` trials with distinct configs (as far as the space allows), for parallel
        workers; tell each when it finishes. Each proposal sees the earlier ones (and any
        other pending trial) as fantasies, so the batch spreads out."""
        return [self.ask() for _ in range(n)]

    def sampler_history(self) -> tuple[TrialRecord, ...]:
        """What the sampler reads: the told records, plus the pending trials as fantasies
        (see the module docstring); exactly ``history`` when nothing is pending."""
        waiting = self._others + list(self._pending.values())
        if self.liar is None or not waiting:
            return self.history
        return with_fantasies(self.history, waiting, self.space, self.direction, self.liar,
                              model=self.model)

    def tell(self, trial: Trial, score: float | None = None, *,
             state: TrialState = TrialState.COMPLETE, fold_scores: Sequence[float] = (),
             seconds: float = 0.0, error: str = "",
             info: dict[str, Any] | None = None) -> TrialRecord:
        """Record the outcome of a pending trial and return its frozen record.

        A COMPLETE trial without a finite score is recorded as FAIL with the reason.
        ``info`` is added to the proposal's explanation in ``TrialRecord.tuner`` (e.g. the
        rung where a pruner stopped the trial).
        ``ValueError`` if ``trial`` was never asked of this study or was already told.
        """
        if self._pending.get(trial.number) != trial:
            raise ValueError(f"trial {trial.number} is not pending in this study "
                             "(unknown or already told)")
        finite = score is not None and math.isfinite(score)
        if state is TrialState.COMPLETE and not finite:
            state = TrialState.FAIL
            reason = "no score reported" if score is None else f"non-finite score {score}"
            error = f"{error}; {reason}" if error else reason
        record = TrialRecord(
            number=trial.number, model=self.model, config=dict(trial.config), state=state,
            score=float(score) if finite and score is not None else None,
            fold_scores=[float(s) for s in fold_scores], seconds=float(seconds),
            sampler=trial.sampler, plan_id=self.plan_id, error=error,
            tuner={**trial.info, **(info or {})})
        del self._pending[trial.number]
        self._records.append(record)
        return record

    def _propose(self, sampler: Sampler, tries: int) -> tuple[Config, dict[str, Any]] | None:
        """A valid, untried proposal from ``sampler`` and its explanation (from samplers with
        ``propose``, e.g. surrogate weights), or None after ``tries`` attempts."""
        history = self.sampler_history()
        for _ in range(tries):
            explain = getattr(sampler, "propose", None)
            if explain is not None:
                raw, info = explain(history, self.space, self.rng, direction=self.direction)
            else:
                raw, info = sampler.suggest(history, self.space, self.rng,
                                            direction=self.direction), {}
            try:
                config = self.space.repair(raw)
            except ValueError as err:
                logger.warning("sampler %s proposed an invalid config: %s", sampler.name, err)
                continue
            if self.space.key(config) not in self._keys:
                return config, info
        return None

    def _hand_out(self, config: Config, info: dict[str, Any], *, sampler: str) -> Trial:
        while any(r.number == self._next_number for r in self._records):
            self._next_number += 1  # numbers shared with other studies leave gaps
        trial = Trial(number=self._next_number, config=config, sampler=sampler, info=info)
        self._next_number += 1
        self._keys.add(self.space.key(config))
        self._pending[trial.number] = trial
        return trial


class InFlight:
    """The trials asked and not yet told across the workers of a run, by study (a key such
    as ``(plan id, family)``). ``asking(key)`` holds that study's lock while it is rebuilt
    and asked, and gives the trials other workers have in flight for it, to pass as the
    study's ``pending``; ``add`` the asked trial before leaving, ``told`` once it is told.
    Two workers asking one study at once thus never get the same config, and each proposal
    sees the others as fantasies; asks of different studies do not wait for each other."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the two dicts
        self._asking: dict[Hashable, threading.Lock] = {}
        self._trials: dict[Hashable, dict[int, Trial]] = {}

    @contextmanager
    def asking(self, key: Hashable) -> Iterator[list[Trial]]:
        with self._lock:
            lock = self._asking.setdefault(key, threading.Lock())
        with lock:
            yield self.of(key)

    def add(self, key: Hashable, trial: Trial) -> None:
        with self._lock:
            self._trials.setdefault(key, {})[trial.number] = trial

    def told(self, key: Hashable, number: int) -> None:
        with self._lock:
            self._trials.get(key, {}).pop(number, None)

    def of(self, key: Hashable) -> list[Trial]:
        with self._lock:
            return list(self._trials.get(key, {}).values())


def lie(history: Sequence[TrialRecord], space: SearchSpace, direction: str,
        liar: str) -> float | None:
    """The score told for pending configs: the worst, mean or best finite COMPLETE score of
    ``space`` in ``history`` by ``direction`` (in the study's own units); None without one."""
    _, oriented = observed(history, space, direction)
    if not len(oriented):
        return None
    value = {"worst": np.min(oriented), "mean": np.mean(oriented), "best": np.max(oriented)}[liar]
    return float(value) * (1.0 if direction == "maximize" else -1.0)


def with_fantasies(history: Sequence[TrialRecord], pending: Sequence[Trial], space: SearchSpace,
                   direction: str, liar: str = "mean", *,
                   model: str = "") -> tuple[TrialRecord, ...]:
    """``history`` plus one COMPLETE fantasy record per pending trial, scored by ``lie``.

    A fantasy's ``tuner`` info is the pending trial's own (so LLM calls it spent still
    count against a budget) plus ``{FANTASY: liar}``. Without an observed score to lie
    with, ``history`` is returned unchanged: samplers are still sampling at random then.
    """
    score = lie(history, space, direction, liar)
    if score is None or not pending:
        return tuple(history)
    fantasies = [TrialRecord(number=t.number, model=model, config=dict(t.config),
                             state=TrialState.COMPLETE, score=score, sampler=t.sampler,
                             tuner={**t.info, FANTASY: liar}) for t in pending]
    return (*history, *fantasies)
