"""Loading, profiling, splitting and leakage screening of tabular data (shift screening:
``shift.py``). No LLM here."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from hyperpilot.tools.errors import DataError
from hyperpilot.tools.read_file import DELIMITED, inner_suffix, read_delimited
from hyperpilot.tools.time_order import as_dates
from hyperpilot.tools.types import ColumnProfile, DataProfile, TaskType

# name -> (target column, loader name, whether class codes map to target_names)
BUNDLED: dict[str, tuple[str, str, bool]] = {
    "iris": ("species", "load_iris", True),
    "wine": ("cultivar", "load_wine", True),
    "breast_cancer": ("diagnosis", "load_breast_cancer", True),
    "digits": ("digit", "load_digits", False),
    "diabetes": ("progression", "load_diabetes", False),
}
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key|index)$|^(id|uuid|guid)", re.IGNORECASE)
LEAKAGE_THRESHOLD = 0.99
MAX_SCREENED = 100


def load_table(source: str) -> pd.DataFrame:
    """Load a table from a CSV/Parquet path or ``sklearn:NAME`` (a bundled scikit-learn set).

    Args:
        source: a file path ending in .csv, .tsv, .txt, .parquet or .pq (delimited text
            may be compressed: .gz, .bz2, .xz, .zip), or ``sklearn:NAME``.
    """
    if source.startswith("sklearn:"):
        frame = _load_bundled(source.split(":", 1)[1])
    else:
        frame = _load_file(Path(source).expanduser())
    return checked_table(frame, source)


def checked_table(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """``frame`` checked as a run's table (rows, columns, unique names), with string column names.

    Args:
        frame: the table, e.g. one a caller already holds in memory (it is not modified).
        name: how error messages name the table.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{name} is a {type(frame).__name__}, not a pandas DataFrame")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError(f"{name} holds no rows or no columns")
    duplicated = frame.columns[frame.columns.astype(str).duplicated()].tolist()
    if duplicated:
        raise DataError(f"{name} has duplicate column names: {duplicated}")
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    return without_infinities(frame)


