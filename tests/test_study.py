"""Ask/tell semantics of the study: queue, duplicates, records, best, resume, batches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pydantic
import pytest

from hyperpilot.agents.tuner.samplers import GPSampler, RandomSampler, make_sampler
from hyperpilot.agents.tuner.study import FANTASY, Study, Trial
from hyperpilot.tools.space import CategoricalDim, FloatDim, IntDim, SearchSpace
from hyperpilot.tools.types import Config, TrialRecord, TrialState

SPACE = SearchSpace(dims=[
    FloatDim(name="lr", low=1e-4, high=1.0, log=True),
    IntDim(name="depth", low=1, high=10),
    CategoricalDim(name="weights", choices=[None, "balanced"]),
])
A: Config = {"lr": 0.1, "depth": 3, "weights": None}
B: Config = {"lr": 0.01, "depth": 5, "weights": "balanced"}


class FixedSampler:
    """Always proposes the same config, to exercise the study's duplicate handling."""

    name = "fixed"

    def __init__(self, config: Config) -> None:
        self.config = config

    def suggest(self, history: Sequence[TrialRecord], space: SearchSpace,
                rng: np.random.Generator, *, direction: str = "maximize") -> Config:
        return dict(self.config)


def make_study(direction: str = "maximize", sampler: object | None = None,
               space: SearchSpace = SPACE, **kwargs: object) -> Study:
    return Study(space, direction, sampler or RandomSampler(),  # type: ignore[arg-type]
                 np.random.default_rng(0), model="rf", plan_id="plan-1", **kwargs)  # type: ignore[arg-type]


def finish(study: Study, scores: Sequence[float]) -> list[TrialRecord]:
    return [study.tell(study.ask(), s) for s in scores]


def test_enqueued_configs_come_first_in_order_then_the_sampler() -> None:
    study = make_study()
    study.enqueue(A, source="llm")
    study.enqueue(B)
    first, second, third = study.ask(), study.ask(), study.ask()
    assert (first.config, first.sampler) == (A, "enqueued:llm")
    assert (second.config, second.sampler) == (B, "enqueued:default")
    assert third.sampler == "random"
    assert [first.number, second.number, third.number] == [0, 1, 2]


def test_enqueue_repairs_into_the_space_and_rejects_what_it_cannot_repair() -> None:
    study = make_study()
    study.enqueue({"lr": 5, "depth": 3.7, "weights": "None"})
    assert study.ask().config == {"lr": 1.0, "depth": 4, "weights": None}
    with pytest.raises(ValueError, match="weights"):
        study.enqueue({**A, "weights": "uniform"})
    with pytest.raises(ValueError, match="unknown"):
        study.enqueue({**A, "gamma": 1.0})
    with pytest.raises(ValueError, match="missing"):
        study.enqueue({"lr": 0.1})


def test_enqueue_skips_configs_already_queued_pending_or_tried() -> None:
    study = make_study()
    study.enqueue(A)
    study.enqueue(dict(A))
    study.tell(study.ask(), 0.5)
    study.enqueue(A)
    study.enqueue({**A, "depth": 3.2})  # repairs to A
    assert study.ask().sampler == "random"
    assert [r.config for r in study.history] == [A]


def test_a_repeated_proposal_falls_back_to_random() -> None:
    study = make_study(sampler=FixedSampler(A))
    first = study.ask()
    second = study.ask()  # A is pending, so it counts as tried
    assert (first.config, first.sampler) == (A, "fixed")
    assert second.config != A and second.sampler == "random"


def test_a_sampler_proposal_is_repaired_into_the_space() -> None:
    study = make_study(sampler=FixedSampler({"lr": 3.0, "depth": 0, "weights": "balanced"}))
    assert study.ask().config == {"lr": 1.0, "depth": 1, "weights": "balanced"}


def test_an_exhausted_space_repeats_rather_than_hangs() -> None:
    tiny = SearchSpace(dims=[CategoricalDim(name="c", choices=["only"])])
    study = make_study(space=tiny, sampler=FixedSampler({"c": "only"}))
    study.tell(study.ask(), 1.0)
    assert study.ask().config == {"c": "only"}


