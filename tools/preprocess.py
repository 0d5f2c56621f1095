"""Turn a ``DataProfile`` into a scikit-learn preprocessor that accepts raw data frames."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
from sklearn.feature_selection import f_classif, f_regression
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    QuantileTransformer,
    StandardScaler,
)
from sklearn.utils.validation import check_array, check_is_fitted

from hyperpilot.tools.column_steps import MAX_TEXT_TERMS, SPARSE_TEXT_TERMS, date_steps, text_steps
from hyperpilot.tools.errors import DataError
from hyperpilot.tools.types import DataProfile, DataSteps, TaskType

if TYPE_CHECKING:
    from sklearn.utils import Tags

MAX_CATEGORIES = 30


def as_numbers(X: Any) -> pd.DataFrame:
    """Coerce every column to float; booleans become 0/1 and unparseable values NaN.

    Args:
        X: a data frame or 2-D array of the numeric and boolean feature columns.
    """
    frame = pd.DataFrame(X)
    numeric = [pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t)
               for t in frame.dtypes]
    if all(numeric):  # column by column coercion costs seconds on thousands of columns
        return frame.astype(float)
    return frame.apply(pd.to_numeric, errors="coerce").astype(float)


def as_category_strings(X: Any) -> pd.DataFrame:
    """Cast every present value to ``str`` and every missing one (None, NaN, NA) to NaN.

    Encoders refuse columns that mix numbers, strings and None; this makes them uniform.

    Args:
        X: a data frame or 2-D array of the categorical feature columns.
    """
    frame = pd.DataFrame(X).astype(object)
    present = frame.notna()
    return frame.map(str, na_action="ignore").where(present, np.nan)


class QuantileNormal(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Map each numeric column through its empirical quantiles onto a standard normal shape.

    Suits skewed features for families that scale. Missing values stay missing (the
    imputer after it fills them). At most ``n_quantiles`` quantiles, fewer on fewer rows.
    """

    def __init__(self, n_quantiles: int = 1000, seed: int = 0) -> None:
        self.n_quantiles = n_quantiles
        self.seed = seed

    def fit(self, X: Any, y: Any = None) -> QuantileNormal:
        # The inner transformer validates the input and, told to answer with arrays whatever
        # the output config, leaves the set_output wrapper to give back the caller's index.
        quantiles = QuantileTransformer(n_quantiles=max(2, self.n_quantiles),
                                        output_distribution="normal", random_state=self.seed)
        with warnings.catch_warnings():  # fewer rows than quantiles is expected: it uses fewer
            warnings.filterwarnings("ignore", "n_quantiles .* is greater than the total number")
            self.quantiles_ = quantiles.set_output(transform="default").fit(X)
        self.n_features_in_ = quantiles.n_features_in_
        if hasattr(quantiles, "feature_names_in_"):
            self.feature_names_in_ = quantiles.feature_names_in_
        return self

    def transform(self, X: Any) -> Any:
        check_is_fitted(self, "quantiles_")
        return self.quantiles_.transform(X)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        return tags


