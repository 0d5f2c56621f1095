"""Columns as people have them: free text, dates, time-ordered tasks and p >> n tables."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from hyperpilot.tools.column_steps import DateParts
from hyperpilot.tools.data import profile_table, split_holdout
from hyperpilot.tools.evaluate import make_folds
from hyperpilot.tools.preprocess import build_pipeline
from hyperpilot.tools.time_order import asks_for_forecast, time_column

GOOD = ["great taste, I love it", "delicious and fresh, will buy again", "excellent, my favourite"]
BAD = ["stale and bland, do not buy", "awful taste, threw it away", "terrible, arrived broken"]


def reviews(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    good = rng.random(n) < 0.5
    text = [f"{rng.choice(GOOD if g else BAD)} batch {i} of the product line number {i % 7}"
            for i, g in enumerate(good)]
    return pd.DataFrame({"product": [f"B00{i:05d}" for i in range(n)], "review": text,
                         "score": np.where(good, "great", "other")})


def test_free_text_becomes_features_and_an_id_stays_unused() -> None:
    frame = reviews()
    profile = profile_table(frame, "score")
    assert profile.text_features == ["review"] and "product" in profile.dropped
    X, y = frame.drop(columns="score"), frame["score"]
    for model, scale in ((LogisticRegression(max_iter=500), True),
                         (RandomForestClassifier(50, random_state=0), False)):
        scores = cross_val_score(build_pipeline(profile, model, scale=scale), X, y, cv=3)
        assert scores.mean() > 0.9


def test_a_text_pipeline_saved_and_loaded_predicts_raw_rows(tmp_path) -> None:
    frame = reviews()
    profile = profile_table(frame, "score")
    pipe = build_pipeline(profile, LogisticRegression(max_iter=500)).fit(
        frame.drop(columns="score"), frame["score"])
    joblib.dump(pipe, tmp_path / "m.joblib")
    rows = pd.DataFrame({"product": ["x", "y"], "review": ["delicious, love it", None]})
    assert joblib.load(tmp_path / "m.joblib").predict(rows)[0] == "great"


def test_dates_become_parts() -> None:
    dates = pd.Series(["2021-01-04", "2021-02-28", "not a date"], name="day")
    parts = DateParts().fit(dates.to_frame())
    out = parts.transform(dates.to_frame())
    assert out[0].tolist() == [2021, 1, 4, 0, 4] and out[1].tolist() == [2021, 2, 28, 6, 59]
    assert np.isnan(out[2]).all()
    assert list(parts.get_feature_names_out())[:2] == ["day_year", "day_month"]


def daily(n: int = 200) -> pd.DataFrame:
    days = pd.date_range("2020-01-01", periods=n, freq="D")
    weekday = days.day_of_week.to_numpy()
    ridership = 10 + 5 * (weekday < 5) + 0.01 * np.arange(n)
    return pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "temp": np.cos(np.arange(n) / 9),
                         "ridership": ridership})


def test_weekday_pattern_is_learned_from_the_date_column() -> None:
    frame = daily()
    profile = profile_table(frame, "ridership")
    assert profile.date_features == ["date"]
    from sklearn.ensemble import RandomForestRegressor
    scores = cross_val_score(build_pipeline(profile, RandomForestRegressor(50, random_state=0),
                                            scale=False),
                             frame.drop(columns="ridership"), frame["ridership"], cv=3)
    assert scores.mean() > 0.7  # chance is 0.5


@pytest.mark.parametrize("text, expected", [
    ("need to forecast ridership for later dates", True),
    ("train on the past, evaluate on the most recent stretch", True),
    ("predict the price of the house", False),
])
def test_forecast_words(text: str, expected: bool) -> None:
    assert asks_for_forecast(text) is expected


def test_time_column_from_words_or_from_a_dated_series() -> None:
    frame = daily()
    profile = profile_table(frame, "ridership")
    assert time_column("forecast ridership", profile, frame) == "date"
    assert time_column("predict ridership", profile, frame) == "date"  # one row per day, in order
    shuffled = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    assert time_column("predict ridership", profile, shuffled) is None
    assert time_column("forecast ridership", profile, shuffled) == "date"
    plain = profile_table(frame.drop(columns="date"), "ridership")
    assert time_column("forecast ridership", plain, frame) is None


def test_time_ordered_holdout_is_the_latest_rows() -> None:
    frame = daily(100).sample(frac=1.0, random_state=1).reset_index(drop=True)
    train, holdout = split_holdout(frame, "ridership", "regression", time_column="date")
    dates = pd.to_datetime(frame["date"])
    assert len(holdout) == 20 and dates[train].max() < dates[holdout].min()
    assert dates[train].is_monotonic_increasing and dates[holdout].is_monotonic_increasing


def test_time_ordered_folds_test_on_later_rows_only() -> None:
    folds = make_folds(np.arange(50.0), "regression", 5, seed=0, time_ordered=True)
    assert len(folds) == 5
    assert all(train.max() < test.min() for train, test in folds)
    shuffled = make_folds(np.arange(50.0), "regression", 5, seed=0)
    assert any(train.max() > test.min() for train, test in shuffled)


def test_a_wide_table_is_screened_inside_each_fold() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(60, 3000)), columns=[f"g{i}" for i in range(3000)])
    y = np.where(X["g0"] > 0, "a", "b")
    profile = profile_table(X.assign(label=y), "label")
    pipe = build_pipeline(profile, LogisticRegression(max_iter=500))
    assert "screen" in pipe.named_steps
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.7  # chance is 0.5
    pipe.fit(X, y)
    assert 0 in pipe.named_steps["screen"].kept_
    assert len(pipe.named_steps["screen"].kept_) == 15


def test_text_reaches_a_sparse_family_as_a_broad_sparse_vocabulary_and_trees_as_svd() -> None:
    from scipy import sparse

    from hyperpilot.tools.column_steps import MAX_TEXT_TERMS
    from hyperpilot.tools.preprocess import build_preprocessor

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(3000)]
    frame = pd.DataFrame({"review": [" ".join(rng.choice(words, 12)) for _ in range(400)],
                          "stars": rng.integers(1, 6, 400).astype(float),
                          "y": ["a", "b"] * 200})
    profile = profile_table(frame, "y")
    assert profile.text_features == ["review"]
    broad = build_preprocessor(profile, scale=True, sparse=True).fit_transform(frame)
    assert sparse.issparse(broad) and broad.shape[1] > MAX_TEXT_TERMS + 1
    dense = build_preprocessor(profile, scale=True).fit_transform(frame)
    assert not sparse.issparse(dense) and dense.shape[1] == MAX_TEXT_TERMS + 1
    trees = build_preprocessor(profile, scale=False, sparse=True).fit_transform(frame)
    assert not sparse.issparse(trees) and trees.shape[1] <= 101
    model = build_pipeline(profile, LogisticRegression(max_iter=500), sparse=True)
    assert model.fit(frame.drop(columns="y"), frame["y"]).predict(frame.head(3)).shape == (3,)
