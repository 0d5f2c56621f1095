"""Train one system on a task's training CSV and write its predictions for the test rows.

Run by the interpreter that has the system installed (``benchmarks/e2e.py`` starts it), so it
imports neither hyperpilot nor anything the system's own environment may lack. Usage:

    python e2e_peer.py --probe SYSTEM
    python e2e_peer.py SYSTEM --train TRAIN.csv --test TEST_FEATURES.csv --target COL
        --kind {binary,multiclass,regression} --metric METRIC [--positive-class LABEL]
        --budget SECONDS --out DIR

``--probe`` prints the system's version and exits 3 when it is not installed. A run writes
``DIR/predictions.csv`` (column ``prediction``), ``DIR/proba.csv`` (one column per class,
for roc_auc and log_loss) and ``DIR/meta.json`` (system, version).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

EXIT_MISSING = 3
PACKAGES = {"rf": "scikit-learn", "flaml": "flaml", "autogluon": "autogluon.tabular"}
PROBA_METRICS = {"roc_auc", "log_loss"}
AUTOGLUON_METRICS = {"rmse": "root_mean_squared_error", "mae": "mean_absolute_error"}
FLAML_METRICS = {"f1_macro": "macro_f1"}


def version(system: str) -> str | None:
    """The installed version of ``system``'s package, or None when it is missing."""
    try:
        return importlib.metadata.version(PACKAGES[system])
    except importlib.metadata.PackageNotFoundError:
        return None


def positive_label(y: pd.Series, positive: str | None) -> Any:
    """The value in ``y`` that is written as ``positive`` (answers.csv holds text)."""
    if positive is None:
        return None
    for value in y.unique():
        if str(value) == positive or _integral(value) == positive:
            return value
    raise ValueError(f"positive class {positive!r} is not a value of the target")


def _integral(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else str(value)


def rf_pipeline(kind: str) -> Any:
    """A default random forest behind imputation and one-hot encoding.

    Categories are capped at 100 levels per column so that free-text and identifier columns
    do not explode the width; the forest itself keeps scikit-learn's defaults.
    """
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=100))
    columns = ColumnTransformer([
        ("num", SimpleImputer(strategy="median"), make_column_selector(dtype_include="number")),
        ("cat", categorical, make_column_selector(dtype_exclude="number")),
    ])
    forest = (RandomForestRegressor(random_state=0) if kind == "regression"
              else RandomForestClassifier(random_state=0))
    return make_pipeline(columns, forest)


def fit_rf(x: pd.DataFrame, y: pd.Series, args: argparse.Namespace) -> Any:
    cat = x.select_dtypes(exclude="number").columns
    x = x.astype({c: str for c in cat})  # mixed str/float (NaN) columns break the encoder
    return rf_pipeline(args.kind).fit(x, y)


def _flaml_metric(args: argparse.Namespace, y: pd.Series) -> Any:
    if args.metric not in {"balanced_accuracy", "f1"}:
        return FLAML_METRICS.get(args.metric, args.metric)
    from sklearn.metrics import balanced_accuracy_score, f1_score

    pos = positive_label(y, args.positive_class)
    # FLAML hands a custom metric its label-encoded targets (sorted classes -> 0, 1, ...) when
    # the labels are text, so the positive class is then its index among the sorted classes.
    encoded = sorted(y.unique()).index(pos) if pos is not None else None

    def metric(x_val, y_val, estimator, *_: Any, **__: Any) -> tuple[float, dict]:
        pred = estimator.predict(x_val)
        label = pos if pos in set(np.unique(y_val)) else encoded
        score = (f1_score(y_val, pred, pos_label=label) if args.metric == "f1"
                 else balanced_accuracy_score(y_val, pred))
        return 1.0 - score, {args.metric: score}

    return metric


def fit_flaml(x: pd.DataFrame, y: pd.Series, args: argparse.Namespace) -> Any:
    from flaml import AutoML

    automl = AutoML()
    task = "regression" if args.kind == "regression" else "classification"
    automl.fit(X_train=x, y_train=y, task=task, time_budget=args.budget,
               metric=_flaml_metric(args, y), seed=0, verbose=0,
               log_file_name=str(args.out / "flaml.log"))
    return automl


def fit_autogluon(x: pd.DataFrame, y: pd.Series, args: argparse.Namespace) -> Any:
    from autogluon.tabular import TabularPredictor

    train = x.assign(**{args.target: y})
    metric = AUTOGLUON_METRICS.get(args.metric, args.metric)
    predictor = TabularPredictor(label=args.target, problem_type=args.kind, eval_metric=metric,
                                 path=str(args.out / "autogluon"), verbosity=1,
                                 positive_class=positive_label(y, args.positive_class))
    return predictor.fit(train, time_limit=args.budget, presets="medium_quality")


FIT = {"rf": fit_rf, "flaml": fit_flaml, "autogluon": fit_autogluon}


def write_predictions(model: Any, x: pd.DataFrame, args: argparse.Namespace) -> None:
    if args.system == "rf":
        x = x.astype({c: str for c in x.select_dtypes(exclude="number").columns})
    pd.DataFrame({"prediction": np.asarray(model.predict(x))}).to_csv(
        args.out / "predictions.csv", index=False)
    if args.metric in PROBA_METRICS:
        proba = model.predict_proba(x)
        if isinstance(proba, pd.DataFrame):  # AutoGluon labels its columns itself
            classes, proba = list(proba.columns), proba.to_numpy()
        else:
            classes = list(model.classes_)
        pd.DataFrame(proba, columns=[_integral(c) for c in classes]).to_csv(
            args.out / "proba.csv", index=False)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", nargs="?", choices=sorted(FIT))
    parser.add_argument("--probe", choices=sorted(FIT))
    for name in ("--train", "--test", "--out"):
        parser.add_argument(name, type=Path)
    parser.add_argument("--target")
    parser.add_argument("--kind", choices=["binary", "multiclass", "regression"])
    parser.add_argument("--metric")
    parser.add_argument("--positive-class")
    parser.add_argument("--budget", type=float, default=60.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    system = args.probe or args.system
    found = version(system)
    if found is None:
        print(f"e2e_peer: {PACKAGES[system]} is not installed in {sys.executable}",
              file=sys.stderr)
        return EXIT_MISSING
    if args.probe:
        print(found)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    train = pd.read_csv(args.train)
    model = FIT[system](train.drop(columns=[args.target]), train[args.target], args)
    write_predictions(model, pd.read_csv(args.test), args)
    (args.out / "meta.json").write_text(json.dumps({"system": system, "version": found}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
