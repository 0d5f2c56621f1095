"""Run files: ``hyperpilot run --file runs.yaml`` as a user writes and reads them."""

from __future__ import annotations

import json

import pytest

from hyperpilot.pipelines.batch import Outcome, read_run_file, run_file
from hyperpilot.pipelines.cli import main

THREE_TASKS = """\
defaults:
  llm: none
  trials: 2
tasks:
  - name: iris
    task: predict the species, optimise macro F1
    data: sklearn:iris
  - name: broken
    task: predict the cultivar
    data: sklearn:wine
    trials: lots
  - name: wine
    task: predict the cultivar
    data: sklearn:wine
    out: wine-run
    seed: 3
"""


def test_three_tasks_one_broken_runs_the_good_ones_and_exits_1(tmp_path, capsys) -> None:
    path = tmp_path / "runs.yaml"
    path.write_text(THREE_TASKS)
    assert main(["run", "--file", str(path), "--parallel", "2"]) == 1
    out, err = capsys.readouterr()
    table = out[out.index("task  "):]
    lines = table.splitlines()
    assert [line.split()[:2] for line in lines[1:4]] == [["iris", "ok"], ["broken", "invalid"],
                                                           ["wine", "ok"]]
    assert f"{path}:11: tasks[1].trials: Input should be a valid integer" in lines[2]
    assert lines[-1] == "2 of 3 tasks succeeded"
    assert err.strip() == "hyperpilot: error: 1 of 3 tasks failed: broken"
    iris = json.loads((tmp_path / "runs" / "iris" / "result.json").read_text())
    wine = json.loads((tmp_path / "wine-run" / "result.json").read_text())
    assert iris["trials"] == 2 and iris["task"]["metric"] == "f1_macro" and wine["seed"] == 3
    assert not (tmp_path / "runs" / "broken").exists()


def test_tasks_that_fail_at_run_time_are_reported_and_the_rest_go_on(tmp_path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    path = tmp_path / "runs.yaml"
    path.write_text("- {task: predict y, data: missing.csv, llm: none}\n"
                    "- {task: write a poem, data: 'sklearn:iris', llm: none, trials: 1}\n"
                    "- {task: predict species, data: 'sklearn:iris', out: mine, llm: none}\n"
                    "- {task: predict species, data: 'sklearn:iris', colour: red}\n")
    outcomes = run_file(path, echo=False)
    assert [o.status for o in outcomes] == ["failed", "rejected", "failed", "invalid"]
    assert f"data file not found: {tmp_path / 'missing.csv'}" == outcomes[0].message
    assert "does not ask to predict" in outcomes[1].message
    assert "not empty" in outcomes[2].message
    assert outcomes[3].message == f"{path}:4: tasks[3].colour: Extra inputs are not permitted"
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize("text, message", [
    ("tasks: [", "runs.yaml:1: not valid YAML"),
    ("tasks: []\n", "runs.yaml:1: tasks: List should have at least 1 item"),
    ("jobs:\n  - task: x\n", "runs.yaml:1: tasks: Field required"),
    ("defaults:\n  trials: 0\ntasks:\n  - {task: x, data: y}\n",
     "runs.yaml:2: defaults.trials: Input should be greater than or equal to 1"),
    ("", "runs.yaml:1: file: Input should be a valid dictionary"),
])
def test_a_file_that_cannot_be_read_is_one_line_and_exit_2(text, message, tmp_path,
                                                           capsys) -> None:
    (tmp_path / "runs.yaml").write_text(text)
    assert main(["run", "--file", str(tmp_path / "runs.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("args, message", [
    (["run"], "no task given"),
    (["run", "predict y", "--file", "runs.yaml"], "either TASK_TEXT or --file"),
    (["run", "--file", "nope.yaml"], "run file not found: nope.yaml"),
    (["run", "--file", "r.yaml", "--data", "x.csv"], "with --file, set --data in the file"),
    (["run", "predict y", "--data", "x.csv", "--parallel", "2"], "--parallel runs the tasks"),
])
def test_command_line_misuse_is_one_line(args, message, capsys) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_missing_fields_point_at_the_task_and_names_must_be_unique(tmp_path) -> None:
    path = tmp_path / "runs.yaml"
    path.write_text("tasks:\n  - data: sklearn:iris\n    name: a\n"
                    "  - {task: t, data: 'sklearn:iris', name: a}\n")
    entries, _ = read_run_file(path)
    assert isinstance(entries[0], Outcome) and isinstance(entries[1], Outcome)
    assert entries[0].message == f"{path}:2: tasks[0].task: Field required"
    assert entries[1].message == f"{path}:4: tasks[1].name: another task is already named 'a'"
