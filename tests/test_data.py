from __future__ import annotations

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
