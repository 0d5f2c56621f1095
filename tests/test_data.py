from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from hyperpilot.tools.data import (
    BUNDLED,
    column_kind,
    infer_task_type,
    load_table,
    profile_table,
    single_feature_leakage,
    split_holdout,
)
from hyperpilot.tools.errors import DataError
from hyperpilot.tools.shift import distribution_shift


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_sets_load_with_their_target(name: str) -> None:
    frame = load_table(f"sklearn:{name}")
    target = BUNDLED[name][0]
    assert target in frame.columns and len(frame) > 100


def test_csv_and_parquet_load_the_same_table(tmp_path) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(load_table(str(tmp_path / "t.csv")), frame)
    pd.testing.assert_frame_equal(load_table(str(tmp_path / "t.parquet")), frame)


@pytest.mark.parametrize("content, suffix, message", [
    (None, ".csv", "not found"),
    ("", ".csv", "is empty"),
    ("a,b\n", ".csv", "no rows"),
    ("x", ".xlsx", "unsupported data format"),
    ("PAR1garbage", ".parquet", "cannot read"),
])
def test_bad_files_give_one_clear_error(tmp_path, content, suffix, message) -> None:
    path = tmp_path / f"data{suffix}"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message) as err:
        load_table(str(path))
    assert "\n" not in str(err.value)


def test_unknown_bundled_name_lists_the_choices() -> None:
    with pytest.raises(DataError, match="sklearn:iris"):
        load_table("sklearn:mnist")