class SelectRawFeatures(TransformerMixin, BaseEstimator):
    """Keep the ``k`` raw input columns a small extra-trees forest finds most important.

    ``fit`` ranks ``features`` on (at most ``max_rows`` sampled) rows: numeric and boolean
    columns coerced to float with missing values at the median, ``categorical`` ones coded
    as integers with missing as its own code. ``transform`` returns the frame with only the
    kept columns (``selected_``, in the order of ``features``); every other column of the
    input may be present or not. ``scores_`` maps each ranked column to its score;
    ``n_features_in_`` and ``feature_names_in_`` describe the frame ``fit`` saw.

    Args:
        k: how many columns to keep (all when ``k`` is at least the number of features).
        features: the candidate raw columns.
        categorical: which of them are categorical.
        task_type: "binary", "multiclass" or "regression".
        seed: seeds the row sample and the estimator's tie-breaking noise.
        max_rows: cap on the rows used for ranking.
    """

    def __init__(self, k: int, features: list[str], categorical: list[str],
                 task_type: TaskType, seed: int = 0, max_rows: int = 3000) -> None:
        self.k = k
        self.features = features
        self.categorical = categorical
        self.task_type = task_type
        self.seed = seed
        self.max_rows = max_rows

    def fit(self, X: pd.DataFrame, y: Any) -> SelectRawFeatures:
        frame = _columns_of(X, list(self.features))
        self.n_features_in_ = X.shape[1]
        if all(isinstance(name, str) for name in X.columns):  # as scikit-learn: string names only
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        target = pd.Series(np.asarray(y), index=frame.index)
        labelled = target.notna().to_numpy()
        frame, target = frame[labelled], target[labelled]
        if len(frame) > self.max_rows:
            rows = np.random.default_rng(self.seed).choice(len(frame), self.max_rows,
                                                           replace=False)
            frame, target = frame.iloc[np.sort(rows)], target.iloc[np.sort(rows)]
        scores = self._scores(frame, target)
        order = np.argsort(-scores, kind="stable")[: max(1, self.k)]
        keep = set(order.tolist())
        self.scores_ = {name: float(s) for name, s in zip(self.features, scores, strict=True)}
        self.selected_ = [name for i, name in enumerate(self.features) if i in keep]
        return self

    def _scores(self, frame: pd.DataFrame, target: pd.Series) -> np.ndarray:
        categorical = set(self.categorical)
        columns = [_ranking_codes(frame[name], name in categorical) for name in self.features]
        matrix = np.column_stack(columns) if columns else np.empty((len(frame), 0))
        # Forest importances, not k-NN mutual information: on a few hundred rows of many
        # assays the latter ranks noise above the columns that carry the signal.
        regression = self.task_type == "regression"
        forest = (ExtraTreesRegressor if regression else ExtraTreesClassifier)(
            n_estimators=50, min_samples_leaf=3, random_state=self.seed, n_jobs=1)
        codes = target.astype(float).to_numpy() if regression else pd.factorize(target.astype(str))[0]
        return np.asarray(forest.fit(matrix, codes).feature_importances_)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "selected_")
        return _columns_of(X, self.selected_)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "selected_")
        return np.asarray(self.selected_, dtype=object)


def _columns_of(X: Any, names: list[str]) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise DataError(f"the model takes a data frame of raw rows, not a {type(X).__name__}")
    missing = [name for name in names if name not in X.columns]
    if missing:
        raise DataError(f"the rows lack the columns the model uses: {missing}")
    return X[names]


def _ranking_codes(column: pd.Series, categorical: bool) -> np.ndarray:
    if categorical:
        return pd.factorize(as_category_strings(column.to_frame()).iloc[:, 0])[0].astype(float)
    values = as_numbers(column.to_frame()).iloc[:, 0]
    fill = values.median()
    return values.fillna(0.0 if np.isnan(fill) else fill).to_numpy()


class ScreenWide(TransformerMixin, BaseEstimator):
    """Keep the columns with the highest univariate F score when there are more columns than
    rows; pass everything through otherwise.

    On a table with far more features than rows (p >> n) most models overfit noise; fitted
    inside the pipeline, the screen is redone on every training fold, so cross-validation
    stays honest. ``fit`` keeps ``max(min_keep, share * rows)`` columns (ANOVA F against the
    classes, or the F of the correlation with a numeric target).

    Args:
        task_type: "binary", "multiclass" or "regression".
        share: the kept columns as a share of the training rows.
        min_keep: keep at least this many columns.
    """

    def __init__(self, task_type: TaskType, share: float = 0.25, min_keep: int = 10) -> None:
        self.task_type = task_type
        self.share = share
        self.min_keep = min_keep

    def fit(self, X: Any, y: Any) -> ScreenWide:
        matrix = _numeric_matrix(X)
        n_rows, width = matrix.shape
        self.n_features_in_ = width
        keep = max(self.min_keep, int(self.share * n_rows))
        if width <= max(n_rows, keep):
            self.kept_ = np.arange(width)
            return self
        score = f_regression if self.task_type == "regression" else f_classif
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant columns score NaN: they go last
            scores = np.nan_to_num(score(matrix, np.asarray(y))[0], nan=-1.0)
        self.kept_ = np.sort(np.argsort(-scores, kind="stable")[:keep])
        return self

    def transform(self, X: Any) -> Any:
        check_is_fitted(self, "kept_")
        matrix = _numeric_matrix(X)
        if matrix.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {matrix.shape[1]} features, but ScreenWide is expecting "
                             f"{self.n_features_in_} features as input")
        return matrix[:, self.kept_]

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # a TF-IDF block stays sparse through the screen
        tags.input_tags.allow_nan = True
        return tags


