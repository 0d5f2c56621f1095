"""The report's plots, drawn from a run's state and the evaluation its folder keeps."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hyperpilot.pipelines.folder import RunFolder
from hyperpilot.tools import plots

log = logging.getLogger(__name__)

HELD_OUT = ("holdout rows, predicted by the model fitted on the training rows (the one the "
            "holdout scored)")


@dataclass(frozen=True)
class Plot:
    """A figure written to the run folder: its file, title and what it shows."""

    name: str
    title: str
    caption: str
    path: Path

    def relative(self, folder: RunFolder) -> str:
        return self.path.relative_to(folder.path).as_posix()


@dataclass(frozen=True)
class Figures:
    """The plots drawn, and why any of the usual ones is missing."""

    plots: list[Plot]
    notes: list[str]


def draw(state: dict[str, Any], folder: RunFolder) -> Figures:
    """Draw every plot the run's records allow into ``folder/plots`` (the old ones removed
    first); a plot that cannot be drawn is left out with a note, never the whole report."""
    folder.plots.mkdir(exist_ok=True)
    for old in folder.plots.glob("*.png"):
        old.unlink()
    drawn: list[Plot] = []
    notes: list[str] = []
    for name, title, make in _wanted(state, folder, notes):
        try:
            figure, caption = make()
        except Exception as err:  # a plot is not worth the report: say so and go on
            log.warning("plot %s failed", name, exc_info=True)
            notes.append(f"{title}: could not be drawn ({type(err).__name__}: {err})")
            continue
        drawn.append(Plot(name, title, caption, plots.save_png(figure, folder.plots / f"{name}.png")))
    return Figures(drawn, notes)


def _wanted(state: dict[str, Any], folder: RunFolder, notes: list[str]) -> list[tuple[str, str, Any]]:
    task, trials = state.get("task") or {}, state.get("trials") or []
    if not task or not trials:
        return []
    direction, metric = task["direction"], task["metric"]
    wanted: list[tuple[str, str, Any]] = [
        ("search_trace", "Search trace", lambda: (plots.search_trace(trials, direction, metric),
                                                  _trace_caption(trials, metric))),
        ("families", "Model families", lambda: (plots.family_comparison(trials, direction, metric),
                                                f"Mean CV {metric} of each family's complete "
                                                "trials; the number is the family's best.")),
    ]
    predictions, facts = folder.read_evaluation()
    if predictions is None:
        notes.append("no holdout predictions were kept (the run stopped before its model "
                     "was measured, or was made by an older version): no importance or "
                     "error plots")
        return wanted
    importance = facts.get("importance") or {}
    if importance.get("table"):
        wanted.append(("importance", "Permutation importance", lambda: (
            plots.importances(importance["table"], metric),
            f"Loss in holdout {metric} when one column is shuffled ({importance['note']}); the "
            "bar is the mean, the whisker one standard deviation over the shuffles. The model "
            "is the one fitted on the training rows.")))
    elif importance.get("note"):
        notes.append(f"Permutation importance {importance['note']}")
    wanted += _error_plots(task, predictions, facts, notes)
    return wanted


def _trace_caption(trials: list[dict[str, Any]], metric: str) -> str:
    pruned = sum(t["state"] == "PRUNED" for t in trials)
    failed = sum(t["state"] == "FAIL" for t in trials)
    return (f"CV {metric} of each of the {len(trials)} trials in the order they ran, coloured by "
            f"family; the line is each plan's best so far. {pruned} pruned (x, at the score "
            f"when stopped), {failed} failed (triangles on the lower edge, with trials far "
            "behind the rest).")


def _error_plots(task: dict[str, Any], predictions: pd.DataFrame, facts: dict[str, Any],
                 notes: list[str]) -> list[tuple[str, str, Any]]:
    true, predicted = predictions["true"], predictions["predicted"]
    target = task["target"]
    if task["task_type"] == "regression":
        y, p = true.to_numpy(dtype=float), predicted.to_numpy(dtype=float)
        return [("predicted_vs_true", "Predicted against true", lambda: (
                    plots.predicted_vs_true(y, p, target),
                    f"Each dot a row of the {len(y)} {HELD_OUT}; on the dashed line the "
                    "prediction is exact.")),
                ("residuals", "Residuals", lambda: (
                    plots.residuals(y, p, target),
                    f"True minus predicted on the {HELD_OUT}; a trend or a funnel says the "
                    "errors depend on the prediction."))]
    classes = facts.get("classes") or sorted(set(true) | set(predicted), key=str)
    wanted = [("confusion", "Confusion matrix", lambda: (
        plots.confusion(true.tolist(), predicted.tolist(), classes),
        f"Counts on the {len(true)} {HELD_OUT}; shaded by the share of each true class."))]
    columns = [f"proba_{i}" for i in range(len(facts.get("classes") or []))]
    if columns and all(c in predictions for c in columns):
        proba = predictions[columns].to_numpy(dtype=float)
        wanted.append(("calibration", "Calibration", lambda: (
            plots.calibration(true.tolist(), proba, classes, facts.get("positive_class")),
            "Observed frequency against mean predicted probability in bins of equal size, "
            f"on the {HELD_OUT}; on the dashed line the probabilities mean what they say.")))
    else:
        notes.append("Calibration: the model gives no probabilities")
    return wanted
