"""The Python API as a library user meets it: the README example, DataFrames, errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import hyperpilot
from hyperpilot.tools.errors import DataError, HyperpilotError, TaskSpecError

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_python_example() -> str:
    section = README.read_text().split("## Python\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "README has no python example under '## Python'"
    return match.group(1)


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", readme_python_example()], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HYPERPILOT_NO_NETWORK": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    first = done.stdout.splitlines()[0].split()
    assert first[0] == "f1_macro" and float(first[1]) > 0.8 and first[2] == "True"
    assert (tmp_path / "runs" / "wine" / "model.joblib").is_file()
    assert "rank" in done.stdout and "model" in done.stdout


def test_a_dataframe_run_loads_back_the_same(tmp_path: Path) -> None:
    frame = hyperpilot_iris()
    result = hyperpilot.run("predict species", data=frame, out=tmp_path / "r", llm="none",
                            trials=2)
    assert result.metric == "accuracy" and result.verified and result.run_dir == tmp_path / "r"
    assert list(result.leaderboard["rank"]) == [1, 2]
    assert result.report == tmp_path / "r" / "report.html" and "<img" in result.report.read_text()
    again = hyperpilot.load(tmp_path / "r")
    assert again.holdout_score == result.holdout_score and again.best_model == result.best_model
    rows = frame.drop(columns=["species"]).head(4)
    assert list(again.predict(rows)["prediction"]) == list(result.pipeline.predict(rows))
    assert frame.index[0] == 100  # the caller's frame is not modified


def hyperpilot_iris() -> pd.DataFrame:
    from hyperpilot.tools.data import load_table

    frame = load_table("sklearn:iris")
    frame.index = range(100, 100 + len(frame))
    return frame


@pytest.mark.parametrize("data, error, message", [
    (pd.DataFrame(), DataError, "no rows"),
    ([1, 2, 3], DataError, "or a pandas DataFrame, not list"),
    ("sklearn:nope", DataError, "unknown bundled dataset"),
])
def test_bad_data_raises_one_clear_error(data, error, message, tmp_path) -> None:
    with pytest.raises(error, match=message):
        hyperpilot.run("predict species", data=data, out=tmp_path / "r", llm="none", trials=1)
    assert not (tmp_path / "r").exists()


def test_a_rejected_request_raises_and_load_refuses_an_unfinished_folder(tmp_path) -> None:
    with pytest.raises(TaskSpecError, match="request check failed"):
        hyperpilot.run("write a poem about the sea", data="sklearn:iris", out=tmp_path / "r",
                       llm="none", trials=1)
    with pytest.raises(HyperpilotError, match="not a finished hyperpilot run"):
        hyperpilot.load(tmp_path / "r")


def test_the_package_imports_one_way_and_lazily() -> None:
    code = ("import sys, hyperpilot, hyperpilot.tools.data; "
            "print('hyperpilot.pipelines.api' in sys.modules, hyperpilot.__version__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "0.1.0"]
    assert hyperpilot.run.__module__ == "hyperpilot.pipelines.api"