def test_tell_makes_a_frozen_record_with_the_study_context() -> None:
    study = make_study()
    trial = study.ask()
    record = study.tell(trial, 0.8, fold_scores=[0.7, 0.9], seconds=1.5)
    assert record == TrialRecord(number=trial.number, model="rf", config=trial.config,
                                 state=TrialState.COMPLETE, score=0.8, fold_scores=[0.7, 0.9],
                                 seconds=1.5, sampler="random", plan_id="plan-1")
    assert study.history == (record,)
    with pytest.raises(pydantic.ValidationError):
        record.score = 1.0


@pytest.mark.parametrize(("score", "reason"), [(None, "no score"), (float("nan"), "non-finite"),
                                               (float("inf"), "non-finite")])
def test_a_complete_trial_without_a_finite_score_is_a_failure(score: float | None,
                                                               reason: str) -> None:
    study = make_study()
    record = study.tell(study.ask(), score)
    assert record.state is TrialState.FAIL
    assert record.score is None
    assert reason in record.error


def test_failures_keep_their_reason_and_do_not_count_as_complete() -> None:
    study = make_study()
    failed = study.tell(study.ask(), state=TrialState.FAIL, error="TrialFailed: out of memory")
    pruned = study.tell(study.ask(), 0.3, state=TrialState.PRUNED)
    assert (failed.state, failed.error) == (TrialState.FAIL, "TrialFailed: out of memory")
    assert (pruned.state, pruned.score) == (TrialState.PRUNED, 0.3)
    assert study.n_complete == 0
    assert study.best is None


def test_telling_an_unknown_or_finished_trial_raises() -> None:
    study = make_study()
    trial = study.ask()
    study.tell(trial, 0.1)
    with pytest.raises(ValueError, match="already told"):
        study.tell(trial, 0.2)
    with pytest.raises(ValueError, match="not pending"):
        study.tell(Trial(number=99, config=A, sampler="random"), 0.2)
    impostor = study.ask()
    with pytest.raises(ValueError):
        study.tell(Trial(number=impostor.number, config=B, sampler="random"), 0.2)
    assert len(study.history) == 1


@pytest.mark.parametrize(("direction", "expected"), [("maximize", 0.9), ("minimize", 0.1)])
def test_best_follows_the_direction(direction: str, expected: float) -> None:
    study = make_study(direction)
    finish(study, [0.5, 0.9, 0.1, 0.9])
    study.tell(study.ask(), state=TrialState.FAIL, error="boom")
    assert study.best is not None and study.best.score == expected
    assert study.best.number == (1 if direction == "maximize" else 2)  # earliest of a tie
    assert study.n_complete == 4


def test_a_rebuilt_study_continues_numbering_and_avoids_tried_configs() -> None:
    original = make_study()
    original.enqueue(A)
    finish(original, [0.2, 0.4, 0.6])
    rebuilt = make_study(history=original.history, sampler=FixedSampler(A))
    assert rebuilt.history == original.history
    assert rebuilt.best == original.best
    trial = rebuilt.ask()
    assert trial.number == 3
    assert trial.config != A
    rebuilt.enqueue(A)
    assert rebuilt.ask().sampler != "enqueued:default"


def test_first_number_continues_a_run_wide_numbering() -> None:
    study = make_study(first_number=40)
    assert [t.number for t in study.ask_batch(3)] == [40, 41, 42]
    records = finish(make_study(), [0.1, 0.2])
    assert make_study(history=records, first_number=10).ask().number == 10
    with pytest.raises(ValueError, match="first_number"):
        make_study(history=records, first_number=1)


def test_ask_batch_gives_distinct_configs_and_each_can_be_told() -> None:
    small = SearchSpace(dims=[IntDim(name="k", low=0, high=7)])
    study = make_study(space=small)
    batch = study.ask_batch(8)
    assert sorted(t.config["k"] for t in batch) == list(range(8))
    assert len(study.pending) == 8
    for trial in reversed(batch):
        study.tell(trial, float(trial.config["k"]))
    assert study.best is not None and study.best.config == {"k": 7}
    assert not study.pending


def test_gp_study_runs_end_to_end() -> None:
    space = SearchSpace(dims=[FloatDim(name="x", low=-1.0, high=1.0)])
    study = make_study("minimize", sampler=GPSampler(n_startup=3), space=space)
    for _ in range(12):
        trial = study.ask()
        study.tell(trial, (trial.config["x"] - 0.25) ** 2)
    assert [r.number for r in study.history] == list(range(12))
    assert {r.sampler for r in study.history} == {"gp"}
    assert study.best is not None and abs(study.best.config["x"] - 0.25) < 0.05


