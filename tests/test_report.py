"""The report as people look at it: plots, a self-contained report.html, report.md linking
the images, and ``hyperpilot report DIR`` drawing them again from the run folder."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from hyperpilot.pipelines.cli import main
from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.tools.data import BUNDLED

TASKS = {"iris": "predict the species", "wine": "predict the cultivar of the wine",
         "breast_cancer": "predict the diagnosis, optimise roc auc",
         "digits": "recognise the handwritten digit", "diabetes": "predict the disease progression"}
CLASSIFICATION = ["search_trace", "families", "importance", "confusion", "calibration"]
REGRESSION = ["search_trace", "families", "importance", "predicted_vs_true", "residuals"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A short run on each bundled set."""
    assert set(TASKS) == set(BUNDLED)
    root = tmp_path_factory.mktemp("report-runs")
    out = {}
    for name, text in TASKS.items():
        out[name] = root / name
        assert main(["run", text, "--data", f"sklearn:{name}", "--out", str(out[name]),
                     "--llm", "none", "--trials", "6", "--no-experience"]) == 0
    return out


def images(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', html)


@pytest.mark.parametrize("name", list(TASKS))
def test_a_run_on_each_bundled_set_writes_report_html_with_its_plots(runs, name: str) -> None:
    folder = RunFolder(runs[name])
    wanted = REGRESSION if name == "diabetes" else CLASSIFICATION
    html = folder.report_html.read_text()
    if name != "diabetes" and not folder.read_evaluation()[1]["classes"]:
        # A model without probabilities (an SVM) has no calibration to draw: the page says so.
        wanted = [n for n in wanted if n != "calibration"]
        assert "Calibration: the model gives no probabilities" in html
    assert sorted(p.stem for p in folder.plots.glob("*.png")) == sorted(wanted)
    sources = images(html)
    assert len(sources) == len(wanted)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    # Nothing is fetched when the page is viewed: no address outside the page itself.
    assert not re.search(r'(src|href)="(https?:)?//', html)
    for title in ("Search trace", "Model families", "Permutation importance"):
        assert f"<strong>{title}.</strong>" in html
    result = json.loads(folder.result.read_text())
    assert f"{result['holdout']['score']:.4f}" in html
    assert "Decisions, and who made them" in html and "<td>rules</td>" in html


def test_report_md_links_every_plot_that_is_there(runs) -> None:
    folder = RunFolder(runs["iris"])
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", folder.report.read_text())
    assert sorted(links) == sorted(f"plots/{n}.png" for n in CLASSIFICATION)
    assert all((folder.path / link).is_file() for link in links)


def test_importances_and_errors_come_from_the_model_before_its_refit(runs) -> None:
    """The saved model was refit with the holdout rows: the plots use the one that was not."""
    folder = RunFolder(runs["breast_cancer"])
    result = json.loads(folder.result.read_text())
    assert result["shipped"]["holdout_included"]
    predictions, facts = folder.read_evaluation()
    assert predictions is not None and len(predictions) == result["holdout"]["rows"]
    assert facts["model"].startswith("fitted on the training rows")
    table = facts["importance"]["table"]
    assert table and table == sorted(table, key=lambda r: -r["importance"])
    from hyperpilot.tools.evaluate import score_predictions

    proba = predictions[[f"proba_{i}" for i in range(len(facts["classes"]))]].to_numpy()
    again = score_predictions("roc_auc", predictions["true"].to_numpy(), None, proba,
                              facts["classes"], result["task"]["positive_class"])
    assert again == pytest.approx(result["holdout"]["score"])  # the model the holdout scored


def test_the_chat_reads_the_runs_own_importances(runs) -> None:
    from hyperpilot.pipelines.chat.records import importance

    folder = RunFolder(runs["wine"])
    kept = folder.read_evaluation()[1]["importance"]["table"]
    assert importance(folder.path, folder.read_result()) == kept


def test_hyperpilot_report_draws_both_again_from_the_folder(runs, tmp_path: Path, capsys) -> None:
    copy = tmp_path / "diabetes"
    shutil.copytree(runs["diabetes"], copy)
    folder = RunFolder(copy)
    before = folder.report.read_text()
    untouched = {p.name: p.read_bytes() for p in (folder.result, folder.model, folder.trials)}
    folder.report_html.unlink()
    folder.report.unlink()
    shutil.rmtree(folder.plots)
    assert main(["report", str(copy)]) == 0
    assert "5 plots" in capsys.readouterr().out
    assert sorted(p.stem for p in folder.plots.glob("*.png")) == sorted(REGRESSION)
    assert len(images(folder.report_html.read_text())) == len(REGRESSION)
    assert folder.report.read_text() == before
    assert {p.name: p.read_bytes() for p in (folder.result, folder.model, folder.trials)} == untouched


def test_a_folder_without_its_evaluation_still_gets_the_search_plots(runs, tmp_path: Path) -> None:
    copy = tmp_path / "old"
    shutil.copytree(runs["iris"], copy)
    folder = RunFolder(copy)
    folder.predictions.unlink()  # as a run made before they were kept
    assert main(["report", str(copy)]) == 0
    assert sorted(p.stem for p in folder.plots.glob("*.png")) == ["families", "search_trace"]
    assert "no holdout predictions were kept" in folder.report_html.read_text()


def test_report_refuses_what_is_not_a_finished_run(tmp_path: Path, capsys) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["report", str(tmp_path / "mine")]) == 2
    assert capsys.readouterr().err.strip() == \
        f"hyperpilot: error: {tmp_path / 'mine'} holds no hyperpilot run"
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_a_stopped_run_has_no_report_to_draw(runs, tmp_path: Path, capsys) -> None:
    copy = tmp_path / "stopped"
    shutil.copytree(runs["iris"], copy)
    (copy / "result.json").unlink()
    assert main(["report", str(copy)]) == 2
    assert "holds no finished run yet" in capsys.readouterr().err


def test_a_plot_that_fails_is_left_out_with_a_note_not_the_report(runs, tmp_path: Path,
                                                                 monkeypatch) -> None:
    from hyperpilot.tools import plots

    def broken(*args, **kwargs):
        raise ValueError("no axes today")

    monkeypatch.setattr(plots, "confusion", broken)
    copy = tmp_path / "broken"
    shutil.copytree(runs["iris"], copy)
    assert main(["report", str(copy)]) == 0
    html = (copy / "report.html").read_text()
    assert "Confusion matrix: could not be drawn (ValueError: no axes today)" in html
    assert len(images(html)) == len(CLASSIFICATION) - 1


def test_leaderboard_in_the_page_matches_the_csv(runs) -> None:
    folder = RunFolder(runs["digits"])
    board = pd.read_csv(folder.leaderboard)
    html = folder.report_html.read_text()
    assert f"{board.iloc[0]['score']:.4f}" in html and board.iloc[0]["model"] in html
