from __future__ import annotations

import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import cross_validate

from hyperpilot.tools.errors import DataError
from hyperpilot.tools.preprocess import (
    as_category_strings,
    build_pipeline,
    build_preprocessor,
    features_used,
)
from hyperpilot.tools.types import ColumnProfile, DataProfile, DataSteps


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


# --- DataSteps: feature limit, quantile numeric, ordinal categoricals ---------------------------

def informative_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """``y`` depends on ``signal`` and ``color`` only; the other columns are noise."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(0, 1, n)
    color = rng.choice(np.array(["red", "blue"], dtype=object), n)
    noise = {f"noise{i}": rng.normal(0, 1, n) for i in range(6)}
    logit = 2.5 * signal + np.where(color == "red", 2.0, -2.0)
    signal[::10] = np.nan
    return pd.DataFrame({"id": np.arange(n), "signal": signal, "color": color, **noise,
                         "y": np.where(logit + rng.normal(0, 0.5, n) > 0, "yes", "no")})


INFORMATIVE_KINDS = {"id": "id", "color": "categorical", "y": "categorical"}


def test_a_three_feature_pipeline_keeps_the_informative_columns_and_takes_raw_rows() -> None:
    frame = informative_frame()
    profile = make_profile(frame, "y", INFORMATIVE_KINDS)
    pipe = build_pipeline(profile, LogisticRegression(), steps=DataSteps(max_features=3))
    pipe.fit(frame.drop(columns=["y"]), frame["y"])

    used = features_used(pipe, profile)
    assert len(used) == 3 and {"signal", "color"} <= set(used)
    assert list(pipe.named_steps) == ["select", "prep", "model"]
    assert pipe.score(frame, frame["y"]) > 0.85
    # Columns the model does not use may be absent; a used one may not.
    unused = [c for c in profile.features if c not in used]
    assert list(pipe.predict(frame.drop(columns=unused).head(5))) == list(pipe.predict(frame.head(5)))
    with pytest.raises(DataError, match="lack the columns the model uses") as err:
        pipe.predict(frame.drop(columns=["signal"]))
    assert "\n" not in str(err.value)


def test_a_feature_limited_pipeline_reloads_in_a_fresh_process(tmp_path) -> None:
    frame = informative_frame()
    profile = make_profile(frame, "y", INFORMATIVE_KINDS)
    pipe = build_pipeline(profile, LogisticRegression(), steps=DataSteps(
        max_features=3, numeric="quantile", categorical="ordinal")).fit(frame, frame["y"])
    joblib.dump(pipe, tmp_path / "model.joblib")
    frame.to_parquet(tmp_path / "rows.parquet")
    code = ("import joblib, pandas as pd, sys; m = joblib.load(sys.argv[1]); "
            "print(','.join(m.predict(pd.read_parquet(sys.argv[2]))))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model.joblib"),
                           str(tmp_path / "rows.parquet")], capture_output=True, text=True,
                          timeout=120, check=True)

    assert done.stdout.strip().split(",") == list(pipe.predict(frame))


def test_the_selection_is_refit_on_each_training_fold() -> None:
    frame = informative_frame()
    profile = make_profile(frame, "y", INFORMATIVE_KINDS)
    pipe = build_pipeline(profile, LogisticRegression(), steps=DataSteps(max_features=2))
    result = cross_validate(pipe, frame, frame["y"], cv=3, return_estimator=True)

    assert not hasattr(pipe.named_steps["select"], "selected_")
    for fitted in result["estimator"]:
        assert set(features_used(fitted, profile)) == {"signal", "color"}
    assert result["test_score"].min() > 0.85


def test_selection_ranks_regression_targets_and_keeps_all_when_k_is_large() -> None:
    frame = informative_frame().drop(columns=["y"])
    frame["amount"] = 3 * frame["noise2"] + np.random.default_rng(1).normal(0, 0.3, len(frame))
    profile = make_profile(frame, "amount", INFORMATIVE_KINDS).model_copy(
        update={"task_type": "regression"})
    one = build_pipeline(profile, Ridge(), steps=DataSteps(max_features=1)).fit(frame,
                                                                                 frame["amount"])
    every = build_pipeline(profile, Ridge(), steps=DataSteps(max_features=50)).fit(
        frame, frame["amount"])

    assert features_used(one, profile) == ["noise2"]
    assert features_used(every, profile) == profile.features


def test_default_steps_build_the_plain_pipeline(frame: pd.DataFrame) -> None:
    profile = make_profile(frame, "y", KINDS)
    plain = build_pipeline(profile, LogisticRegression()).fit(frame, frame["y"])
    explicit = build_pipeline(profile, LogisticRegression(), steps=DataSteps()).fit(frame,
                                                                                   frame["y"])

    assert list(plain.named_steps) == ["prep", "model"]
    assert list(plain["prep"].get_feature_names_out()) == list(
        explicit["prep"].get_feature_names_out())
    assert features_used(plain, profile) == profile.features


def test_quantile_numeric_turns_a_skewed_column_normal_only_where_the_family_scales() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"price": rng.lognormal(0, 1.5, 500), "y": [0, 1] * 250})
    profile = make_profile(frame, "y", {})
    steps = DataSteps(numeric="quantile")
    scaled = build_preprocessor(profile, steps=steps).fit_transform(frame)[:, 0]
    unscaled = build_preprocessor(profile, scale=False, steps=steps).fit_transform(frame)[:, 0]

    assert frame["price"].skew() > 3 and abs(pd.Series(scaled).skew()) < 0.1
    assert abs(scaled.mean()) < 0.05 and abs(scaled.std() - 1) < 0.1
    np.testing.assert_allclose(unscaled, frame["price"])


def test_ordinal_categoricals_are_one_column_of_codes_with_unseen_as_minus_one() -> None:
    frame = pd.DataFrame({"city": [f"c{i % 60}" for i in range(600)], "y": [0, 1] * 300})
    pre = build_preprocessor(make_profile(frame, "y", {"city": "categorical"}),
                             steps=DataSteps(categorical="ordinal")).fit(frame)
    out = pre.transform(pd.DataFrame({"city": ["c0", "c59", "never seen"]}))

    assert out.shape == (3, 1) and out[2, 0] == -1
    assert len(np.unique(pre.transform(frame))) == 60


def test_data_steps_describe_themselves_in_one_line() -> None:
    assert DataSteps().describe() == "all features; standardised numeric; one-hot categoricals"
    assert DataSteps(max_features=10, numeric="quantile").describe() == (
        "top 10 features by forest importance; quantile-normal numeric; one-hot categoricals")
    with pytest.raises(ValueError):
        DataSteps(max_features=0)


def test_a_wide_table_with_free_text_keeps_its_sparse_terms_through_the_screen() -> None:
    from hyperpilot.tools.data import profile_table
    from hyperpilot.tools.preprocess import build_pipeline

    rng = np.random.default_rng(0)
    words = ["good", "bad", "slow", "fast", "cheap", "broken", "great", "awful"]
    frame = pd.DataFrame(rng.normal(size=(40, 60)), columns=[f"x{i}" for i in range(60)])
    frame["review"] = [" ".join(rng.choice(words, 12)) + f" note {i}" for i in range(40)]
    frame["label"] = np.where(frame["x0"] > 0, "yes", "no")
    profile = profile_table(frame, "label")
    assert "review" in profile.text_features and len(profile.features) >= profile.n_rows
    from sklearn.linear_model import LogisticRegression

    pipeline = build_pipeline(profile, LogisticRegression(), sparse=True)
    X = frame.drop(columns="label")
    pipeline.fit(X, frame["label"])
    assert pipeline.named_steps["screen"].kept_.size < pipeline.named_steps["screen"].n_features_in_
    assert set(pipeline.predict(X)) <= {"yes", "no"}
