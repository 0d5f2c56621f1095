"""The report's figures, drawn with matplotlib's object-oriented API (no pyplot, so no global
figure state and no display): each function takes plain data and returns a ``Figure`` that
``save_png`` writes. No LLM here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

# One colour per model family, stable within a figure; plans differ by line style.
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
LINE_STYLES = ("-", "--", ":", "-.")
MAX_IMPORTANCE_BARS = 15
MAX_CONFUSION_CLASSES = 30
CALIBRATION_BINS = 10
DPI = 110


def save_png(figure: Figure, path: Path) -> Path:
    """Write ``figure`` as a PNG at ``path`` (its folder made if needed) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return path


def _figure(width: float = 7.5, height: float = 4.2) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _colours(families: Sequence[str]) -> dict[str, str]:
    return {f: COLOURS[i % len(COLOURS)] for i, f in enumerate(dict.fromkeys(families))}


def _view(values: np.ndarray, direction: str) -> tuple[float, float]:
    """Y limits that show the competitive trials: a trivial model far behind the rest would
    otherwise squash them into a line. Scores past the worse limit are drawn on its edge."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    good = finite if direction == "maximize" else -finite
    worst, best = np.percentile(good, 10), good.max()
    span = best - worst or abs(best) * 0.05 or 0.05
    low, high = worst - 0.15 * span, best + 0.1 * span
    return (low, high) if direction == "maximize" else (-high, -low)


def search_trace(trials: Sequence[dict[str, Any]], direction: str, metric: str) -> Figure:
    """CV score of each trial in the order they ran, coloured by family, with each plan's best
    so far as a step line; pruned trials (an ``x`` at the score they were stopped at) and
    failed ones (a triangle on the lower edge) are marked.

    Args:
        trials: trial dicts as the run keeps them (``model``, ``state``, ``score``,
            ``plan_id``, ``tuner``), in the order they ran.
        direction: ``maximize`` or ``minimize``.
        metric: the metric's name, for the axis.
    """
    figure = _figure()
    ax = figure.add_subplot()
    colours = _colours([t["model"] for t in trials])
    shown = np.array([_trace_value(t) for t in trials], dtype=float)
    low, high = _view(shown, direction)
    edge = low if direction == "maximize" else high
    clipped = np.clip(np.nan_to_num(shown, nan=edge), low, high)
    for i, trial in enumerate(trials):
        style = _marker(trial, shown[i], low, high)
        ax.scatter(i + 1, clipped[i], color=colours[trial["model"]], marker=style, s=28,
                   alpha=0.85, zorder=3, linewidths=1.2)
    plans = list(dict.fromkeys(t.get("plan_id") or "" for t in trials))
    for k, plan in enumerate(plans):
        xs, best = _best_so_far(trials, plan, direction)
        if xs:
            ax.step(xs, np.clip(best, low, high), where="post", color="#333333",
                    linestyle=LINE_STYLES[k % len(LINE_STYLES)], linewidth=1.3, zorder=2)
    ax.set_ylim(low, high)
    ax.set_xlabel("trial, in the order it finished")
    ax.set_ylabel(f"CV {metric}" + (" (lower is better)" if direction == "minimize" else ""))
    ax.set_title("Search trace")
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=f)
               for f, c in colours.items()]
    handles += [Line2D([], [], color="#333333", linestyle=LINE_STYLES[k % len(LINE_STYLES)],
                       label=f"best so far{f' ({p})' if len(plans) > 1 else ''}")
                for k, p in enumerate(plans)]
    states = {t["state"] for t in trials}
    if "PRUNED" in states:
        handles.append(Line2D([], [], marker="x", linestyle="", color="#555555",
                              label="pruned (score when stopped)"))
    if "FAIL" in states:
        handles.append(Line2D([], [], marker="v", linestyle="", color="#555555", label="failed"))
    ax.legend(handles=handles, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5),
              frameon=False)
    return figure


def _trace_value(trial: dict[str, Any]) -> float:
    if trial["state"] == "COMPLETE" and trial.get("score") is not None:
        return float(trial["score"])
    if trial["state"] == "PRUNED":
        value = (trial.get("tuner") or {}).get("rung_score")
        return float(value) if value is not None else float("nan")
    return float("nan")


def _marker(trial: dict[str, Any], value: float, low: float, high: float) -> str:
    if trial["state"] == "PRUNED":
        return "x"
    if not np.isfinite(value) or value < low or value > high:
        return "v"  # failed, or off the scale: on the edge
    return "o"


def _best_so_far(trials: Sequence[dict[str, Any]], plan: str,
                 direction: str) -> tuple[list[int], list[float]]:
    xs: list[int] = []
    best: list[float] = []
    current: float | None = None
    for i, trial in enumerate(trials):
        if (trial.get("plan_id") or "") != plan or trial["state"] != "COMPLETE":
            continue
        score = trial.get("score")
        if score is None:
            continue
        if current is None or (score > current if direction == "maximize" else score < current):
            current = float(score)
        xs.append(i + 1)
        best.append(current)
    if xs:
        xs.append(len(trials))
        best.append(best[-1])
    return xs, best


def family_comparison(trials: Sequence[dict[str, Any]], direction: str, metric: str) -> Figure:
    """The CV scores of each family's complete trials side by side (a box and the trials as
    dots), best family on top, its best score written at the right.

    Args:
        trials: trial dicts as the run keeps them.
        direction: ``maximize`` or ``minimize``.
        metric: the metric's name, for the axis.
    """
    scores: dict[str, list[float]] = {}
    for trial in trials:
        if trial["state"] == "COMPLETE" and trial.get("score") is not None:
            scores.setdefault(trial["model"], []).append(float(trial["score"]))
    sign = 1 if direction == "maximize" else -1
    order = sorted(scores, key=lambda f: max(sign * s for s in scores[f]))  # best last: on top
    figure = _figure(7.5, max(2.2, 0.55 * len(order) + 1.2))
    ax = figure.add_subplot()
    if not order:
        ax.text(0.5, 0.5, "no complete trial", ha="center", va="center", transform=ax.transAxes)
        return figure
    colours = _colours([t["model"] for t in trials])  # as in the search trace
    values = [np.array(scores[f]) for f in order]
    ax.boxplot(values, orientation="horizontal", widths=0.5, showfliers=False,
               medianprops={"color": "#333333"})
    rng = np.random.default_rng(0)  # jitter only: the same figure every time
    for row, (family, points) in enumerate(zip(order, values, strict=True), start=1):
        jitter = rng.uniform(-0.15, 0.15, len(points))
        ax.scatter(points, row + jitter, color=colours[family], s=16, alpha=0.8, zorder=3)
        top = points.max() if direction == "maximize" else points.min()
        ax.annotate(f"{top:.4f}", (top, row), xytext=(6, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ax.set_yticks(range(1, len(order) + 1), order)
    ax.set_xlabel(f"CV {metric}" + (" (lower is better)" if direction == "minimize" else ""))
    ax.set_title("Model families (complete trials)")
    ax.grid(axis="x", alpha=0.3)
    return figure


def importances(table: Sequence[dict[str, Any]], metric: str) -> Figure:
    """Permutation importances as bars with their spread over the shuffles (one standard
    deviation), the largest on top; at most ``MAX_IMPORTANCE_BARS``.

    Args:
        table: ``{"feature", "importance", "std"}`` rows, largest first.
        metric: the metric whose loss the importances measure.
    """
    rows = list(table)[:MAX_IMPORTANCE_BARS][::-1]
    figure = _figure(7.5, max(2.2, 0.32 * len(rows) + 1.3))
    ax = figure.add_subplot()
    names = [_short(r["feature"]) for r in rows]
    ax.barh(names, [r["importance"] for r in rows], xerr=[r["std"] for r in rows],
            color="#4c72b0", ecolor="#333333", capsize=3)
    ax.axvline(0, color="#333333", linewidth=0.8)
    ax.set_xlabel(f"loss in {metric} when the column is shuffled")
    more = len(table) - len(rows)
    ax.set_title("Permutation importance on the holdout"
                 + (f" (top {len(rows)} of {len(table)})" if more > 0 else ""))
    ax.grid(axis="x", alpha=0.3)
    return figure


def _short(name: Any, width: int = 28) -> str:
    text = str(name)
    return text if len(text) <= width else text[: width - 1] + "…"


def confusion(y_true: Sequence[Any], y_pred: Sequence[Any], labels: Sequence[Any]) -> Figure:
    """The confusion matrix: counts written in each cell, shaded by the share of the true
    class's rows (so a rare class's errors show as clearly as a common one's).

    Args:
        y_true: the true labels; y_pred: the predicted labels.
        labels: the classes in the order of the rows and columns.
    """
    labels = list(labels)[:MAX_CONFUSION_CLASSES]
    index = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=int)
    for true, pred in zip(y_true, y_pred, strict=True):
        if true in index and pred in index:
            counts[index[true], index[pred]] += 1
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = min(7.5, max(4.8, 2.5 + 0.45 * len(labels)))
    figure = _figure(size + 1.0, size)
    ax = figure.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8 if len(labels) > 8 else 10,
                color="white" if share[i, j] > 0.6 else "#222222")
    names = [_short(label, 14) for label in labels]
    ax.set_xticks(range(len(labels)), names, rotation=45 if len(labels) > 4 else 0, ha="right"
                  if len(labels) > 4 else "center")
    ax.set_yticks(range(len(labels)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix on the holdout")
    figure.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
    return figure


def calibration(y_true: Sequence[Any], proba: np.ndarray, classes: Sequence[Any],
                positive: Any = None) -> Figure:
    """How far predicted probabilities are from observed frequencies: the share of positives
    against the mean predicted probability in ``CALIBRATION_BINS`` equal-count bins, with the
    diagonal of perfect calibration, and how the probabilities spread below. Binary tasks
    use the positive class; multiclass tasks the most probable class (its probability
    against how often it is right).

    Args:
        y_true: the true labels.
        proba: one column per class, in the order of ``classes``.
        classes: the labels of ``proba``'s columns.
        positive: the positive class of a binary task (default: the second class).
    """
    classes = list(classes)
    truth = np.asarray(y_true)
    if len(classes) == 2:
        column = classes.index(positive) if positive in classes else 1
        prob, hit = proba[:, column], truth == classes[column]
        label = f"predicted probability of {_short(classes[column], 20)}"
    else:
        picked = proba.argmax(axis=1)
        prob = proba[np.arange(len(proba)), picked]
        hit = truth == np.asarray(classes, dtype=object)[picked]
        label = "probability of the predicted class"
    figure = _figure(6.0, 5.2)
    top, bottom = figure.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    edges = np.unique(np.quantile(prob, np.linspace(0, 1, CALIBRATION_BINS + 1)))
    bins = np.clip(np.searchsorted(edges, prob, side="right") - 1, 0, max(len(edges) - 2, 0))
    mean_prob = [prob[bins == b].mean() for b in np.unique(bins)]
    observed = [hit[bins == b].mean() for b in np.unique(bins)]
    top.plot([0, 1], [0, 1], linestyle="--", color="#888888", label="perfectly calibrated")
    top.plot(mean_prob, observed, marker="o", color="#4c72b0", label="this model")
    top.set_ylabel("observed frequency")
    top.set_ylim(-0.02, 1.02)
    top.set_title("Calibration on the holdout")
    top.legend(fontsize=8, loc="upper left")
    top.grid(alpha=0.3)
    bottom.hist(prob, bins=20, range=(0, 1), color="#4c72b0", alpha=0.7)
    bottom.set_xlabel(label)
    bottom.set_ylabel("rows")
    bottom.set_xlim(-0.02, 1.02)
    return figure


def predicted_vs_true(y_true: np.ndarray, y_pred: np.ndarray, target: str) -> Figure:
    """Predicted against true values, with the diagonal where they are equal.

    Args:
        y_true: the true values; y_pred: the model's predictions.
        target: the target column's name, for the axes.
    """
    figure = _figure(5.6, 5.0)
    ax = figure.add_subplot()
    ax.scatter(y_true, y_pred, s=14, alpha=0.6, color="#4c72b0")
    both = np.concatenate([np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)])
    low, high = np.nanmin(both), np.nanmax(both)
    ax.plot([low, high], [low, high], linestyle="--", color="#888888")
    ax.set_xlabel(f"true {_short(target)}")
    ax.set_ylabel(f"predicted {_short(target)}")
    ax.set_title("Predicted against true on the holdout")
    ax.grid(alpha=0.3)
    return figure


def residuals(y_true: np.ndarray, y_pred: np.ndarray, target: str) -> Figure:
    """Residuals (true minus predicted) against the prediction, and their distribution.

    Args:
        y_true: the true values; y_pred: the model's predictions.
        target: the target column's name, for the axes.
    """
    error = np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float)
    figure = _figure(8.0, 4.0)
    scatter, histogram = figure.subplots(1, 2, width_ratios=[3, 1], sharey=True)
    scatter.scatter(y_pred, error, s=14, alpha=0.6, color="#4c72b0")
    scatter.axhline(0, color="#888888", linestyle="--")
    scatter.set_xlabel(f"predicted {_short(target)}")
    scatter.set_ylabel("residual (true - predicted)")
    scatter.set_title("Residuals on the holdout")
    scatter.grid(alpha=0.3)
    histogram.hist(error, bins=30, orientation="horizontal", color="#4c72b0", alpha=0.7)
    histogram.axhline(0, color="#888888", linestyle="--")
    histogram.set_xlabel("rows")
    return figure
