"""The tuner benchmark: protocol, result files, summary maths and the command line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from hyperpilot.pipelines import bench
from hyperpilot.pipelines.bench_summary import add_regret_and_rank
from hyperpilot.pipelines.bench_tasks import make_task
from hyperpilot.pipelines.cli import main


def test_tasks_follow_the_protocol() -> None:
    task = make_task("diabetes", "svm", 3)
    assert len(task.y) + len(task.y_test) == 442 and len(task.y_test) == 89
    assert abs(task.y.mean()) < 1e-9 and task.y.std() == pytest.approx(1.0)
    assert "epsilon" in task.space.names
    config = task.space.sample(__import__("numpy").random.default_rng(0))
    assert task.cv(config) < 0 and task.cv(config) == task.cv(dict(config))


def test_regret_and_rank_are_relative_to_the_best_known_and_the_initial_design() -> None:
    rows = [("a", 5, 0.5), ("a", 30, 0.9), ("b", 5, 0.5), ("b", 30, 0.7)]
    frame = pd.DataFrame([{"method": m, "dataset": "d", "model": "m", "seed": 0, "n_evals": n,
                           "best_cv": v, "test_of_best": v, "overhead_s": 0.0} for m, n, v in rows])
    out = add_regret_and_rank(frame).set_index(["method", "n_evals"])
    assert out.loc[("a", 30), "regret"] == 0 and out.loc[("b", 30), "regret"] == pytest.approx(0.5)
    assert out.loc[("a", 5), "regret"] == 1
    assert out.loc[("a", 30), "rank"] == 1 and out.loc[("b", 5), "rank"] == 1.5


def test_a_small_run_writes_results_and_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "N_TRIALS", 5)
    plan = bench.Plan(("iris",), ("dt",), (0,), ["random", "tpe", "surrogate-noise-llm", "llambo-local"])
    results = bench.run_benchmark(plan, tmp_path, jobs=1, command="hyperpilot bench tuner --test")
    saved = pd.read_csv(tmp_path / "results.csv")
    assert list(saved.columns) == bench.COLUMNS and len(saved) == len(results) == 9
    assert set(saved["method"]) == {"random", "tpe", "surrogate-noise-llm"}
    assert (saved[saved["n_evals"] == 5]["best_cv"].nunique()) == 1  # the shared initial design
    summary = (tmp_path / "summary.md").read_text()
    assert "Skipped: llambo-local: no local model" in summary
    assert "| random |" in summary and "hyperpilot bench tuner --test" in summary


def test_an_interrupted_run_resumes_its_finished_tasks(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "N_TRIALS", 3)
    first = bench.run_benchmark(bench.Plan(("iris",), ("dt",), (0,), ["random"]), tmp_path, jobs=1)
    calls: list[tuple[str, str, int]] = []
    real = bench.run_task

    def counted(dataset: str, model: str, seed: int, methods: list[str]) -> object:
        calls.append((dataset, model, seed))
        return real(dataset, model, seed, methods)

    monkeypatch.setattr(bench, "run_task", counted)
    both = bench.run_benchmark(bench.Plan(("iris",), ("dt",), (0, 1), ["random"]), tmp_path, jobs=1)
    assert calls == [("iris", "dt", 1)] and len(both) == 2 * len(first)
    again = bench.run_benchmark(bench.Plan(("iris",), ("dt",), (0,), ["random", "tpe"]), tmp_path,
                                jobs=1)
    assert calls[-1] == ("iris", "dt", 0) and set(again["method"]) == {"random", "tpe"}


def test_unknown_methods_are_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "tuner", "--quick", "--methods", "tpe,cmaes"]) == 2
    assert "unknown methods ['cmaes']" in capsys.readouterr().err
