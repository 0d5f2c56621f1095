"""``RunOptions``: one set of options from every way in, kept in the run folder, and used
again when the run is continued."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes import FunctionLLM

import hyperpilot
from hyperpilot.agents.llm import LLM, Transcript
from hyperpilot.agents.tuner.agent import halving_for
from hyperpilot.pipelines import run as run_module
from hyperpilot.pipelines.batch import TaskEntry, read_run_file
from hyperpilot.pipelines.cli import build_parser, main, run_options
from hyperpilot.pipelines.continue_run import continue_run
from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task
from hyperpilot.tools.errors import TaskSpecError
from hyperpilot.tools.experience import ExperienceStore
from hyperpilot.tools.types import TrialRecord, TrialState

TASK = "predict the species, optimise accuracy"


def _every_option(tmp_path: Path) -> RunOptions:
    """A value other than the default for every option."""
    notes = tmp_path / "notes"
    notes.mkdir(exist_ok=True)
    (notes / "iris.md").write_text("Small numeric tables suit linear models.\n")
    options = RunOptions(trials=4, time_limit=600, seed=3, llm="none", llm_budget=2, plans=2,
                         revisions=1, halving=False, refit_all=False,
                         experience=tmp_path / "store.sqlite", knowledge=notes, workers=2,
                         executor="process")
    defaults = RunOptions()
    assert all(getattr(options, f) != getattr(defaults, f) for f in RunOptions.model_fields)
    return options


def test_every_flag_of_run_becomes_an_option(tmp_path: Path) -> None:
    options = _every_option(tmp_path)
    argv = ["run", TASK, "--data", "sklearn:iris", "--trials", "4", "--time-limit", "600",
            "--seed", "3", "--llm", "none", "--llm-budget", "2", "--plans", "2",
            "--revisions", "1", "--no-halving", "--no-refit-all",
            "--experience", str(tmp_path / "store.sqlite"),
            "--knowledge", str(tmp_path / "notes"), "--workers", "2", "--executor", "process"]
    assert run_options(build_parser().parse_args(argv)) == options
    assert run_options(build_parser().parse_args(["run", TASK, "--no-experience"])).experience is None
    assert run_options(build_parser().parse_args(["run", TASK])) == RunOptions()


@pytest.mark.parametrize(("flags", "message"), [
    (["--trials", "0"], "--trials must be at least 1, got 0"),
    (["--time-limit", "-5"], "--time-limit must be positive, got -5.0"),
    (["--plans", "0"], "--plans must be at least 1, got 0"),
    (["--revisions", "-1"], "--revisions must be at least 0, got -1"),
    (["--llm-budget", "-2"], "--llm-budget must be at least 0, got -2"),
    (["--workers", "0"], "--workers must be at least 1, got 0"),
    (["--executor", "dask"], "--executor must be one of auto, inprocess, process, ray or "
                             "ray:ADDRESS, got 'dask'"),
])
def test_a_bad_option_is_one_line_and_exit_2(flags: list[str], message: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(["run", TASK, "--data", "sklearn:iris", "--out", str(out), *flags])
    assert code == 2 and capsys.readouterr().err == f"hyperpilot: error: {message}\n"
    assert not out.exists()


def test_the_python_api_takes_every_option_and_refuses_unknown_ones(tmp_path: Path) -> None:
    options = _every_option(tmp_path).model_dump()
    result = hyperpilot.run(TASK, "sklearn:iris", out=tmp_path / "run", **options)
    assert RunOptions.model_validate(result.result["options"]) == RunOptions(**options)
    with pytest.raises(TaskSpecError, match="unknown option 'trails'"):
        hyperpilot.run(TASK, "sklearn:iris", out=tmp_path / "other", trails=3)


def test_a_run_file_takes_every_option(tmp_path: Path) -> None:
    expected = _every_option(tmp_path)
    task = {"task": TASK, "data": "sklearn:iris", "trials": 4, "time_limit": 600, "seed": 3,
            "llm": "none", "llm_budget": 2, "plans": 2, "revisions": 1, "halving": False,
            "refit_all": False, "experience": "store.sqlite", "knowledge": "notes", "workers": 2,
            "executor": "process"}
    path = tmp_path / "runs.yaml"
    path.write_text(yaml.safe_dump({"tasks": [task]}))
    [entry], _ = read_run_file(path)
    assert isinstance(entry, TaskEntry) and entry.run_options() == expected


def test_a_continued_run_uses_the_options_it_was_started_with(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    options = _every_option(tmp_path)
    out = tmp_path / "run"
    run_task(TASK, "sklearn:iris", out, options)
    assert RunFolder(out).load_options() == options
    asked, closed = _spy_llm(monkeypatch)
    state = continue_run(out, more=2)
    assert state["status"] == "ok" and len(state["trials"]) == 6
    # Every option reached the continuation: the result it wrote records them ...
    assert RunOptions.model_validate(json.loads((out / "result.json").read_text())["options"]) \
        == options
    # ... the experience store's record of the run now holds the continued trials too ...
    [record] = ExperienceStore(tmp_path / "store.sqlite").all()
    assert sum(f.trials for f in record.families.values()) == 6
    # ... and the LLM was the one the options name, closed when the continuation ended.
    assert asked == ["none"] and closed == [True]
    assert RunFolder(out).load_options() == options


def _spy_llm(monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[bool]]:
    """Make ``make_llm`` record the spec it is asked for and hand out an LLM whose backend
    (answering nothing usable, so every agent uses its rules) records being closed."""
    asked: list[Any] = []
    closed: list[bool] = []

    class Backend(FunctionLLM):
        def close(self) -> None:
            closed.append(True)

    def fake(spec: str | None, **_: Any) -> tuple[LLM, str]:
        asked.append(spec)
        return LLM(Backend(lambda *_: "not an answer"), transcript=Transcript(None)), "spy"

    monkeypatch.setattr(run_module, "make_llm", fake)
    return asked, closed


def test_no_halving_stays_off_whatever_the_trials_take() -> None:
    slow = [TrialRecord(number=i, model="svm", config={}, state=TrialState.COMPLETE, score=0.9,
                        seconds=10.0, plan_id="plan-1") for i in range(3)]
    assert halving_for(slow, "svm", "plan-1", enabled=True) is not None
    assert halving_for(slow, "svm", "plan-1", enabled=False) is None


def test_a_folder_from_before_options_were_kept_continues_with_its_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_task(TASK, "sklearn:iris", out, RunOptions(llm="none", trials=2, seed=5, experience=None))
    RunFolder(out).options.unlink()
    state = continue_run(out, more=1)
    assert state["status"] == "ok" and len(state["trials"]) == 3