@pytest.mark.parametrize("direction", ["max", "Maximize", ""])
def test_a_bad_direction_raises(direction: str) -> None:
    with pytest.raises(ValueError, match="direction"):
        make_study(direction)


# --- pending trials as fantasies (constant liar) ---------------------------------------

UNIT_SQUARE = SearchSpace(dims=[FloatDim(name="a", low=0.0, high=1.0),
                                FloatDim(name="b", low=0.0, high=1.0)])


def bowl(config: Config) -> float:
    return -((config["a"] - 0.3) ** 2 + (config["b"] - 0.7) ** 2)


def told_study(sampler: object, seed: int, liar: str | None = "mean", n: int = 10) -> Study:
    study = make_study(sampler=sampler, space=UNIT_SQUARE, liar=liar)
    study.rng = np.random.default_rng(seed)
    for _ in range(n):
        trial = study.ask()
        study.tell(trial, bowl(trial.config))
    return study


def min_pairwise_distance(batch: Sequence[Trial]) -> float:
    points = np.array([[t.config["a"], t.config["b"]] for t in batch])
    gaps = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    return float(gaps[np.triu_indices(len(points), k=1)].min())


@pytest.mark.parametrize("name", ["gp", "surrogate"])
def test_a_batch_spreads_out_when_pending_trials_are_fantasised(name: str) -> None:
    with_lies, without = [], []
    for seed in range(3):
        batch = told_study(make_sampler(name), seed).ask_batch(4)
        assert len({UNIT_SQUARE.key(t.config) for t in batch}) == 4
        assert all(UNIT_SQUARE.contains(t.config) for t in batch)
        assert all(t.sampler == name and t.info.get("phase", "model") == "model" for t in batch)
        with_lies.append(min_pairwise_distance(batch))
        without.append(min_pairwise_distance(told_study(make_sampler(name), seed, None).ask_batch(4)))
    assert np.median(with_lies) > 3 * np.median(without)


def test_fantasies_carry_the_lie_and_a_flag_and_leave_the_history_alone() -> None:
    study = make_study("minimize", space=UNIT_SQUARE, liar="worst")
    for score in (0.2, 0.5, 0.8):
        study.tell(study.ask(), score)
    pending = study.ask_batch(2)
    view = study.sampler_history()
    assert view[:3] == study.history and len(study.history) == 3
    assert [(r.number, r.config, r.state, r.score) for r in view[3:]] == [
        (t.number, t.config, TrialState.COMPLETE, 0.8) for t in pending]
    assert all(r.tuner[FANTASY] == "worst" for r in view[3:])
    study.liar = "best"
    assert {r.score for r in study.sampler_history()[3:]} == {0.2}
    study.liar = "mean"
    assert [r.score for r in study.sampler_history()[3:]] == pytest.approx([0.5, 0.5])


def test_without_pending_trials_or_scores_the_sampler_reads_the_told_history() -> None:
    study = make_study(space=UNIT_SQUARE)
    study.ask_batch(3)  # nothing told yet: no score to lie with
    assert study.sampler_history() == ()
    for trial in study.pending:
        study.tell(trial, bowl(trial.config))
    assert study.sampler_history() == study.history


def test_sequential_proposals_do_not_depend_on_the_liar() -> None:
    def proposals(liar: str | None) -> list[Config]:
        return [r.config for r in told_study(GPSampler(), seed=5, liar=liar, n=9).history]

    assert proposals("worst") == proposals(None) == proposals("mean")


def test_a_bad_liar_raises() -> None:
    with pytest.raises(ValueError, match="liar"):
        make_study(liar="pessimist")


@pytest.mark.parametrize("name", ["gp", "tpe"])
def test_k_workers_telling_as_each_finishes_find_the_optimum(name: str) -> None:
    study = make_study(sampler=make_sampler(name), space=UNIT_SQUARE)
    running = study.ask_batch(4)
    order = np.random.default_rng(1)
    while len(study.history) < 36:
        done = running.pop(int(order.integers(len(running))))  # workers finish out of order
        study.tell(done, bowl(done.config))
        running.append(study.ask())
    assert len({UNIT_SQUARE.key(r.config) for r in study.history}) == len(study.history)
    assert study.best is not None and study.best.score > -0.05**2