# scikit-learn 1.6 renamed check_array's force_all_finite to ensure_all_finite.
_FINITE = ("ensure_all_finite" if "ensure_all_finite" in inspect.signature(check_array).parameters
           else "force_all_finite")


def _numeric_matrix(X: Any) -> Any:
    """``X`` as a 2-D float array, or CSR matrix for sparse input (free-text columns), through
    scikit-learn's own checks: complex, empty, 1-D and infinite input is refused in words;
    missing values pass (they score last)."""
    return check_array(X, accept_sparse="csr", dtype=float, **{_FINITE: "allow-nan"})


class PresentColumns:
    """A column selector for ``ColumnTransformer``: the named columns the frame still has.

    Lets the preprocessor follow a feature selector that dropped some of the profile's
    columns; the transformer records the columns it saw at fit time.
    """

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)

    def __call__(self, X: pd.DataFrame) -> list[str]:
        return [name for name in self.names if name in X.columns]

    def __repr__(self) -> str:
        return f"PresentColumns({self.names!r})"


def _numeric_steps(scale: bool, indicate_missing: bool, numeric: str = "standard") -> Pipeline:
    # Scaling first (the scalers ignore NaN) keeps the missing indicators exactly 0/1.
    steps: list[tuple[str, Any]] = [
        ("to_float", FunctionTransformer(as_numbers, feature_names_out="one-to-one")),
    ]
    if scale:
        steps.append(("scale", QuantileNormal() if numeric == "quantile" else StandardScaler()))
    steps.append(("impute", SimpleImputer(strategy="median", add_indicator=indicate_missing)))
    return Pipeline(steps)


def _categorical_steps(categorical: str = "onehot") -> Pipeline:
    encoder: Any = OneHotEncoder(handle_unknown="infrequent_if_exist",
                                 max_categories=MAX_CATEGORIES, sparse_output=False)
    if categorical == "ordinal":
        # Unseen categories at predict time get their own code, -1.
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    return Pipeline([
        ("to_str", FunctionTransformer(as_category_strings, feature_names_out="one-to-one")),
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("encode" if categorical == "ordinal" else "onehot", encoder),
    ])