def test_column_kinds() -> None:
    n = 100
    frame = pd.DataFrame({
        "id": range(n), "const": 1, "num": np.linspace(0, 1, n) ** 2,
        "cat": ["a", "b"] * (n // 2), "flag": [True, False] * (n // 2),
        "when": pd.date_range("2020-01-01", periods=n).astype(str),
        "note": [f"a long free text comment number {i} about things" for i in range(n)],
    })
    kinds = {c: column_kind(frame[c]) for c in frame.columns}
    assert kinds == {"id": "id", "const": "constant", "num": "numeric", "cat": "categorical",
                     "flag": "boolean", "when": "datetime", "note": "text"}


def test_task_type_inference() -> None:
    assert infer_task_type(pd.Series(["a", "b", "a"])) == "binary"
    assert infer_task_type(pd.Series([0, 1, 2, 1, 0] * 20)) == "multiclass"
    assert infer_task_type(pd.Series(np.linspace(0, 1, 200))) == "regression"
    with pytest.raises(DataError, match="single value"):
        infer_task_type(pd.Series(["a"] * 10, name="y"))


def test_profile_drops_ids_and_rejects_a_missing_target() -> None:
    frame = load_table("sklearn:iris")
    frame["row_id"] = range(len(frame))
    profile = profile_table(frame, "species")
    assert "row_id" in profile.dropped and "row_id" not in profile.features
    assert profile.class_counts == {"setosa": 50, "versicolor": 50, "virginica": 50}
    with pytest.raises(DataError, match="'nope' not found"):
        profile_table(frame, "nope")


def test_holdout_split_is_disjoint_stratified_and_repeatable() -> None:
    frame = load_table("sklearn:breast_cancer")
    train, holdout = split_holdout(frame, "diagnosis", "binary", seed=3)
    assert not set(train) & set(holdout) and len(train) + len(holdout) == len(frame)
    assert (train, holdout) == split_holdout(frame, "diagnosis", "binary", seed=3)
    share = frame["diagnosis"].iloc[holdout].eq("malignant").mean()
    assert abs(share - frame["diagnosis"].eq("malignant").mean()) < 0.02


def test_leakage_screen_flags_a_copy_of_the_target_only() -> None:
    frame = load_table("sklearn:iris")
    frame["leak"] = frame["species"].map({"setosa": 3, "versicolor": 1, "virginica": 2})
    features = [c for c in frame.columns if c != "species"]
    flags = single_feature_leakage(frame, "species", features, "multiclass")
    assert list(flags) == ["leak"]


# --- distribution shift between training and holdout rows --------------------------------------

@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_random_splits_of_a_bundled_set_raise_no_alarm(name: str) -> None:
    frame = load_table(f"sklearn:{name}")
    profile = profile_table(frame, BUNDLED[name][0])
    for seed in range(4):
        train, holdout = split_holdout(frame, profile.target, profile.task_type, seed=seed)
        findings = distribution_shift(frame.iloc[train], frame.iloc[holdout], profile)

        assert [f.line for f in findings if f.severe] == []
        assert {f.column for f in findings} == {*profile.features, profile.target}


def mixed_table(n: int, seed: int = 0) -> pd.DataFrame:
    """Numeric, boolean, missing values and a long-tailed category with many rare values."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "income": rng.lognormal(3, 1, n), "member": rng.random(n) > 0.3,
        "plan": rng.choice(["basic", "plus", "pro", None], n, p=[0.5, 0.3, 0.15, 0.05]),
        "city": [f"city{int(v)}" for v in rng.zipf(1.6, n)],
        "churn": rng.choice(["yes", "no"], n, p=[0.2, 0.8]),
    })


def test_random_splits_of_a_table_with_rare_categories_raise_no_alarm() -> None:
    frame = mixed_table(3000)
    profile = profile_table(frame, "churn")
    for seed in range(5):
        train, holdout = split_holdout(frame, "churn", "binary", seed=seed)
        findings = distribution_shift(frame.iloc[train], frame.iloc[holdout], profile)
        city = next(f for f in findings if f.column == "city")

        assert [f.line for f in findings if f.severe] == []
        assert city.kind == "categorical" and city.unseen_share > 0.02  # new rare cities


def test_a_holdout_sorted_by_a_feature_is_flagged() -> None:
    frame = load_table("sklearn:breast_cancer").sort_values("mean radius", ignore_index=True)
    profile = profile_table(frame, "diagnosis")
    findings = distribution_shift(frame.iloc[:455], frame.iloc[455:], profile)
    severe = {f.column: f for f in findings if f.severe}

    assert findings[0].column in severe and "mean radius" in severe
    assert severe["diagnosis"].is_target and "distributed differently" in severe["diagnosis"].line


def test_an_offset_feature_is_the_only_one_flagged() -> None:
    frame = load_table("sklearn:wine")
    profile = profile_table(frame, "cultivar")
    train, holdout = split_holdout(frame, "cultivar", "multiclass", seed=1)
    shifted = frame.iloc[holdout].assign(alcohol=lambda d: d["alcohol"] + 3 * frame["alcohol"].std())
    findings = distribution_shift(frame.iloc[train], shifted, profile)

    assert [(f.column, f.kind) for f in findings if f.severe] == [("alcohol", "numeric")]
    assert findings[0].statistic > 0.8 and "Kolmogorov-Smirnov" in findings[0].line


def test_new_categories_and_changed_shares_are_flagged() -> None:
    frame = mixed_table(2000)
    profile = profile_table(frame, "churn")
    train, holdout = frame.iloc[:1600], frame.iloc[1600:].copy()
    holdout.loc[holdout.index[:60], "city"] = "a new city"
    holdout["plan"] = np.where(np.arange(len(holdout)) % 2 == 0, "pro", "basic")
    severe = {f.column: f for f in distribution_shift(train, holdout, profile) if f.severe}

    assert set(severe) == {"city", "plan"}
    assert severe["city"].unseen_share >= 0.15 and "never seen in training" in severe["city"].line
    assert severe["plan"].statistic > 0.2 and "chi-square" in severe["plan"].line


def test_shift_screening_is_fast_on_large_tables() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(0, 1, (40_000, 30)), columns=[f"x{i}" for i in range(30)])
    frame["y"] = rng.normal(0, 1, len(frame))
    profile = profile_table(frame, "y")

    started = time.perf_counter()
    findings = distribution_shift(frame.iloc[:30_000], frame.iloc[30_000:], profile)

    assert time.perf_counter() - started < 2.0 and len(findings) == 31
    assert not any(f.severe for f in findings)
