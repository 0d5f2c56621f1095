"""Turn a ``DataProfile`` into a scikit-learn preprocessor that accepts raw data frames."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from hyperpilot.tools.errors import DataError
from hyperpilot.tools.types import DataProfile

MAX_CATEGORIES = 30


def as_numbers(X: Any) -> pd.DataFrame:
    """Coerce every column to float; booleans become 0/1 and unparseable values NaN.

    Args:
        X: a data frame or 2-D array of the numeric and boolean feature columns.
    """
    return pd.DataFrame(X).apply(pd.to_numeric, errors="coerce").astype(float)


def as_category_strings(X: Any) -> pd.DataFrame:
    """Cast every present value to ``str`` and every missing one (None, NaN, NA) to NaN.

    Encoders refuse columns that mix numbers, strings and None; this makes them uniform.

    Args:
        X: a data frame or 2-D array of the categorical feature columns.
    """
    frame = pd.DataFrame(X).astype(object)
    present = frame.notna()
    return frame.map(str, na_action="ignore").where(present, np.nan)


def _numeric_steps(scale: bool, indicate_missing: bool) -> Pipeline:
    # Scaling first (StandardScaler ignores NaN) keeps the missing indicators exactly 0/1.
    steps: list[tuple[str, Any]] = [
        ("to_float", FunctionTransformer(as_numbers, feature_names_out="one-to-one")),
    ]
    if scale:
        steps.append(("scale", StandardScaler()))
    steps.append(("impute", SimpleImputer(strategy="median", add_indicator=indicate_missing)))
    return Pipeline(steps)


def _categorical_steps() -> Pipeline:
    return Pipeline([
        ("to_str", FunctionTransformer(as_category_strings, feature_names_out="one-to-one")),
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist",
                                 max_categories=MAX_CATEGORIES, sparse_output=False)),
    ])


def build_preprocessor(profile: DataProfile, scale: bool = True) -> ColumnTransformer:
    """Build an unfitted preprocessor for the features in ``profile``.

    Numeric and boolean features are coerced to float, scaled (when ``scale``) and
    median-imputed, with a missing indicator for columns the profile saw missing values
    in. Categorical features are cast to strings, mode-imputed and one-hot encoded (at
    most 30 categories; unseen ones at predict time fall into "infrequent" or all zeros).
    Every other column (target, ids, dropped ones) is ignored, so raw frames can be passed.

    Args:
        profile: the data profile whose ``features`` and column kinds decide the steps.
        scale: standardise numeric features (needed by linear, kernel, kNN and neural models).
    """
    missing = {c.name for c in profile.columns if c.missing_fraction > 0}
    numeric = profile.numeric_features
    groups: list[tuple[str, Any, list[str]]] = [
        ("num", _numeric_steps(scale, False), [c for c in numeric if c not in missing]),
        ("num_missing", _numeric_steps(scale, True), [c for c in numeric if c in missing]),
        ("cat", _categorical_steps(), profile.categorical_features),
    ]
    transformers = [group for group in groups if group[2]]
    if not transformers:
        raise DataError("no usable numeric or categorical features to train on")
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


def build_pipeline(profile: DataProfile, estimator: BaseEstimator, scale: bool = True) -> Pipeline:
    """Chain ``build_preprocessor(profile, scale)`` and ``estimator`` as steps "prep", "model".

    Args:
        profile: the data profile that decides the preprocessing.
        estimator: an unfitted scikit-learn compatible estimator.
        scale: standardise numeric features before the estimator.
    """
    return Pipeline([("prep", build_preprocessor(profile, scale)), ("model", estimator)])
