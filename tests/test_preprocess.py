from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from hyperpilot.tools.errors import DataError
from hyperpilot.tools.preprocess import as_category_strings, build_pipeline, build_preprocessor
from hyperpilot.tools.types import ColumnProfile, DataProfile


def make_profile(frame: pd.DataFrame, target: str, kinds: dict[str, str]) -> DataProfile:
    columns = [
        ColumnProfile(name=name, dtype=str(frame[name].dtype), kind=kinds.get(name, "numeric"),
                      missing_fraction=float(frame[name].isna().mean()),
                      n_unique=int(frame[name].nunique()))
        for name in frame.columns
    ]
    features = [c.name for c in columns if c.name != target and c.kind != "id"]
    return DataProfile(n_rows=len(frame), n_columns=frame.shape[1], target=target,
                       columns=columns, task_type="binary", features=features)


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 80
    age = rng.normal(40, 10, n)
    age[::7] = np.nan
    color = rng.choice(np.array(["red", "green", "blue"], dtype=object), n)
    color[::9] = None
    mixed = np.array([1, "one", 2.5, None] * (n // 4), dtype=object)
    return pd.DataFrame({
        "id": np.arange(n), "age": age, "income": rng.normal(0, 1, n),
        "member": rng.random(n) > 0.5, "color": color, "mixed": mixed,
        "y": np.where(age > 40, "yes", "no"),
    })


KINDS = {"id": "id", "member": "boolean", "color": "categorical", "mixed": "categorical",
         "y": "categorical"}


def test_mixed_frame_with_missing_values_and_unseen_category(frame: pd.DataFrame) -> None:
    pipe = build_pipeline(make_profile(frame, "y", KINDS), LogisticRegression())
    pipe.fit(frame, frame["y"])
    new = frame.head(3).copy()
    new["color"] = ["purple", None, "red"]
    new["mixed"] = [np.nan, "never seen", 1]
    new["age"] = np.nan

    assert list(pipe.predict(new)) == list(pipe.predict(new.drop(columns=["id", "y"])))
    assert np.isfinite(pipe["prep"].transform(new)).all()
    assert pipe.score(frame, frame["y"]) > 0.7


def test_columns_outside_the_features_are_ignored(frame: pd.DataFrame) -> None:
    pre = build_preprocessor(make_profile(frame, "y", KINDS)).fit(frame)
    extra = frame.assign(unrelated=np.arange(len(frame)), y="shuffled")
    names = pre.get_feature_names_out()

    np.testing.assert_array_equal(pre.transform(frame), pre.transform(extra))
    assert not any("id" in n.split("__")[1] or "unrelated" in n for n in names)


def test_missing_indicator_only_for_columns_with_missing_values(frame: pd.DataFrame) -> None:
    names = list(build_preprocessor(make_profile(frame, "y", KINDS)).fit(frame)
                 .get_feature_names_out())

    assert "num_missing__missingindicator_age" in names
    assert not any("missingindicator_income" in n for n in names)


def test_scale_false_keeps_numbers_as_they_are(frame: pd.DataFrame) -> None:
    profile = make_profile(frame[["income", "y"]], "y", KINDS)
    out = build_preprocessor(profile, scale=False).fit_transform(frame)

    np.testing.assert_allclose(out[:, 0], frame["income"])


def test_only_categorical_features(frame: pd.DataFrame) -> None:
    profile = make_profile(frame[["color", "y"]], "y", KINDS)
    out = build_preprocessor(profile).fit_transform(frame)

    assert out.shape == (len(frame), 3)  # red, green, blue; missing imputed to the mode
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


def test_at_most_thirty_categories() -> None:
    frame = pd.DataFrame({"city": [f"c{i % 60}" for i in range(600)], "y": [0, 1] * 300})
    out = build_preprocessor(make_profile(frame, "y", {"city": "categorical"})).fit_transform(frame)

    assert out.shape[1] <= 30


def test_no_usable_features_is_a_data_error(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="no usable"):
        build_preprocessor(make_profile(frame[["id", "y"]], "y", KINDS))


def test_fitted_pipeline_survives_joblib(frame: pd.DataFrame, tmp_path) -> None:
    pipe = build_pipeline(make_profile(frame, "y", KINDS), LogisticRegression()).fit(frame,
                                                                                    frame["y"])
    joblib.dump(pipe, tmp_path / "model.joblib")

    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(frame), pipe.predict_proba(frame))


def test_category_strings_keep_missing_values_missing() -> None:
    out = as_category_strings(pd.DataFrame({"a": [1, "x", None, np.nan, pd.NA, 2.5]}))

    assert list(out["a"].isna()) == [False, False, True, True, True, False]
    assert list(out["a"].dropna()) == ["1", "x", "2.5"]
