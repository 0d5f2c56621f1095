"""Where trials train: one contract for in-process, worker processes and Ray; proposals for
parallel workers that see each other's pending trials; and ``--workers`` / ``--executor``
from every way in."""

from __future__ import annotations

import builtins
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import worker_faults

from hyperpilot.agents.tuner.agent import TrainingData, next_family
from hyperpilot.agents.tuner.executors import InProcess, check_kind, make_executor, resolve_kind
from hyperpilot.agents.tuner.samplers import RandomSampler
from hyperpilot.agents.tuner.study import InFlight, Study
from hyperpilot.agents.tuner.workers import WORKER_DIED, TrialPool, TrialStopped
from hyperpilot.pipelines.cli import main
from hyperpilot.pipelines.graph.schedule import lanes_of
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task
from hyperpilot.tools.errors import TaskSpecError, TrialFailed
from hyperpilot.tools.evaluate import make_folds
from hyperpilot.tools.space import FloatDim, SearchSpace
from hyperpilot.tools.types import TrialRecord, TrialState


def _data(rows: int = 60) -> TrainingData:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=rows)})
    y = pd.Series(np.where(X["x"] > 0, "a", "b"))
    return TrainingData(X, y, make_folds(y.to_numpy(), "binary", 3, 0))


def test_the_executor_kinds_are_checked_and_auto_picks_what_can_stop_a_trial() -> None:
    for good in ("auto", "inprocess", "process", "ray", "ray:10.0.0.5:6379"):
        assert check_kind(good) == good
    for bad in ("dask", "process:2", "ray:", "RAY"):
        with pytest.raises(ValueError, match="must be one of"):
            check_kind(bad)
    assert resolve_kind("auto", time_limit=None, workers_given=False) == "inprocess"
    assert resolve_kind("auto", time_limit=30.0, workers_given=False) == "process"
    assert resolve_kind("auto", time_limit=None, workers_given=True) == "process"
    assert resolve_kind("ray", time_limit=None, workers_given=False) == "ray"


def test_in_process_computes_here_and_starts_nothing_past_the_deadline() -> None:
    executor = InProcess(_data(), workers=2)
    assert executor.run(worker_faults.rows, deadline=time.time() + 60) == 60
    with pytest.raises(TrialStopped, match="not started"):
        executor.run(worker_faults.rows, deadline=time.time() - 1)
    assert executor.stopped


def test_a_dead_worker_process_costs_one_rerun_then_fails_the_trial_with_the_reason(
        tmp_path: Path) -> None:
    pool = TrialPool(_data(), workers=2)
    try:
        marker = tmp_path / "died"
        # The worker dies under the trial; a fresh one runs it again and it succeeds.
        assert pool.run(worker_faults.die_once, str(marker), deadline=time.time() + 120) == 60
        assert marker.exists()
        with pytest.raises(TrialFailed, match="died twice"):
            pool.run(worker_faults.die, deadline=time.time() + 120)
        # The pool goes on: both workers were replaced, and the trial's own error is its own.
        assert pool.run(worker_faults.rows, deadline=time.time() + 120) == 60
        with pytest.raises(ValueError, match="a trial's own error"):
            pool.run(worker_faults.fail, deadline=time.time() + 120)
        assert not pool.stopped
    finally:
        pool.close()
    assert WORKER_DIED.startswith("the trial's worker process died twice")


def test_more_callers_than_workers_wait_for_an_idle_worker() -> None:
    from concurrent.futures import ThreadPoolExecutor

    pool = TrialPool(_data(), workers=1)
    try:
        with ThreadPoolExecutor(2) as threads:
            futures = [threads.submit(pool.run, worker_faults.sleep_then_rows, 0.5,
                                      deadline=time.time() + 120) for _ in range(2)]
            assert [f.result() for f in futures] == [60, 60]
    finally:
        pool.close()


SPACE = SearchSpace(dims=[FloatDim(name="a", low=0.0, high=1.0)])