def build_preprocessor(profile: DataProfile, scale: bool = True,
                       steps: DataSteps | None = None, sparse: bool = False) -> ColumnTransformer:
    """Build an unfitted preprocessor for the features in ``profile``.

    Numeric and boolean features are coerced to float, scaled (when ``scale``: standardised,
    or quantile-normal with ``steps.numeric == "quantile"``) and median-imputed, with a
    missing indicator for columns the profile saw missing values in. Categorical features
    are cast to strings, mode-imputed and one-hot encoded (at most 30 categories; unseen
    ones at predict time fall into "infrequent" or all zeros), or ordinal-coded with
    ``steps.categorical == "ordinal"`` (unseen ones: -1). Date columns become their year,
    month, day, day of week and day of year (``column_steps.DateParts``). Each free-text
    column becomes TF-IDF weights of its words and word pairs (a bounded vocabulary), reduced
    to SVD components when not ``scale`` (tree families); with ``sparse`` the vocabulary is
    larger (``SPARSE_TEXT_TERMS``) and the output a sparse matrix. Every other column (target, ids,
    dropped ones) is ignored, so raw frames can be passed. With ``steps.max_features`` set,
    the column groups are taken at fit time from the columns present, so a feature
    selector may come first.

    Args:
        profile: the data profile whose ``features`` and column kinds decide the steps.
        scale: standardise numeric features (needed by linear, kernel, kNN and neural models).
        steps: the plan's preprocessing choices; ``None`` is ``DataSteps()``.
        sparse: the estimator fits sparse input fast (``ModelEntry.sparse``).
    """
    steps = steps or DataSteps()
    missing = {c.name for c in profile.columns if c.missing_fraction > 0}
    numeric = profile.numeric_features
    groups: list[tuple[str, Any, list[str]]] = [
        ("num", _numeric_steps(scale, False, steps.numeric),
         [c for c in numeric if c not in missing]),
        ("num_missing", _numeric_steps(scale, True, steps.numeric),
         [c for c in numeric if c in missing]),
        ("cat", _categorical_steps(steps.categorical), profile.categorical_features),
        ("date", date_steps(scale), profile.date_features),
    ]
    # One TF-IDF per text column; tree families (no scaling) get its SVD components.
    terms = SPARSE_TEXT_TERMS if sparse else MAX_TEXT_TERMS
    groups += [(f"text_{i}", text_steps(reduce=not scale, terms=terms), [name])
               for i, name in enumerate(profile.text_features)]
    groups = [group for group in groups if group[2]]
    if not groups:
        raise DataError("no usable numeric, categorical, date or text features to train on")
    select: Callable[[list[str]], Any] = PresentColumns if steps.max_features else list
    transformers = [(name, pipe, select(columns)) for name, pipe, columns in groups]
    # Sparse output only where text makes it worth it: a dense 20,000-term block would not fit.
    keep_sparse = sparse and bool(profile.text_features)
    return ColumnTransformer(transformers, remainder="drop",
                             sparse_threshold=1.0 if keep_sparse else 0.0)


def build_pipeline(profile: DataProfile, estimator: BaseEstimator, scale: bool = True,
                   steps: DataSteps | None = None, seed: int = 0,
                   sparse: bool = False) -> Pipeline:
    """Chain ``build_preprocessor(profile, scale, steps, sparse)`` and ``estimator``.

    The steps are "prep", "model"; with ``steps.max_features`` a ``SelectRawFeatures``
    step "select" comes first, so the selection is refit on every training fold and the
    fitted pipeline still predicts on raw rows with all the original columns. A table with
    at least as many features as rows gets a ``ScreenWide`` step "screen" after "prep".

    Args:
        profile: the data profile that decides the preprocessing.
        estimator: an unfitted scikit-learn compatible estimator.
        scale: standardise (or quantile-map) numeric features before the estimator.
        steps: the plan's preprocessing choices; ``None`` is ``DataSteps()``.
        seed: seeds the feature ranking and the quantile sample.
        sparse: the estimator fits sparse input fast (``ModelEntry.sparse``).
    """
    steps = steps or DataSteps()
    prep = build_preprocessor(profile, scale, steps, sparse)
    chain: list[tuple[str, Any]] = [("prep", prep), ("model", estimator)]
    if len(profile.features) >= profile.n_rows:
        chain.insert(1, ("screen", ScreenWide(profile.task_type)))
    if steps.max_features is not None:
        selector = SelectRawFeatures(steps.max_features, list(profile.features),
                                     profile.categorical_features, profile.task_type, seed)
        chain.insert(0, ("select", selector))
    return Pipeline(chain)


def features_used(pipeline: Pipeline, profile: DataProfile) -> list[str]:
    """The raw input columns a fitted pipeline really uses.

    The feature selector's kept columns when the pipeline has one, else the profile's.

    Args:
        pipeline: a fitted pipeline from ``build_pipeline``.
        profile: the data profile it was built from.
    """
    selector = pipeline.named_steps.get("select") if isinstance(pipeline, Pipeline) else None
    if selector is None:
        return list(profile.features)
    check_is_fitted(selector, "selected_")
    return list(selector.selected_)
