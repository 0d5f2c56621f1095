"""Per-column steps for dates and free text, fitted inside the model pipeline so that
cross-validation and the saved model see the same features."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted

from hyperpilot.tools.time_order import as_dates

DATE_PARTS = ("year", "month", "day", "day_of_week", "day_of_year")
# A bounded vocabulary keeps the dense matrix small enough for every family. On 3,200
# training reviews (fine_foods-like), 1,000 terms against 2,000 cost a logistic regression
# 0.01 F1 and cut an RBF SVM's fit from 22 s to 8 s.
MAX_TEXT_TERMS = 1000
# Families that take a sparse matrix in time linear in its non-zeros (``ModelEntry.sparse``)
# get a larger vocabulary, kept sparse: on the same reviews, 20,000 terms against 1,000 gave a
# logistic regression +0.012 cross-validated F1 for 1.5 s more over five folds.
SPARSE_TEXT_TERMS = 20_000
TEXT_COMPONENTS = 100


class DateParts(TransformerMixin, BaseEstimator):
    """Each date column as its year, month, day, day of week and day of year (floats).

    Values that do not parse as dates are missing; an hour part is added for columns that
    held a time of day other than midnight at fit time.
    """

    def fit(self, X: Any, y: Any = None) -> DateParts:
        frame = _date_frame(X)
        if frame.shape[0] == 0 or frame.shape[1] == 0:  # worded as scikit-learn's own check
            kind = "sample" if frame.shape[0] == 0 else "feature"
            raise ValueError(f"Found array with 0 {kind}(s) (shape={frame.shape}) while a minimum "
                             "of 1 is required by DateParts.")
        self.n_features_in_ = frame.shape[1]
        self.columns_ = [str(c) for c in frame.columns]
        self.with_hour_ = [bool((as_dates(frame[c]).dt.hour.fillna(0) != 0).any())
                           for c in frame.columns]
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "columns_")
        frame = _date_frame(X)
        if frame.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {frame.shape[1]} features, but DateParts is expecting "
                             f"{self.n_features_in_} features as input")
        blocks = []
        for i, name in enumerate(frame.columns):
            dates = as_dates(frame[name])
            parts = [getattr(dates.dt, part) for part in DATE_PARTS]
            if self.with_hour_[i]:
                parts.append(dates.dt.hour)
            blocks.append(np.column_stack([p.to_numpy(dtype=float, na_value=np.nan)
                                           for p in parts]))
        return np.hstack(blocks)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a missing date is missing in every part
        return tags

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "columns_")
        names = []
        for name, hour in zip(self.columns_, self.with_hour_, strict=True):
            names += [f"{name}_{part}" for part in DATE_PARTS] + ([f"{name}_hour"] if hour else [])
        return np.asarray(names, dtype=object)


def as_text(X: Any) -> np.ndarray:
    """One text column as a 1-D array of strings, missing values as "".

    Args:
        X: a data frame or 2-D array with one column.
    """
    column = pd.DataFrame(X).iloc[:, 0]
    return column.astype(object).where(column.notna(), "").map(str).to_numpy()


def date_steps(scale: bool) -> Pipeline:
    """Date parts, median-imputed, standardised when ``scale``."""
    steps: list[tuple[str, Any]] = [("parts", DateParts())]
    if scale:
        steps.append(("scale", StandardScaler()))
    steps.append(("impute", SimpleImputer(strategy="median", keep_empty_features=True)))
    return Pipeline(steps)


def text_steps(reduce: bool, seed: int = 0, terms: int = MAX_TEXT_TERMS) -> Pipeline:
    """TF-IDF of word unigrams and bigrams (at most ``terms``); with ``reduce`` (tree
    families) a truncated SVD to ``TEXT_COMPONENTS`` dense components.

    Args:
        reduce: add the SVD step.
        seed: seeds the SVD.
        terms: the largest vocabulary kept (the most frequent terms).
    """
    steps: list[tuple[str, Any]] = [
        ("to_text", FunctionTransformer(as_text)),
        ("tfidf", TfidfVectorizer(max_features=terms, ngram_range=(1, 2), min_df=1,
                                  sublinear_tf=True, strip_accents="unicode",
                                  dtype=np.float32)),
    ]
    if reduce:
        steps.append(("svd", AdaptiveSVD(TEXT_COMPONENTS, seed)))
    return Pipeline(steps)


def _date_frame(X: Any) -> pd.DataFrame:
    """The date columns as a frame: a frame as it is, else a 2-D array of them."""
    if isinstance(X, pd.DataFrame):
        return X
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError("DateParts takes dense date columns; sparse input is not supported")
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError(f"Expected a 2D array of date columns, got {array.ndim}D input; "
                         "Reshape your data with array.reshape(-1, 1) for a single column")
    return pd.DataFrame(array)


class AdaptiveSVD(TransformerMixin, BaseEstimator):
    """``TruncatedSVD`` with at most ``n_components``, fewer when the matrix is narrower."""

    def __init__(self, n_components: int = TEXT_COMPONENTS, seed: int = 0) -> None:
        self.n_components = n_components
        self.seed = seed

    def fit(self, X: Any, y: Any = None) -> AdaptiveSVD:
        self.fit_transform(X)
        return self

    def fit_transform(self, X: Any, y: Any = None, **params: Any) -> np.ndarray:
        X = check_array(X, accept_sparse=("csr", "csc"))
        self.n_features_in_ = X.shape[1]
        n = min(self.n_components, X.shape[1] - 1, X.shape[0] - 1)
        self.svd_ = TruncatedSVD(n, random_state=self.seed) if n >= 1 else None
        if self.svd_ is None:
            return self.transform(X)
        return self.svd_.fit_transform(X)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # it reduces a TF-IDF matrix
        return tags

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "svd_")
        X = check_array(X, accept_sparse=("csr", "csc"))
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but AdaptiveSVD is expecting "
                             f"{self.n_features_in_} features as input")
        if self.svd_ is None:  # a vocabulary of one term: nothing to reduce
            return X.toarray() if hasattr(X, "toarray") else np.asarray(X)
        return self.svd_.transform(X)
