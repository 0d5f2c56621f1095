"""The tuner benchmark: protocol, result files, summary maths and the command line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fakes import FunctionLLM
from scripts import load_script

from hyperpilot.agents.llm import LLM
from hyperpilot.agents.tuner.surrogates import GPSurrogate
from hyperpilot.pipelines.bench import llm as bench_llm
from hyperpilot.pipelines.bench import main as bench_main
from hyperpilot.pipelines.bench.llm import (
    LLM_BUDGET_ENV,
    LLM_SPEC_ENV,
    TRANSCRIPTS_ENV,
    Recording,
    ReplayMismatch,
    llm_method,
    local_model_method,
    run_recorded,
)
from hyperpilot.pipelines.bench.main import BenchGrid
from hyperpilot.pipelines.bench.methods import MethodUnavailable, Trace
from hyperpilot.pipelines.bench.summary import add_regret_and_rank
from hyperpilot.pipelines.bench.tasks import BenchTask, make_task
from hyperpilot.pipelines.cli import main
from hyperpilot.tools.types import Config


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
    monkeypatch.setattr(bench_main, "N_TRIALS", 5)
    monkeypatch.setenv("HYPERPILOT_LLAMA_SERVER", str(tmp_path / "no-llama-server"))  # no local model
    grid = BenchGrid(("iris",), ("dt",), (0,), ["random", "tpe", "surrogate-noise-llm", "llambo-local"])
    results = bench_main.run_benchmark(grid, tmp_path, jobs=1, command="hyperpilot bench tuner --test")
    saved = pd.read_csv(tmp_path / "results.csv")
    assert list(saved.columns) == bench_main.COLUMNS and len(saved) == len(results) == 9
    assert set(saved["method"]) == {"random", "tpe", "surrogate-noise-llm"}
    assert (saved[saved["n_evals"] == 5]["best_cv"].nunique()) == 1  # the shared initial design
    summary = (tmp_path / "summary.md").read_text()
    skipped = [line for line in summary.splitlines() if line.startswith("- Skipped: llambo-local")]
    assert len(skipped) == 1 and "the local model is not available" in skipped[0]
    assert "| random |" in summary and "hyperpilot bench tuner --test" in summary


def test_an_interrupted_run_resumes_its_finished_tasks(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_main, "N_TRIALS", 3)
    first = bench_main.run_benchmark(BenchGrid(("iris",), ("dt",), (0,), ["random"]), tmp_path, jobs=1)
    calls: list[tuple[str, str, int]] = []
    real = bench_main.run_bench_task

    def counted(dataset: str, model: str, seed: int, methods: list[str]) -> object:
        calls.append((dataset, model, seed))
        return real(dataset, model, seed, methods)

    monkeypatch.setattr(bench_main, "run_bench_task", counted)
    both = bench_main.run_benchmark(BenchGrid(("iris",), ("dt",), (0, 1), ["random"]), tmp_path, jobs=1)
    assert calls == [("iris", "dt", 1)] and len(both) == 2 * len(first)
    again = bench_main.run_benchmark(BenchGrid(("iris",), ("dt",), (0,), ["random", "tpe"]), tmp_path,
                                     jobs=1)
    assert calls[-1] == ("iris", "dt", 0) and set(again["method"]) == {"random", "tpe"}


def test_unknown_methods_are_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "tuner", "--quick", "--methods", "tpe,cmaes"]) == 2
    assert "unknown methods ['cmaes']" in capsys.readouterr().err


# --- the LLM methods: recording and exact replay ---------------------------------------

# One task of `hyperpilot bench tuner --datasets wine --models dt --seeds 1 --methods
# surrogate,llambo-local`, run with PINNED_NUMERICS (below) in the environment: the embedded
# 0.5B model's calls and the trials they decided, copied from OUT/transcripts/llambo-local/.
RECORDED = Path(__file__).parent / "data" / "llambo-local"


def initial_design(task: BenchTask) -> list[Config]:
    rng = np.random.default_rng([task.seed, 2024])  # as bench_main.run_bench_task draws it
    return [task.space.sample(rng) for _ in range(bench_main.N_INITIAL)]


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# The replay runs in a fresh process pinned to one code path of the numeric libraries (numpy's
# AVX2 kernels, OpenBLAS's Haswell ones), as the recording was made: a GP proposal computed by
# another CPU's kernels can differ in its last bit, and the search then takes another turn.
PINNED_NUMERICS = {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
                   "OPENBLAS_CORETYPE": "Haswell"}
REPLAY = """
import json
from threadpoolctl import threadpool_limits
from hyperpilot.pipelines.bench import main as bench_main
from hyperpilot.pipelines.bench.llm import llm_method
from hyperpilot.pipelines.bench.tasks import make_task
from test_bench import initial_design
task = make_task("wine", "dt", 0)
with threadpool_limits(limits=1):  # as bench_main.run_bench_task runs every method
    trace = llm_method(task, initial_design(task), bench_main.N_TRIALS, 0)
