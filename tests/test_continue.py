"""Continuing a run in its own folder: finished trials are kept and never run again."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pandas as pd
import pytest

from hyperpilot.pipelines.continue_run import continue_run
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task
from hyperpilot.tools.data import load_table
from hyperpilot.tools.ensemble import base_pipelines
from hyperpilot.tools.errors import DataError, TaskSpecError

TASK = "predict the species, optimise macro F1"


def _interrupt_at(trial: int):
    def progress(line: str) -> None:
        if line.startswith(f"[tune] trial {trial}/"):
            raise KeyboardInterrupt

    return progress


def test_an_interrupted_run_keeps_its_trials_and_finishes_later(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_task(TASK, "sklearn:iris", out, RunOptions(llm="none", trials=4), progress=_interrupt_at(3))
    state = continue_run(out)
    numbers = [t["number"] for t in state["trials"]]
    assert numbers == [0, 1, 2, 3] and state["status"] == "ok"
    assert json.loads((out / "result.json").read_text())["trials"] == 4


def test_more_trials_reuse_the_finished_ones(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = run_task(TASK, "sklearn:iris", out, RunOptions(llm="none", trials=3))
    family = next(f for f in ("knn", "linear", "svm") if f not in first["plan"]["trials"])
    lines: list[str] = []
    state = continue_run(out, more=2, family=family, progress=lines.append)
    assert state["trials"][:3] == first["trials"]  # the same records, not re-run
    assert [t["model"] for t in state["trials"][3:]] == [family, family]
    assert state["plan"]["trials"] == {**first["plan"]["trials"], family: 2}
    assert sum(line.startswith("[tune]") for line in lines) == 2
    assert f"[continue] 2 more trials for {family}; 3 finished trials kept" in lines
    board = pd.read_csv(out / "leaderboard.csv")
    assert len(board) == 5 and json.loads((out / "result.json").read_text())["trials"] == 5


def test_without_a_column_starts_a_new_plan_on_the_other_features(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = run_task(TASK, "sklearn:iris", out, RunOptions(llm="none", trials=2))
    state = continue_run(out, drop=["petal width (cm)"], more=2)
    assert state["trials"][:2] == first["trials"]
    assert [t["plan_id"] for t in state["trials"]] == ["plan-1", "plan-1", "plan-2", "plan-2"]
    assert state["best"]["trial"] in (2, 3)
    result = json.loads((out / "result.json").read_text())
    assert "petal width (cm)" not in result["features"]
    assert result["dropped"]["petal width (cm)"] == "left out on request"
    # Every pipeline in the saved model (an ensemble's members too) was fit without it.
    for pipeline in base_pipelines(joblib.load(out / "model.joblib")):
        prep = pipeline.named_steps["prep"]
        used = [c for name, _, columns in prep.transformers_ if name != "remainder"
                for c in columns]
        assert "petal width (cm)" not in used and "petal length (cm)" in used


def test_bad_continuations_say_what_is_wrong_and_change_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    frame = load_table("sklearn:iris")
    frame["id"] = range(len(frame))
    run_task(TASK, "iris with ids", out, RunOptions(llm="none", trials=1), frame=frame)
    before = (out / "result.json").read_text()
    for kwargs, message in [
        ({"more": 1, "family": "astrology"}, "'astrology' cannot be used"),
        ({"drop": ["colour"]}, "['colour'] not among the features"),
        ({"drop": ["id"]}, "already left out of this run: 'id' (identifier"),
        ({"more": -1}, "zero or more"),
    ]:
        with pytest.raises(TaskSpecError) as caught:
            continue_run(out, frame=frame, **kwargs)
        assert message in str(caught.value)
    with pytest.raises(DataError, match="cannot reload the run's data .data file not found"):
        continue_run(out, more=1)
    with pytest.raises(DataError, match="has changed since the run"):
        continue_run(out, more=1, frame=frame.head(100))
    assert (out / "result.json").read_text() == before


def test_a_folder_without_a_run_cannot_be_continued(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no hyperpilot run to continue"):
        continue_run(tmp_path, more=1)


def test_a_family_the_plan_left_out_gets_its_space_from_the_agents(tmp_path: Path,
                                                                    scripted) -> None:
    out = tmp_path / "run"
    first = run_task(TASK, "sklearn:iris", out, RunOptions(llm="none", trials=1))
    assert "hist_gb" not in first["plan"]["trials"]  # small data: boosting comes last
    llm, fake = scripted([("SpaceDraft", {"narrow": []}),
                          ("WarmStartDraft", {"configs": [{"learning_rate": 0.05}]}),
                          ("Review", {"concerns": [], "summary": "fine"})])
    state = continue_run(out, more=2, family="hist_gb", llm=llm)
    assert [t["model"] for t in state["trials"]] == [first["trials"][0]["model"], "hist_gb",
                                                     "hist_gb"]
    assert state["warm"]["hist_gb"][-1]["learning_rate"] == 0.05  # the LLM's warm start
    assert [t["config"] for t in state["trials"][1:]] == state["warm"]["hist_gb"][:2]
    assert "hist_gb" in state["spaces"] and state["plan"]["trials"]["hist_gb"] == 2
    assert "continue [tools]: 2 more trials for hist_gb" in (out / "report.md").read_text()
