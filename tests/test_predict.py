"""``hyperpilot predict`` as a user meets it: text in numeric columns, decimal commas, and
outputs that must not lose anything."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hyperpilot.pipelines.cli import main
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.predict import print_predictions
from hyperpilot.pipelines.run import predict, run_task
from hyperpilot.tools.data import load_table

LENGTH = "sepal length (cm)"


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "iris"
    run_task("predict the species of iris flowers", "sklearn:iris", out,
             RunOptions(llm="none", trials=2, seed=0, experience=None))
    return out


@pytest.fixture
def rows() -> pd.DataFrame:
    return load_table("sklearn:iris").drop(columns=["species"]).sample(100, random_state=0) \
        .reset_index(drop=True)


def _predict(*args: str) -> int:
    return main(["predict", *args])


def test_text_in_a_numeric_column_is_read_as_missing_and_counted(iris_run, rows, tmp_path,
                                                                 capsys) -> None:
    typed = rows.astype(object)
    typed.loc[:25, LENGTH] = "abc"  # 26 rows
    typed.loc[26:29, LENGTH] = "1,4"  # a decimal comma among text is not taken as a number
    typed.to_csv(tmp_path / "new.csv", index=False)
    output = tmp_path / "pred.csv"
    assert _predict(str(iris_run), "--data", str(tmp_path / "new.csv"), "--output", str(output)) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"hyperpilot: warning: column {LENGTH}: 30 of 100 values are not numbers "
                   "(e.g. 'abc') and were read as missing"]
    missing = rows.copy()
    missing.loc[:29, LENGTH] = np.nan
    pd.testing.assert_frame_equal(pd.read_csv(output), predict(iris_run, missing),
                                  check_dtype=False)


def test_strict_refuses_text_in_numeric_columns_in_one_line(iris_run, rows, tmp_path,
                                                            capsys) -> None:
    typed = rows.astype(object)
    typed.loc[:25, LENGTH] = "abc"
    typed.loc[:4, "petal width (cm)"] = "0.2 cm"
    typed.to_csv(tmp_path / "new.csv", index=False)
    output = tmp_path / "pred.csv"
    assert _predict(str(iris_run), "--data", str(tmp_path / "new.csv"), "--output", str(output),
                    "--strict") == 2
    captured = capsys.readouterr()
    [line] = captured.err.strip().splitlines()
    assert line.startswith(f"hyperpilot: error: column {LENGTH}: 26 of 100 values are not numbers")
    assert "column petal width (cm): 5 of 100 values" in line and "--strict" in line
    assert not output.exists() and captured.out == ""


def test_a_column_of_decimal_commas_reads_as_numbers(iris_run, rows, tmp_path, capsys) -> None:
    commas = rows.copy()
    commas[LENGTH] = [f"{value:.1f}".replace(".", ",") for value in rows[LENGTH]]
    commas.to_parquet(tmp_path / "new.parquet")
    output = tmp_path / "pred.csv"
    assert _predict(str(iris_run), "--data", str(tmp_path / "new.parquet"),
                    "--output", str(output)) == 0
    assert "warning" not in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_csv(output), predict(iris_run, rows), check_dtype=False)


def test_an_output_folder_is_refused_even_with_force(iris_run, rows, tmp_path, capsys) -> None:
    rows.to_csv(tmp_path / "new.csv", index=False)
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "mine.txt").write_text("the user's own file")
    assert _predict(str(iris_run), "--data", str(tmp_path / "new.csv"), "--output", str(folder),
                    "--force") == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"hyperpilot: error: --output {folder} is a folder")
    assert [p.name for p in folder.iterdir()] == ["mine.txt"]
    assert (folder / "mine.txt").read_text() == "the user's own file"


def test_an_output_under_a_file_is_refused_in_one_line(iris_run, rows, tmp_path, capsys) -> None:
    rows.to_csv(tmp_path / "new.csv", index=False)
    (tmp_path / "notes").write_text("kept")
    assert _predict(str(iris_run), "--data", str(tmp_path / "new.csv"),
                    "--output", str(tmp_path / "notes" / "pred.csv")) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "is a file, not a folder" in line
    assert (tmp_path / "notes").read_text() == "kept"


def test_a_reader_that_stops_early_ends_the_output_quietly(rows) -> None:
    reading, writing = os.pipe()
    os.close(reading)  # as `| head` does once it has its lines
    with os.fdopen(writing, "w") as stream:
        print_predictions(rows, stream)


def test_the_python_api_and_the_chat_say_the_same_about_unreadable_numbers(iris_run, rows,
                                                                           tmp_path) -> None:
    from rich.console import Console

    import hyperpilot
    from hyperpilot.pipelines.chat.chat import Chat
    from hyperpilot.pipelines.chat.session import SessionStore

    typed = rows.astype(object)
    typed.loc[:9, LENGTH] = "n/a?"
    with pytest.warns(UserWarning, match=r"10 of 100 values are not numbers"):
        hyperpilot.load(iris_run).predict(typed)
    typed.to_csv(tmp_path / "new.csv", index=False)
    console = Console(record=True, width=200)
    chat = Chat(SessionStore(tmp_path / "runs", "p"), None, console)
    try:
        chat.handle(f"/attach {iris_run}")
        chat.handle(f"/predict {tmp_path / 'new.csv'} {tmp_path / 'out.csv'}")
    finally:
        chat.store.close()
    said = console.export_text()
    assert "10 of 100 values are not numbers" in said and "Wrote 100 predictions" in said