def _study(pending: list[Any], history: list[TrialRecord], number: int) -> Study:
    return Study(SPACE, "maximize", RandomSampler(), np.random.default_rng(number), model="m",
                 plan_id="p", history=history, first_number=number, pending=pending)


def test_a_rebuilt_study_shows_other_workers_pending_trials_to_its_sampler() -> None:
    history = [TrialRecord(number=i, model="m", config={"a": a}, state=TrialState.COMPLETE,
                           score=s, plan_id="p") for i, (a, s) in enumerate([(0.1, 0.5), (0.9, 0.7)])]
    in_flight = InFlight()
    asked = []
    for number in (5, 3):  # workers ask out of number order
        with in_flight.asking(("p", "m")) as pending:
            study = _study(pending, history, number)
            study.enqueue({"a": 0.5})  # the warm start: the second worker must not repeat it
            trial = study.ask()
            in_flight.add(("p", "m"), trial)
        asked.append((trial, study))
    (first, _), (second, study) = asked
    assert first.config == {"a": 0.5} and second.config != first.config
    assert (first.number, second.number) == (5, 3)
    seen = study.sampler_history()
    fantasies = [r for r in seen if r.tuner.get("fantasy")]
    assert [r.number for r in fantasies] == [5, 3]  # the other worker's, and its own
    assert all(r.score == pytest.approx(0.6) for r in fantasies)  # the mean observed score
    record = study.tell(second, 0.8)
    in_flight.told(("p", "m"), second.number)
    assert record.number == 3 and [t.number for t in in_flight.of(("p", "m"))] == [5]
    with pytest.raises(ValueError, match="not pending"):
        study.tell(first, 0.1)  # told to the study that asked it


def test_families_count_their_running_trials_and_spare_workers_go_to_plans_in_turn() -> None:
    allocation = {"a": 2, "b": 2}
    assert next_family(allocation, [], running=["a"]) == "b"
    assert next_family(allocation, [], running=["a", "b", "a", "b"]) is None
    assert lanes_of(3, 1) == [[0], [1], [2]]
    assert lanes_of(2, 5) == [[0, 2, 4], [1, 3]]
    assert lanes_of(1, 2) == [[0, 1]]


@pytest.mark.parametrize("executor", ["process", "inprocess"])
def test_a_run_with_two_workers_finishes_verified_with_every_trial_told(
        tmp_path: Path, executor: str) -> None:
    options = RunOptions(trials=8, plans=1, workers=2, executor=executor, llm="none",
                         experience=None, seed=1)
    state = run_task("predict the species, optimise accuracy", "sklearn:iris",
                     tmp_path / "run", options)
    assert state["status"] == "ok"
    trials = [TrialRecord.model_validate(t) for t in state["trials"]]
    assert len(trials) == 8 and len({t.number for t in trials}) == 8
    assert all(t.state == TrialState.COMPLETE for t in trials)
    configs = [(t.model, str(sorted(t.config.items()))) for t in trials]
    assert len(set(configs)) == len(configs)  # parallel asks never repeat a config


def test_ray_missing_is_one_line_before_anything_trains(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(TaskSpecError, match=r"pip install 'hyperpilot\[ray\]'"):
        make_executor("ray", _data(), 2, None)
    out = tmp_path / "run"
    code = main(["run", "predict the species", "--data", "sklearn:iris", "--executor", "ray",
                 "--out", str(out), "--llm", "none", "--no-experience"])
    assert code == 2
    assert capsys.readouterr().err == ("hyperpilot: error: --executor ray needs Ray: "
                                       "pip install 'hyperpilot[ray]'\n")
    assert not out.exists()


def test_a_ray_cluster_that_does_not_answer_is_one_line_in_seconds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    out = tmp_path / "run"
    started = time.time()
    code = main(["run", "predict the species", "--data", "sklearn:iris", "--executor",
                 "ray:127.0.0.1:1", "--out", str(out), "--llm", "none", "--no-experience"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("hyperpilot: error: --executor: cannot reach the Ray "
                                        "cluster at 127.0.0.1:1: ") and err.count("\n") == 1
    assert time.time() - started < 30 and not out.exists()
