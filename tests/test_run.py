"""End-to-end runs through the command line and the run entry point, as a user sees them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import joblib
import pandas as pd
import pytest

from hyperpilot.agents.llm import LLM, Transcript
from hyperpilot.pipelines.cli import main
from hyperpilot.pipelines.options import RunOptions
from hyperpilot.pipelines.run import run_task
from hyperpilot.tools.data import load_table

IRIS_TASK = "predict the species of iris flowers, optimise macro F1"


def run_cli(*args: str) -> int:
    return main(["run", *args])


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "iris"
    assert run_cli(IRIS_TASK, "--data", "sklearn:iris", "--out", str(out), "--llm", "none",
                   "--trials", "8", "--seed", "1") == 0
    return out


def test_run_folder_holds_the_contract(iris_run: Path) -> None:
    names = {"model.joblib", "result.json", "leaderboard.csv", "trials.jsonl", "report.md",
             "transcript.jsonl"}
    assert names <= {p.name for p in iris_run.iterdir()}
    result = json.loads((iris_run / "result.json").read_text())
    assert result["task"]["target"] == "species" and result["task"]["metric"] == "f1_macro"
    assert set(result["best"]) >= {"model", "config", "cv_score"}
    assert result["holdout"]["metric"] == "f1_macro" and result["holdout"]["score"] > 0.8
    assert {result["verification"][k] for k in ("request", "execution", "implementation")} \
        == {"pass"}
    assert result["trials"] == 8
    assert result["llm"] == {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0,
                             **{k: v for k, v in result["llm"].items()
                                if k not in ("calls", "prompt_tokens", "completion_tokens")}}


def test_trials_log_and_leaderboard_agree(iris_run: Path) -> None:
    lines = [json.loads(x) for x in (iris_run / "trials.jsonl").read_text().splitlines()]
    assert len(lines) == 8
    assert all({"model", "config", "score", "state", "seconds"} <= set(x) for x in lines)
    board = pd.read_csv(iris_run / "leaderboard.csv")
    result = json.loads((iris_run / "result.json").read_text())
    assert board.iloc[0]["model"] == result["best"]["model"]
    assert board.iloc[0]["score"] == pytest.approx(result["best"]["cv_score"])


def test_saved_model_predicts_raw_rows_and_reproduces_the_holdout(iris_run: Path) -> None:
    model = joblib.load(iris_run / "model.joblib")
    holdout = pd.read_parquet(iris_run / "holdout.parquet")
    predictions = model.predict(holdout.drop(columns=["species"]))
    assert set(predictions) <= {"setosa", "versicolor", "virginica"}
    from sklearn.metrics import f1_score

    score = f1_score(holdout["species"], predictions, average="macro")
    result = json.loads((iris_run / "result.json").read_text())
    assert score == pytest.approx(result["holdout"]["score"], abs=1e-12)


def test_report_says_what_won_and_why(iris_run: Path) -> None:
    report = (iris_run / "report.md").read_text()
    for heading in ("## What was asked", "## What was tried", "## What won and why",
                    "## Holdout", "## Verification"):
        assert heading in report
    best = json.loads((iris_run / "result.json").read_text())["best"]["model"]
    assert f"`{best}`" in report


def test_predict_command_writes_predictions(iris_run: Path, tmp_path: Path, capsys) -> None:
    rows = load_table("sklearn:iris").drop(columns=["species"]).head(5)
    rows.to_csv(tmp_path / "new.csv", index=False)
    output = tmp_path / "pred.csv"
    assert main(["predict", str(iris_run), "--data", str(tmp_path / "new.csv"),
                 "--output", str(output)]) == 0
    predictions = pd.read_csv(output)
    assert len(predictions) == 5 and "prediction" in predictions
    assert main(["predict", str(iris_run), "--data", str(tmp_path / "new.csv"),
                 "--output", str(output)]) == 2
    assert "--force" in capsys.readouterr().err
    rows.drop(columns=[rows.columns[0]]).to_csv(tmp_path / "short.csv", index=False)
    assert main(["predict", str(iris_run), "--data", str(tmp_path / "short.csv")]) == 2
    assert "lacks columns" in capsys.readouterr().err


@pytest.mark.parametrize("task, source, metric", [
    ("predict disease progression, optimise R2", "sklearn:diabetes", "r2"),
    ("predict the diagnosis, optimise recall", "sklearn:breast_cancer", "recall"),
])
def test_regression_and_binary_runs_beat_the_baseline(task, source, metric, tmp_path) -> None:
    state = run_task(task, source, tmp_path / "run", RunOptions(llm="none", trials=5, seed=0))
    assert state["status"] == "ok" and state["task"]["metric"] == metric
    assert state["holdout"]["score"] > state["holdout"]["baseline"]
    if metric == "recall":
        assert state["task"]["positive_class"] == "malignant"


def _bad(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize("args, message", [
    (["run", IRIS_TASK, "--data", "missing.csv"], "data file not found"),
    (["run", IRIS_TASK, "--data", "sklearn:mnist"], "unknown bundled dataset"),
    (["run", IRIS_TASK, "--data", "sklearn:iris", "--trials", "0"], "must be at least 1"),
    (["run", IRIS_TASK, "--data", "sklearn:iris", "--llm", "magic:x"], "unknown --llm"),
    (["run", IRIS_TASK, "--data", "sklearn:iris", "--time-limit", "-3"], "must be positive"),
    (["run", IRIS_TASK], "no data given"),
])
def test_bad_input_gives_one_line_and_exit_2(args, message, capsys, tmp_path) -> None:
    code, err = _bad([*args, "--out", str(tmp_path / "o")] if args[0] == "run" else args, capsys)
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content, task, message", [
    ("a,b\n", IRIS_TASK, "no rows"),
    ("x,y\n" + "".join(f"{i},1\n" for i in range(30)), "predict y", "single value"),
    ("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(30)), "predict the column 'colour'",
     "'colour' not found"),
    ("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(30)), "write a poem about the sea",
     "does not ask to predict"),
    ("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(30)), "predict y, minimise RMSE",
     "does not fit a binary task"),
])
def test_bad_data_and_tasks_are_refused(content, task, message, capsys, tmp_path) -> None:
    (tmp_path / "d.csv").write_text(content)
    code, err = _bad(["run", task, "--data", str(tmp_path / "d.csv"), "--out",
                      str(tmp_path / "o"), "--llm", "none"], capsys)
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_a_non_empty_folder_that_is_not_a_run_is_never_touched(tmp_path, capsys) -> None:
    precious = tmp_path / "mine" / "thesis.txt"
    precious.parent.mkdir()
    precious.write_text("years of work")
    code, err = _bad(["run", IRIS_TASK, "--data", "sklearn:iris", "--out", str(precious.parent),
                      "--llm", "none"], capsys)
    assert code == 2 and "not empty" in err
    assert [p.name for p in precious.parent.iterdir()] == ["thesis.txt"]
    assert precious.read_text() == "years of work"


def test_rerunning_into_a_run_folder_replaces_only_run_files(tmp_path) -> None:
    out = tmp_path / "run"
    run_task(IRIS_TASK, "sklearn:iris", out, RunOptions(llm="none", trials=2))
    (out / "notes.md").write_text("keep me")
    state = run_task(IRIS_TASK, "sklearn:iris", out, RunOptions(llm="none", trials=3, seed=2))
    assert len(state["trials"]) == 3 and (out / "notes.md").read_text() == "keep me"
    assert json.loads((out / "result.json").read_text())["trials"] == 3


def test_console_script_reports_errors_without_a_traceback(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-m", "hyperpilot.pipelines.cli", "run", IRIS_TASK,
                           "--data", str(tmp_path / "nope.csv")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"hyperpilot: error: data file not found: {tmp_path / 'nope.csv'}"


IRIS_LLM_SCRIPT = [
    ("PlansDraft", {"plans": [{"families": [{"name": "svm", "share": 2, "reason": "small dense data"},
                                            {"name": "linear", "share": 1, "reason": "few rows"}],
                               "rationale": "small numeric data suits kernels and linear models"}]}),
    ("SpaceDraft", {"narrow": [{"name": "C", "low": 0.1, "high": 100}]}),
    ("WarmStartDraft", {"configs": [{"C": 10, "gamma_mode": "scale", "gamma": 0.01},
                                    {"C": 1e9, "gamma_mode": "value", "gamma": 0.1}]}),
    ("SpaceDraft", {"narrow": []}),
    ("WarmStartDraft", {"configs": [{"C": 3.0}, {"C": "many"}]}),
    ("Review", {"concerns": ["the holdout is small"], "summary": "svm or linear won."}),
]


def test_scripted_llm_drives_every_agent(scripted, tmp_path) -> None:
    llm, fake = scripted(IRIS_LLM_SCRIPT)
    state = run_task("which iris is it? optimise macro F1", "sklearn:iris", tmp_path / "run",
                     RunOptions(trials=6), llm=llm)
    assert state["status"] == "ok"
    assert state["plan"]["source"] == "llm" and state["plan"]["trials"] == {"svm": 4, "linear": 2}
    assert state["spaces"]["svm"]["dims"][0]["low"] == 0.1
    filled = state["warm"]["svm"][0]["class_weight"]  # keys the LLM left out come from the first
    assert state["warm"]["svm"][-2:] == [
        {"C": 10.0, "gamma_mode": "scale", "gamma": 0.01, "class_weight": filled},
        {"C": 100.0, "gamma_mode": "value", "gamma": 0.1, "class_weight": filled}]
    assert state["warm"]["linear"][-1]["C"] == 3.0  # after the strong defaults
    svm_tried = [t["config"] for t in state["trials"] if t["model"] == "svm"]
    first = min(4, len(state["warm"]["svm"]))
    assert svm_tried[:first] == state["warm"]["svm"][:first]  # warm starts run first, in order
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["llm"]["calls"] == len(fake.calls) == 6  # the request is read by the rules
    assert result["verification"]["concerns"] == ["the holdout is small"]
    assert "plan-1 (won) (llm)" in (tmp_path / "run" / "report.md").read_text()
    page = (tmp_path / "run" / "report.html").read_text()
    # The page says which decisions the LLM made: the plan, and the review of the facts.
    assert '<td class="by-llm">LLM</td><td>plan-1:' in page
    assert 'Review (by <span class="by-llm">LLM</span>)' in page


def test_a_recorded_transcript_replays_the_same_run(tmp_path, scripted) -> None:
    llm, _ = scripted(IRIS_LLM_SCRIPT)
    recorded = LLM(llm.backend, transcript=Transcript(tmp_path / "first.jsonl"))
    first = run_task("which iris is it? optimise macro F1", "sklearn:iris", tmp_path / "a",
                     RunOptions(trials=6), llm=recorded)
    assert main(["run", "which iris is it? optimise macro F1", "--data", "sklearn:iris",
                 "--out", str(tmp_path / "b"), "--trials", "6",
                 "--llm", f"replay:{tmp_path / 'first.jsonl'}"]) == 0
    second = json.loads((tmp_path / "b" / "result.json").read_text())
    assert second["best"]["config"] == first["best"]["config"]
    assert second["holdout"]["score"] == first["holdout"]["score"]
    assert second["llm"]["calls"] == 6
    replayed = (tmp_path / "b" / "transcript.jsonl").read_text().splitlines()
    assert len(replayed) == 6


def test_time_limit_stops_tuning_and_still_verifies(tmp_path) -> None:
    import time

    started = time.perf_counter()
    state = run_task("predict the digit", "sklearn:digits", tmp_path / "run",
                     RunOptions(llm="none", trials=500, time_limit=25, seed=0))
    elapsed = time.perf_counter() - started
    assert state["stop_reason"].startswith("time limit") and len(state["trials"]) < 500
    assert state["status"] == "ok"
    assert elapsed < 25 + 20  # the finish reserve covers refit and reload on a quiet machine


def test_every_trial_is_checkpointed(iris_run: Path) -> None:
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    with sqlite3.connect(iris_run / "checkpoints.sqlite") as connection:
        saver = SqliteSaver(connection)
        checkpoints = list(saver.list({"configurable": {"thread_id": "run"}}))
        latest = saver.get_tuple({"configurable": {"thread_id": "run"}})
    assert len(checkpoints) >= 8 + 8  # one per trial plus one per other node
    assert len(latest.checkpoint["channel_values"]["trials"]) == 8


def _awkward_file(kind: str, folder: Path) -> Path:
    """A small file of the given kind whose label follows x and the colour."""
    import gzip

    import numpy as np

    rng = np.random.default_rng(0)
    n = 120
    x, colour = rng.normal(size=n), rng.choice(["rouge", "vèrt", "bléu"], n)
    label = np.where(x + (colour == "vèrt") > 0.3, "oui", "non")
    frame = pd.DataFrame({"x": x.round(3), "poids": (x * 900 + 5000).round(1),
                          "couleur": colour, "réponse": label})
    if kind == "semicolon":
        frame["x"] = frame["x"].map(lambda v: f"{v:.3f}".replace(".", ","))
        frame["poids"] = frame["poids"].map(lambda v: f"{v:,.1f}".replace(",", " ")
                                            .replace(".", ","))
        path = folder / "semi.csv"
        frame.to_csv(path, sep=";", index=False)
    elif kind == "latin1":
        path = folder / "latin1.csv"
        frame.to_csv(path, index=False, encoding="latin-1")
    elif kind == "inf":
        frame.loc[::9, "x"] = np.inf
        frame.loc[::13, "poids"] = -np.inf
        path = folder / "inf.csv"
        frame.to_csv(path, index=False)
    elif kind == "gzip-tab":
        path = folder / "tab.tsv.gz"
        path.write_bytes(gzip.compress(frame.to_csv(sep="\t", index=False).encode()))
    else:
        wide = pd.DataFrame(rng.normal(size=(60, 3000)), columns=[f"g{i}" for i in range(3000)])
        noise = rng.normal(scale=0.4, size=60)  # without it g0 alone is a perfect leak
        wide["réponse"] = np.where(wide["g0"] + noise > 0, "oui", "non")
        path = folder / "wide.csv"
        wide.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind", ["semicolon", "latin1", "inf", "gzip-tab", "wide"])
def test_awkward_files_give_verified_models(kind: str, tmp_path: Path) -> None:
    source = _awkward_file(kind, tmp_path)
    state = run_task("predict réponse", str(source), tmp_path / "run",
                     RunOptions(llm="none", trials=4, seed=0))
    assert state["status"] == "ok"
    assert {state["verification"][k]["status"] for k in ("execution", "implementation")} \
        == {"pass"}
    assert state["holdout"]["score"] > state["holdout"]["baseline"]


def test_a_forecast_is_split_in_time_and_the_report_says_so(tmp_path: Path) -> None:
    import numpy as np

    days = pd.date_range("2021-01-01", periods=160, freq="D")
    rides = 10 + 5 * (days.day_of_week < 5) + 0.02 * np.arange(160)
    frame = pd.DataFrame({"date": days.strftime("%Y/%m/%d"), "rides": rides,
                          "temp": np.sin(np.arange(160) / 5)})
    frame.sample(frac=1.0, random_state=0).to_csv(tmp_path / "d.csv", index=False)
    state = run_task("forecast rides for later dates, MAE", str(tmp_path / "d.csv"),
                     tmp_path / "run", RunOptions(llm="none", trials=4, seed=0))
    assert state["status"] == "ok" and state["task"]["time_column"] == "date"
    table = load_table(str(tmp_path / "d.csv"))
    dates = pd.to_datetime(table["date"])
    assert dates[state["split"]["train"]].max() < dates[state["split"]["holdout"]].min()
    assert "split in time order by `date`" in (tmp_path / "run" / "report.md").read_text()
