"""benchmarks/e2e.py on a tiny task folder: the split, the scoring, results.csv and resume."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scripts import load_script

e2e = load_script("e2e")

ANSWERS = ("name,target,kind,metric,positive_class,rows,cols,source,time_ordered,notes\n"
           "toy_cls,label,binary,roc_auc,yes,120,4,synthetic,false,metric: default\n"
           "toy_reg,y,regression,rmse,,120,4,synthetic,true,time column: day. synthetic\n")


def _tasks_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "tasks"
    folder.mkdir()
    x = rng.normal(size=(120, 2))
    colour = rng.choice(["red", "blue"], size=120)
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "colour": colour,
                  "label": np.where(x[:, 0] + (colour == "red") > 0.5, "yes", "no")}
                 ).to_csv(folder / "toy_cls.csv", index=False)
    days = pd.date_range("2020-01-01", periods=120).strftime("%Y-%m-%d")
    pd.DataFrame({"day": days[::-1], "a": x[:, 0], "b": x[:, 1],
                  "y": 3 * x[:, 0] - x[:, 1]}).to_csv(folder / "toy_reg.csv", index=False)
    (folder / "answers.csv").write_text(ANSWERS)
    (folder / "tasks.yaml").write_text(
        "tasks:\n"
        "  - {name: toy_cls, task: 'predict label', data: toy_cls.csv}\n"
        "  - {name: toy_reg, task: 'predict y, RMSE', data: toy_reg.csv}\n")
    return folder


def _rows(out: Path) -> list[dict]:
    return list(csv.DictReader((out / "results.csv").open()))


def test_the_split_is_stratified_or_the_last_fifth_in_time(tmp_path: Path) -> None:
    tasks = e2e.load_tasks(_tasks_dir(tmp_path))
    cls = tasks["toy_cls"]
    table = pd.read_csv(cls.data)
    train, test = e2e.split(cls, table)
    assert (len(train), len(test)) == (96, 24)
    assert test["label"].eq("yes").mean() == pytest.approx(table["label"].eq("yes").mean(),
                                                           abs=0.05)
    reg = tasks["toy_reg"]
    assert reg.time_column == "day" and cls.time_column is None
    train, test = e2e.split(reg, pd.read_csv(reg.data))
    assert len(test) == 24 and train["day"].max() < test["day"].min()


def test_scores_use_the_metric_and_the_positive_class(tmp_path: Path) -> None:
    tasks = e2e.load_tasks(_tasks_dir(tmp_path))
    truth = pd.Series(["yes", "no", "yes", "no"])
    proba = pd.DataFrame({"no": [0.2, 0.9, 0.4, 0.6], "yes": [0.8, 0.1, 0.6, 0.4]})
    perfect = e2e.Outcome(None, proba, 1.0, None)
    assert e2e.score(tasks["toy_cls"], truth, perfect) == 1.0
    guess = e2e.Outcome(np.array([1.0, 3.0]), None, 1.0, None)
    assert e2e.score(tasks["toy_reg"], pd.Series([1.0, 1.0]), guess) == pytest.approx(
        np.sqrt(2.0))
    assert e2e.label(1.0) == e2e.label("1") == e2e.label(np.int64(1)) == "1"


def test_the_forest_runs_is_scored_and_a_rerun_resumes(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    folder, out = _tasks_dir(tmp_path), tmp_path / "out"
    argv = ["--systems", "rf", "--tasks-dir", str(folder), "--out", str(out), "--budget", "10"]
    assert e2e.main(argv) == 0
    rows = {r["task"]: r for r in _rows(out)}
    assert set(rows) == {"toy_cls", "toy_reg"}
    assert all(r["success"] == "True" and r["system"] == "rf" for r in rows.values())
    assert float(rows["toy_cls"]["score"]) > 0.8  # a constant guess has AUC 0.5
    test_y = pd.read_csv(folder / "toy_reg.csv")["y"]
    assert float(rows["toy_reg"]["score"]) < test_y.std()  # below a constant guess's RMSE
    assert float(rows["toy_cls"]["peak_mb"]) > 0
    summary = (out / "summary.md").read_text()
    assert "| toy_cls | roc_auc |" in summary and "rf 2" in summary
    capsys.readouterr()
    assert e2e.main(argv) == 0
    assert len(_rows(out)) == 2 and "e2e: toy" not in capsys.readouterr().out


def test_an_unknown_system_or_task_is_one_line_and_exit_2(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    folder = _tasks_dir(tmp_path)
    assert e2e.main(["--systems", "rf,h2o", "--tasks-dir", str(folder)]) == 2
    assert e2e.main(["--tasks", "nope", "--tasks-dir", str(folder)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors[0].startswith("e2e: error: unknown system h2o")
    assert errors[1].startswith("e2e: error: unknown task nope")


def test_a_peer_without_an_interpreter_is_skipped(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("HYPERPILOT_E2E_FLAML_PYTHON", raising=False)
    out = tmp_path / "out"
    assert e2e.main(["--systems", "flaml", "--tasks-dir", str(_tasks_dir(tmp_path)),
                     "--out", str(out)]) == 0
    assert "skipping flaml: $HYPERPILOT_E2E_FLAML_PYTHON is not set" in capsys.readouterr().out
    assert not (out / "results.csv").exists()


def test_roc_auc_ranks_by_the_margin_of_a_model_without_probabilities() -> None:
    from sklearn.svm import SVC

    X = pd.DataFrame({"a": np.r_[np.zeros(20), np.ones(20)] + np.linspace(0, 0.5, 40)})
    y = np.array(["no"] * 20 + ["yes"] * 20)
    model = SVC().fit(X, y)
    scores = e2e.class_scores(model, X, "roc_auc")
    assert list(scores.columns) == ["no", "yes"]
    assert (scores["yes"].iloc[20:].min() > scores["yes"].iloc[:20].max())
    with pytest.raises(AttributeError):
        e2e.class_scores(model, X, "log_loss")  # log loss needs real probabilities