print(json.dumps([[step.config, step.score] for step in trace]))
"""


def test_the_recorded_local_model_run_replays_exactly(tmp_path: Path) -> None:
    env = {**os.environ, **PINNED_NUMERICS, LLM_SPEC_ENV: f"replay:{RECORDED}",
           TRANSCRIPTS_ENV: str(tmp_path), "PYTHONPATH": str(Path(__file__).parent)}
    env.pop(LLM_BUDGET_ENV, None)  # the budget comes from the recording's run.json
    done = subprocess.run([sys.executable, "-c", REPLAY], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    recorded = read_lines(RECORDED / "wine-dt-0.trials.jsonl")
    assert json.loads(done.stdout) == [[r["config"], r["score"]] for r in recorded]
    replayed = read_lines(tmp_path / "llambo" / "wine-dt-0.trials.jsonl")
    assert [r["tuner"] for r in replayed] == [r["tuner"] for r in recorded]
    assert sum(r["tuner"].get("llm_calls", 0) for r in recorded) > 0  # the model did take part


def outcomes(trace: Trace) -> list[tuple[Config, float]]:
    return [(step.config, step.score) for step in trace]


def answer_in_order(messages: list[dict[str, str]], schema: str) -> object:
    """A deterministic stand-in for a model: no proposals, rising scores in prompt order."""
    if schema == "ConfigProposals":
        return {"configs": []}
    count = len(re.findall(r"^\d+\. ", messages[-1]["content"].split("in order:")[1], flags=re.M))
    return {"scores": [0.5 + 0.01 * i for i in range(count)]}


def record_fake_run(folder: Path, task: BenchTask, budget: int) -> Trace:
    recording = Recording(folder, "llambo")
    llm = LLM(FunctionLLM(answer_in_order), transcript=recording.transcript(task))
    return run_recorded(llm, task, initial_design(task), 4, 0, budget, recording, {"llm": "function"})


def replay(monkeypatch: pytest.MonkeyPatch, target: Path, task: BenchTask,
           budget: int | None = None) -> Trace:
    monkeypatch.setenv(LLM_SPEC_ENV, f"replay:{target}")
    if budget is None:
        monkeypatch.delenv(LLM_BUDGET_ENV, raising=False)
    else:
        monkeypatch.setenv(LLM_BUDGET_ENV, str(budget))
    return llm_method(task, initial_design(task), 4, 0)


def test_replay_is_exact_and_fails_on_a_partly_played_or_diverging_recording(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRANSCRIPTS_ENV, raising=False)
    task = make_task("iris", "dt", 0)
    folder = tmp_path / "rec"
    recorded = record_fake_run(folder, task, budget=6)
    calls = folder / "iris-dt-0.jsonl"
    assert len(read_lines(calls)) == 6 and json.loads((folder / "run.json").read_text())["llm_budget"] == 6
    assert outcomes(replay(monkeypatch, folder, task)) == outcomes(recorded)
    assert outcomes(replay(monkeypatch, calls, task)) == outcomes(recorded)
    with pytest.raises(ReplayMismatch, match="only 3 of 6 recorded calls were played"):
        replay(monkeypatch, folder, task, budget=3)
    with pytest.raises(ReplayMismatch, match="asks for call 7, the recording has 6"):
        replay(monkeypatch, folder, task, budget=9)
    lines = calls.read_text().splitlines()
    first = json.loads(lines[0])
    first["messages"][-1]["content"] += " (edited)"
    calls.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    with pytest.raises(ReplayMismatch, match="call 1 differs from the recording"):
        replay(monkeypatch, folder, task)
    with pytest.raises(ReplayMismatch, match="no recording .*wine-dt-0.jsonl"):
        replay(monkeypatch, folder, make_task("wine", "dt", 0))


def test_the_local_model_method_is_unavailable_in_one_line_without_the_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPERPILOT_LLAMA_SERVER", str(tmp_path / "missing"))
    monkeypatch.setattr(bench_llm, "_LOCAL", {})
    task = make_task("iris", "dt", 0)
    with pytest.raises(MethodUnavailable, match="^the local model is not available: ") as err:
        local_model_method(task, initial_design(task), 1, 0)
    assert "\n" not in str(err.value)


def test_a_missing_recording_stops_the_benchmark_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in (LLM_SPEC_ENV, TRANSCRIPTS_ENV):  # bench_main.main sets them; restore them afterwards
        monkeypatch.setenv(name, "")
    argv = ["bench", "tuner", "--methods", "llambo", "--llm", f"replay:{tmp_path / 'none'}",
            "--datasets", "iris", "--models", "dt", "--seeds", "1", "--jobs", "1", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().endswith("no recording " + str(tmp_path / "none") +
                                                    " for task iris-dt-0")


# --- benchmarks/llm_trust.py: what the LLM did in a run ------------------------------


def _write_lines(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_llm_trust_counts_weight_and_the_llm_configs_that_were_measured(tmp_path: Path) -> None:
    task = make_task("wine", "ada", 0)
    rng = np.random.default_rng(1)
    named, other, initial = task.space.sample(rng), task.space.sample(rng), task.space.sample(rng)
    folder = tmp_path / "transcripts" / "llambo-local"
    folder.mkdir(parents=True)
    calls = [{"schema_name": "ConfigProposals", "valid": True, "seconds": 4.0,
              "reply": json.dumps({"configs": [named, {"n_estimators": "many"}]})},
             {"schema_name": "ScorePredictions", "valid": True, "seconds": 2.0, "reply": "{}"}]
    trials = [{"config": initial, "score": 0.5, "tuner": {}},
              {"config": named, "score": 0.9, "tuner": {"weights": {"gp": 0.6, "llm": 0.4},
                                                         "llm_calls": 2}},
              {"config": other, "score": 0.7, "tuner": {"weights": {"gp": 1.0, "llm": 0.0}}}]
    _write_lines(folder / "wine-ada-0.jsonl", calls)
    _write_lines(folder / "wine-ada-0.trials.jsonl", trials)
    _write_lines(folder / "wine-svm-0.jsonl", calls)  # a task still running: no trials yet
    (tmp_path / "tasks").mkdir()
    rows = [{"method": m, "dataset": "wine", "model": "ada", "seed": 0, "n_evals": n,
             "best_cv": cv, "test_of_best": cv} for m, cv in (("llambo-local", 0.9), ("surrogate", 0.8))
            for n in (10, 30)]
    (tmp_path / "tasks" / "wine-ada-0.json").write_text(json.dumps({"rows": rows}))

    facts = load_script("llm_trust").task_facts(folder / "wine-ada-0.jsonl")
    assert (facts["trials"], facts["asked"], facts["weighted"], facts["chosen"]) == (2, 1, 1, 1)
    assert facts["new"] == 1  # the named config was untried when the LLM was asked
    assert facts["calls"] == 2 and facts["seconds"] == 6.0
    text = load_script("llm_trust").report(tmp_path, "llambo-local", "surrogate")
    assert "(1 tasks)" in text and "| 30 | 1 | 0 | 0 | +0.1000 | +0.1000 |" in text


# --- benchmarks/llm_surrogate_spread.py: an LLM surrogate against the GP ------------


def test_llm_surrogate_spread_sets_a_noise_llm_beside_the_gp() -> None:
    script = load_script("llm_surrogate_spread")
    rows = script.measure_task(bench_llm.NoiseLLM(0), "iris:dt", 8, 6, 2, 0, ("batch", "gp"))
    gp = [r for r in rows if r["variant"] == "gp"]
    assert len(gp) == 1 and gp[0]["calls"] == 0 and gp[0]["seconds"] == 0.0
    assert [r["k"] for r in rows if r["variant"] == "batch"] == [1, 2]
    assert all(-1.0 <= r["rho"] <= 1.0 for r in rows)
    frame = pd.DataFrame(rows)
    beats = script.beats_gp(frame)
    gp_rho = gp[0]["rho"]
    assert list(beats[frame["variant"] == "batch"]) == [float(r["rho"] > gp_rho) for r in rows
                                                        if r["variant"] == "batch"]
    task = make_task("iris", "dt", 0)  # the GP row's NLL uses the GP's own spread
    configs, y = script.design(task, 14, 0)
    pred = GPSurrogate().predict(configs[:8], y[:8], configs[8:], task.space,
                                 np.random.default_rng([0, 30]))
    scale, floor = float(np.std(y[:8])) or 1.0, 1e-3 * (float(np.ptp(y[:8])) or 1.0)
    assert gp[0]["nll"] == pytest.approx(script.metrics(pred, y[8:], scale, floor)[1])
    text = script.markdown(frame, ["- header"])
    assert "| gp | 1 | 0 |" in text and "share above the GP's rho" in text