def without_infinities(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every infinite number in a float column made missing (a copy if any).

    Args:
        frame: the table.
    """
    floats = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]
    infinite = [c for c in floats if np.isinf(frame[c].to_numpy(dtype=float)).any()]
    if not infinite:
        return frame
    frame = frame.copy()
    for name in infinite:
        frame[name] = frame[name].replace([np.inf, -np.inf], np.nan)
    return frame


def bundled_target(source: str) -> str | None:
    """The declared target column of a bundled set, or ``None`` for files."""
    if not source.startswith("sklearn:"):
        return None
    entry = BUNDLED.get(source.split(":", 1)[1])
    return entry[0] if entry else None


def _load_bundled(name: str) -> pd.DataFrame:
    if name not in BUNDLED:
        raise DataError(f"unknown bundled dataset 'sklearn:{name}'; choose one of "
                        + ", ".join(f"sklearn:{n}" for n in BUNDLED))
    from sklearn import datasets

    target, loader, named = BUNDLED[name]
    bunch = getattr(datasets, loader)(as_frame=True)
    frame = bunch.data.copy()
    codes = bunch.target.to_numpy()
    frame[target] = np.asarray(bunch.target_names)[codes] if named else codes
    return frame


def _load_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder; give a CSV or Parquet file")
    suffix = inner_suffix(path)
    try:
        if suffix in (".parquet", ".pq") and path.suffix.lower() == suffix:
            return pd.read_parquet(path)
        if suffix in DELIMITED:
            return read_delimited(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty") from None
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read {path}: {_one_line(err)}") from None
    raise DataError(f"unsupported data format '{suffix or path.name}'; use .csv (optionally "
                    ".gz, .bz2, .xz or .zip), .tsv, .txt or .parquet")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text[:200] or type(err).__name__


def infer_task_type(y: pd.Series) -> TaskType:
    """Classification when the target is non-numeric or a few integer codes, else regression.

    Args:
        y: the target column without missing values.
    """
    n_unique = int(y.nunique())
    if n_unique < 2:
        raise DataError(f"target '{y.name}' has a single value; nothing to learn")
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if not numeric or n_unique == 2:
        return "binary" if n_unique == 2 else "multiclass"
    integral = bool(np.all(np.mod(y.to_numpy(dtype=float), 1) == 0))
    if integral and n_unique <= max(10, min(30, int(0.05 * len(y)))):
        return "multiclass"
    return "regression"


def column_kind(series: pd.Series) -> str:
    """One of numeric, categorical, boolean, datetime, text, id, constant.

    Args:
        series: one column of the table.
    """
    values = series.dropna()
    n_unique = int(values.nunique())
    if n_unique <= 1:
        return "constant"
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    all_unique = n_unique == len(values) and len(values) > 20
    if pd.api.types.is_numeric_dtype(series):
        integral = bool(np.all(np.mod(values.to_numpy(dtype=float), 1) == 0))
        monotone = values.is_monotonic_increasing or values.is_monotonic_decreasing
        if all_unique and integral and (monotone or _ID_NAME.search(str(series.name))):
            return "id"
        return "numeric"
    text = values.astype(str)
    if _looks_like_dates(text):
        return "datetime"
    if all_unique and (_ID_NAME.search(str(series.name)) or text.str.len().mean() < 40):
        return "id"
    if n_unique > 0.5 * len(values) and text.str.len().mean() > 20:
        return "text"
    return "categorical"


def _looks_like_dates(text: pd.Series) -> bool:
    sample = text.head(50)
    if not sample.str.contains(r"\d{1,4}[-/.:]\d{1,2}", regex=True).all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() > 0.9)


def profile_table(frame: pd.DataFrame, target: str, task_type: TaskType | None = None) -> DataProfile:
    """Describe ``frame`` for the planner and choose the usable feature columns.

    Args:
        frame: the whole table, target included.
        target: the target column; it must exist and have at least two values.
        task_type: force the task type; inferred from the target when ``None``.
    """
    if target not in frame.columns:
        raise DataError(f"target column '{target}' not found; columns are {list(frame.columns)}")
    y = frame[target].dropna()
    if y.empty:
        raise DataError(f"target column '{target}' is empty")
    task = task_type or infer_task_type(y)
    if task != "regression" and y.nunique() < 2:
        raise DataError(f"target '{target}' has a single class; nothing to learn")
    columns = [_column_profile(frame[c]) for c in frame.columns]
    features, dropped = _usable_features(columns, target)
    profile = DataProfile(
        n_rows=len(frame), n_columns=frame.shape[1], target=target, columns=columns,
        task_type=task, features=features, dropped=dropped,
        missing_fraction=float(frame.isna().mean().mean()),
    )
    return _with_target_stats(profile, y, task)


def _column_profile(series: pd.Series) -> ColumnProfile:
    return ColumnProfile(
        name=str(series.name), dtype=str(series.dtype), kind=column_kind(series),  # type: ignore[arg-type]
        missing_fraction=float(series.isna().mean()), n_unique=int(series.nunique()),
    )


def _usable_features(columns: list[ColumnProfile], target: str) -> tuple[list[str], dict[str, str]]:
    reasons = {"id": "identifier: unique per row", "constant": "constant: a single value"}
    features, dropped = [], {}
    for col in columns:
        if col.name == target:
            continue
        if col.kind in reasons:
            dropped[col.name] = reasons[col.kind]
        else:
            features.append(col.name)
    return features, dropped


def _with_target_stats(profile: DataProfile, y: pd.Series, task: TaskType) -> DataProfile:
    if task == "regression":
        values = y.astype(float)
        return profile.model_copy(update={
            "target_mean": float(values.mean()), "target_std": float(values.std()),
            "target_skew": float(values.skew()),
        })
    counts = y.astype(str).value_counts()
    return profile.model_copy(update={"class_counts": {str(k): int(v) for k, v in counts.items()}})


def split_holdout(frame: pd.DataFrame, target: str, task_type: TaskType, fraction: float = 0.2,
                  seed: int = 0, time_column: str | None = None) -> tuple[list[int], list[int]]:
    """Split row positions once into (train, holdout), stratified for classification.

    Rows with a missing target are left out of both. With ``time_column`` the holdout is
    the latest ``fraction`` of the rows in time and both lists are in time order (ties
    and undated rows keep their file order; undated rows count as earliest).

    Args:
        frame: the whole table.
        target: the target column.
        task_type: stratify unless ``regression``.
        fraction: share of labelled rows held out.
        seed: random seed of the split.
        time_column: the date column of a time-ordered task, or ``None``.
    """
    labelled = np.flatnonzero(frame[target].notna().to_numpy())
    if len(labelled) < 10:
        raise DataError(f"only {len(labelled)} labelled rows; need at least 10")
    if time_column is not None:
        return _split_in_time(frame, labelled, time_column, fraction)
    y = frame[target].to_numpy()[labelled]
    stratify = None
    if task_type != "regression":
        counts = pd.Series(y).value_counts()
        n_holdout = int(np.ceil(fraction * len(labelled)))
        if counts.min() >= 2 and n_holdout >= len(counts):
            stratify = y
    train, holdout = train_test_split(labelled, test_size=fraction, random_state=seed,
                                      stratify=stratify)
    return sorted(int(i) for i in train), sorted(int(i) for i in holdout)


def _split_in_time(frame: pd.DataFrame, labelled: np.ndarray, time_column: str,
                   fraction: float) -> tuple[list[int], list[int]]:
    if time_column not in frame.columns:
        raise DataError(f"time column '{time_column}' not found")
    stamps = as_dates(frame[time_column].iloc[labelled]).to_numpy(dtype="datetime64[ns]")
    keys = stamps.astype("int64")  # NaT is the smallest int64: undated rows come first
    ordered = labelled[np.argsort(keys, kind="stable")]
    n_holdout = int(np.ceil(fraction * len(ordered)))
    return [int(i) for i in ordered[:-n_holdout]], [int(i) for i in ordered[-n_holdout:]]


def single_feature_leakage(frame: pd.DataFrame, target: str, features: list[str], task_type: TaskType,
                           seed: int = 0, max_rows: int = 5000,
                           threshold: float = LEAKAGE_THRESHOLD) -> dict[str, str]:
    """Features that alone predict the target almost perfectly (a sign of leakage).

    Each feature gets a shallow tree scored by 3-fold CV on at most ``max_rows`` rows;
    balanced accuracy (classification) or R^2 (regression) at or above ``threshold`` (0.99
    by default) is flagged.

    Args:
        frame: the training rows (never the holdout).
        target: the target column.
        features: candidate feature columns.
        task_type: chooses the tree and the score.
        seed: seed for row sampling and the trees.
        max_rows: cap on rows used, for speed on large data.
        threshold: the single-feature score that counts as leakage.
    """
    scores = single_feature_scores(frame, target, features, task_type, seed, max_rows)
    return leakage_flags(scores, task_type, threshold)


def single_feature_scores(frame: pd.DataFrame, target: str, features: list[str],
                          task_type: TaskType, seed: int = 0, max_rows: int = 5000,
                          max_screened: int = MAX_SCREENED) -> dict[str, float]:
    """Each feature's score alone (as in ``single_feature_leakage``), for callers that
    apply more than one threshold; empty when a class has fewer than 3 rows.

    With more than ``max_screened`` features only the ``max_screened`` that best predict
    the target through their own quantile bins (in-sample, a cheap upper bound on what a
    tree finds) are scored, so very wide tables are screened in seconds."""
    data = frame.dropna(subset=[target])
    if len(data) > max_rows:
        data = data.sample(max_rows, random_state=seed)
    y = data[target]
    if task_type != "regression" and y.value_counts().min() < 3:
        return {}
    codes = {name: _feature_codes(data[name]) for name in features}
    target_values = (y.astype(float).to_numpy() if task_type == "regression"
                     else pd.factorize(y.astype(str))[0])
    if len(features) > max_screened:
        bound = {name: _binned_fit(x, target_values, task_type) for name, x in codes.items()}
        features = sorted(features, key=lambda name: -bound[name])[:max_screened]
    splitter = KFold(3) if task_type == "regression" else StratifiedKFold(3)
    folds = list(splitter.split(np.zeros(len(y)), target_values))
    return {name: _single_feature_score(codes[name], target_values, folds, task_type, seed)
            for name in features}


def _feature_codes(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.astype(float).fillna(-1e12).to_numpy().reshape(-1, 1)
    return column.astype(str).astype("category").cat.codes.to_numpy().reshape(-1, 1)


def _binned_fit(x: np.ndarray, y: np.ndarray, task_type: TaskType, n_bins: int = 16) -> float:
    """Balanced accuracy or R^2 of predicting ``y`` by its mean/mode within quantile bins."""
    values = x[:, 0]
    edges = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1]))
    bins = np.searchsorted(edges, values, side="right")
    if task_type == "regression":
        means = np.bincount(bins, weights=y) / np.maximum(np.bincount(bins), 1)
        return _r2(y, means[bins])
    table = np.zeros((bins.max() + 1, y.max() + 1))
    np.add.at(table, (bins, y), 1)
    return _balanced_accuracy(y, table.argmax(axis=1)[bins])


def _r2(y: np.ndarray, predicted: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return 0.0 if total == 0 else 1.0 - float(np.sum((y - predicted) ** 2)) / total


def _balanced_accuracy(y: np.ndarray, predicted: np.ndarray) -> float:
    classes = np.unique(y)
    return float(np.mean([np.mean(predicted[y == c] == c) for c in classes]))


def leakage_flags(scores: dict[str, float], task_type: TaskType,
                  threshold: float = LEAKAGE_THRESHOLD) -> dict[str, str]:
    """The features whose single-feature score reaches ``threshold``, with why."""
    label = "R^2" if task_type == "regression" else "balanced accuracy"
    return {name: f"alone predicts the target ({label} {score:.3f} in 3-fold CV)"
            for name, score in scores.items() if score >= threshold}


def _single_feature_score(x: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
                          task_type: TaskType, seed: int) -> float:
    regression = task_type == "regression"
    scores = []
    for train, test in folds:
        model = (DecisionTreeRegressor(max_depth=8, random_state=seed) if regression
                 else DecisionTreeClassifier(max_depth=8, random_state=seed))
        predicted = model.fit(x[train], y[train]).predict(x[test])
        scores.append(_r2(y[test], predicted) if regression
                      else _balanced_accuracy(y[test], predicted))
    return float(np.nanmean(scores))
