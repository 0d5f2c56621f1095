"""The report's figures: each draws what it says from the data it is given."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hyperpilot.tools import plots
from hyperpilot.tools.evaluation import (
    MIN_REPEATS,
    MIN_ROWS,
    REPEATS,
    bounded_importance,
    holdout_predictions,
    repeats_within,
)
from hyperpilot.tools.importance import MAX_ROWS


@pytest.fixture(scope="module")
def iris_frame():
    from hyperpilot.tools.data import load_table

    return load_table("sklearn:iris")


def trial(number: int, model: str, score: float | None, state: str = "COMPLETE",
          plan: str = "plan-1", **tuner: float) -> dict:
    return {"number": number, "model": model, "score": score, "state": state, "plan_id": plan,
            "tuner": tuner}


TRIALS = [trial(0, "random_forest", 0.90), trial(1, "linear", 0.85),
          trial(2, "linear", None, "PRUNED", rung_score=0.70),
          trial(3, "svm", None, "FAIL"), trial(4, "random_forest", 0.93),
          trial(5, "svm", 0.88, plan="plan-2"), trial(6, "svm", 0.91, plan="plan-2")]


def legend_labels(figure) -> list[str]:
    return [t.get_text() for t in figure.axes[0].get_legend().get_texts()]


def test_search_trace_marks_pruned_and_failed_trials_and_each_plans_best(tmp_path: Path) -> None:
    figure = plots.search_trace(TRIALS, "maximize", "accuracy")
    labels = legend_labels(figure)
    assert {"random_forest", "linear", "svm"} <= set(labels)
    assert "pruned (score when stopped)" in labels and "failed" in labels
    assert "best so far (plan-1)" in labels and "best so far (plan-2)" in labels
    ax = figure.axes[0]
    steps = [line.get_ydata() for line in ax.get_lines()]
    assert max(steps[0]) == pytest.approx(0.93)  # plan-1's best so far ends at its best
    assert max(steps[1]) == pytest.approx(0.91)
    path = plots.save_png(figure, tmp_path / "plots" / "trace.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_search_trace_without_pruning_or_failures_says_neither() -> None:
    labels = legend_labels(plots.search_trace(TRIALS[:2], "minimize", "rmse"))
    assert "failed" not in labels and not any("pruned" in t for t in labels)


def test_a_trivial_trial_far_behind_does_not_squash_the_rest() -> None:
    far = [trial(i, "linear", 0.9 + 0.001 * i) for i in range(10)] + [trial(10, "dummy", 0.1)]
    low, high = plots.search_trace(far, "maximize", "accuracy").axes[0].get_ylim()
    assert low > 0.5 and high > 0.909  # the dummy sits on the lower edge


def test_family_comparison_puts_the_best_family_on_top() -> None:
    figure = plots.family_comparison(TRIALS, "maximize", "accuracy")
    ticks = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert ticks[-1] == "random_forest"  # matplotlib draws the last row on top
    best = sorted(t.get_text() for t in figure.axes[0].texts)
    assert best == ["0.8500", "0.9100", "0.9300"]
    flipped = plots.family_comparison(TRIALS, "minimize", "rmse")
    assert [t.get_text() for t in flipped.axes[0].get_yticklabels()][-1] == "linear"


def test_importances_show_the_largest_with_their_spread() -> None:
    table = [{"feature": f"f{i}", "importance": 1.0 / (i + 1), "std": 0.01} for i in range(20)]
    figure = plots.importances(table, "accuracy")
    names = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert len(names) == plots.MAX_IMPORTANCE_BARS and names[-1] == "f0"
    assert "top 15 of 20" in figure.axes[0].get_title()


def test_confusion_counts_each_true_and_predicted_pair() -> None:
    true = ["a", "a", "b", "b", "b", "c"]
    pred = ["a", "b", "b", "b", "c", "c"]
    figure = plots.confusion(true, pred, ["a", "b", "c"])
    cells = [int(t.get_text()) for t in figure.axes[0].texts]
    assert cells == [1, 1, 0, 0, 2, 1, 0, 0, 1]


def test_calibration_of_binary_and_multiclass_probabilities(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=400)
    y = np.where(rng.uniform(size=400) < p, "yes", "no")
    figure = plots.calibration(y, np.column_stack([1 - p, p]), ["no", "yes"], "yes")
    x, observed = figure.axes[0].get_lines()[1].get_data()
    assert np.abs(np.asarray(observed) - np.asarray(x)).max() < 0.2  # calibrated by construction
    assert "yes" in figure.axes[1].get_xlabel()
    proba = rng.dirichlet([1, 1, 1], size=300)
    labels = np.array(["a", "b", "c"])[proba.argmax(axis=1)]
    multi = plots.calibration(labels, proba, ["a", "b", "c"])
    _, hits = multi.axes[0].get_lines()[1].get_data()
    assert np.allclose(hits, 1.0)  # always right about its most probable class
    plots.save_png(multi, tmp_path / "c.png")


def test_regression_plots_draw_every_row() -> None:
    y = np.arange(50, dtype=float)
    pred = y + np.sin(y)
    scatter = plots.predicted_vs_true(y, pred, "price").axes[0]
    assert len(scatter.collections[0].get_offsets()) == 50
    residual = plots.residuals(y, pred, "price").axes[0]
    assert np.allclose(residual.collections[0].get_offsets()[:, 1], y - pred)


def test_shuffles_within_the_budget() -> None:
    assert repeats_within(10.0, 10, 0.01) == REPEATS  # 99 calls fit: five shuffles at most
    assert repeats_within(0.5, 10, 0.01) == 4
    assert repeats_within(0.15, 10, 0.01) == 0  # one shuffle gives no spread: none
    assert repeats_within(-1.0, 10, 0.01) == 0


class SlowModel:
    """A classifier whose scoring takes a known time per row (and a fixed part)."""

    def __init__(self, model, per_row: float, fixed: float = 0.0) -> None:
        self.model, self.per_row, self.fixed = model, per_row, fixed
        self.classes_ = model.classes_

    def fit(self, X, y):  # scikit-learn checks that it has one; never called
        raise AssertionError("a fitted model is never fitted again")

    def predict(self, X):
        time.sleep(self.fixed + self.per_row * len(X))
        return self.model.predict(X)


@pytest.fixture(scope="module")
def fitted(iris_frame):
    from sklearn.linear_model import LogisticRegression

    frame = pd.concat([iris_frame] * 14, ignore_index=True)  # 2,100 rows
    X, y = frame.drop(columns=["species"]), frame["species"]
    return LogisticRegression(max_iter=500).fit(X, y), X, y


def test_bounded_importance_takes_what_fits(fitted) -> None:
    model, X, y = fitted
    found = bounded_importance(model, X, y, list(X.columns), "accuracy", None, 10.0)
    assert len(found.table) == 4 and found.repeats == REPEATS and found.rows == MAX_ROWS
    assert found.table[0]["importance"] >= found.table[-1]["importance"]
    assert found.seconds < 10.0


def test_bounded_importance_takes_fewer_rows_when_the_model_is_slow(fitted) -> None:
    model, X, y = fitted
    slow = SlowModel(model, per_row=1e-4)  # 0.2 s a call on 2,000 rows: 9 calls take 1.8 s
    found = bounded_importance(slow, X, y, list(X.columns), "accuracy", None, 1.0)
    assert found.table and MIN_ROWS <= found.rows < MAX_ROWS and found.repeats >= MIN_REPEATS
    assert found.seconds < 1.0 * 1.5


def test_bounded_importance_says_why_it_skipped(fitted) -> None:
    model, X, y = fitted
    slow = SlowModel(model, per_row=0.0, fixed=0.05)  # fewer rows do not help
    skipped = bounded_importance(slow, X, y, list(X.columns), "accuracy", None, 0.2)
    assert skipped.table == [] and "more than the 0 s left for it" in skipped.note
    none_left = bounded_importance(model, X, y, list(X.columns), "accuracy", None, 0.0)
    assert none_left.table == [] and none_left.note.startswith("not computed")


def test_holdout_predictions_keep_every_class_probability(iris_frame) -> None:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    X, y = iris_frame.drop(columns=["species"]), iris_frame["species"]
    frame, classes = holdout_predictions(LogisticRegression(max_iter=500).fit(X, y), X, y)
    assert classes == sorted(set(y)) and list(frame.columns[:2]) == ["true", "predicted"]
    assert np.allclose(frame[[f"proba_{i}" for i in range(3)]].sum(axis=1), 1.0)
    target = X.pop("petal width (cm)")
    frame, classes = holdout_predictions(LinearRegression().fit(X, target), X, target)
    assert classes == [] and list(frame.columns) == ["true", "predicted"]
