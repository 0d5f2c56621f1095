from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression, LogisticRegression

from hyperpilot.tools.importance import permutation_importance


def test_the_informative_column_ranks_first_whatever_the_metric_direction() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"noise": rng.normal(size=400), "signal": rng.normal(size=400)})
    y = pd.Series(3 * X["signal"] + rng.normal(scale=0.1, size=400))
    model = LinearRegression().fit(X, y)
    for metric in ("r2", "rmse"):
        table = permutation_importance(model, X, y, ["noise", "signal"], metric, n_repeats=3)
        assert [row["feature"] for row in table] == ["signal", "noise"]
        assert table[0]["importance"] > 0.5 and abs(table[1]["importance"]) < 0.05
    labels = (X["signal"] > 0).map({True: "yes", False: "no"})
    clf = LogisticRegression().fit(X, labels)
    again = permutation_importance(clf, X, labels, ["noise", "signal"], "recall", "yes", seed=1)
    assert again[0]["feature"] == "signal" and again == permutation_importance(
        clf, X, labels, ["noise", "signal"], "recall", "yes", seed=1)
