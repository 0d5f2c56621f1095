"""The model zoo: each family's search space, defaults, strong-defaults portfolio and builder."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal

from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR

from hyperpilot.tools.errors import TaskSpecError
from hyperpilot.tools.space import CategoricalDim, FloatDim, IntDim, SearchSpace
from hyperpilot.tools.types import Config, TaskType

Cost = Literal["low", "medium", "high"]
ALL_TASKS: tuple[TaskType, ...] = ("binary", "multiclass", "regression")

SpaceFn = Callable[[bool], SearchSpace]
DefaultsFn = Callable[[bool], Config]
BuildFn = Callable[[bool, Config, int, bool], BaseEstimator]


@dataclass(frozen=True)
class ModelEntry:
    """One model family: what it is for, how costly it is, its space, defaults and builder.

    The three callables take ``is_classification`` first; use the methods, not them.
    """

    name: str
    task_types: tuple[TaskType, ...]
    summary: str
    scale: bool
    max_rows: int | None
    cost: Cost
    make_space: SpaceFn = field(repr=False, compare=False)
    make_defaults: DefaultsFn = field(repr=False, compare=False)
    make_estimator: BuildFn = field(repr=False, compare=False)
    # Fits a sparse matrix in time linear in its non-zeros: text reaches it as a large,
    # sparse TF-IDF block instead of a small dense one.
    sparse: bool = False
    # Trains on a GPU when its worker has one: a Ray executor gives its trials one each.
    gpu: bool = False

    def _check(self, task_type: TaskType) -> bool:
        if task_type not in self.task_types:
            raise TaskSpecError(f"model {self.name!r} does not support {task_type} tasks")
        return task_type != "regression"

    def space(self, task_type: TaskType) -> SearchSpace:
        """The hyperparameter search space for ``task_type``.

        Args:
            task_type: "binary", "multiclass" or "regression".
        """
        return self.make_space(self._check(task_type))

    def defaults(self, task_type: TaskType) -> Config:
        """A strong default configuration inside ``space(task_type)``.

        Args:
            task_type: "binary", "multiclass" or "regression".
        """
        return self.make_defaults(self._check(task_type))

    def strong_defaults(self, task_type: TaskType) -> list[Config]:
        """Configs that did well across many data sets, best first, inside ``space(task_type)``.

        They come from the shipped table ``strong_defaults.json`` (learned by
        ``benchmarks/build_strong_defaults.py`` on synthetic tasks); a family the table
        does not hold gets ``[defaults(task_type)]``.

        Args:
            task_type: "binary", "multiclass" or "regression".
        """
        space = self.space(task_type)
        kind = "regression" if task_type == "regression" else "classification"
        rows = strong_defaults_table().get(self.name, {}).get(kind, [])
        configs: list[Config] = []
        for row in rows:
            config = space.repair(row["config"], fill=self.defaults(task_type))
            if config not in configs:
                configs.append(config)
        return configs or [self.defaults(task_type)]

    def build(self, task_type: TaskType, config: Config, seed: int,
              needs_proba: bool = False) -> BaseEstimator:
        """An unfitted estimator with ``config`` applied (missing keys take the defaults).

        Values are repaired into the space (clipped, rounded); unknown keys or invalid
        choices raise ``TaskSpecError``. Estimators are single-threaded (``n_jobs=1``).

        Args:
            task_type: "binary", "multiclass" or "regression".
            config: hyperparameters, a subset of the space's names.
            seed: random_state for estimators that take one.
            needs_proba: the metric needs ``predict_proba`` (e.g. roc_auc, log_loss).
        """
        classify = self._check(task_type)
        try:
            full = self.space(task_type).repair(config, fill=self.defaults(task_type))
        except ValueError as error:
            raise TaskSpecError(f"bad config for model {self.name!r}: {error}") from error
        return self.make_estimator(classify, full, seed, needs_proba)


# class weights ------------------------------------------------------------------------------
# Reweighting classes is what moves recall and F1 on imbalanced data, so every classifier
# that supports it searches it; ``None`` (the unweighted default) comes first.

def _weighted(dims: list[Any], classify: bool) -> SearchSpace:
    if classify:
        dims = [*dims, CategoricalDim(name="class_weight", choices=[None, "balanced"])]
    return SearchSpace(dims=dims)


def _unweighted(config: Config, classify: bool) -> Config:
    return {**config, "class_weight": None} if classify else config


# linear ---------------------------------------------------------------------------------

def _linear_space(classify: bool) -> SearchSpace:
    name = "C" if classify else "alpha"
    return _weighted([FloatDim(name=name, low=1e-3, high=1e3, log=True)], classify)


def _linear_defaults(classify: bool) -> Config:
    return _unweighted({"C": 1.0}, classify) if classify else {"alpha": 1.0}


def _linear_build(classify: bool, config: Config, seed: int, needs_proba: bool) -> BaseEstimator:
    if classify:
        return LogisticRegression(C=config["C"], class_weight=config["class_weight"],
                                  max_iter=2000, random_state=seed)
    return Ridge(alpha=config["alpha"], random_state=seed)


# random forest and extra trees ------------------------------------------------------------

def _forest_space(classify: bool) -> SearchSpace:
    return _weighted([
        IntDim(name="n_estimators", low=50, high=500, log=True),
        CategoricalDim(name="max_depth", choices=[None, 4, 8, 16, 32]),
        IntDim(name="min_samples_leaf", low=1, high=20, log=True),
        CategoricalDim(name="max_features", choices=["sqrt", "log2", 0.1, 0.25, 0.5, 0.75, 1.0]),
        CategoricalDim(name="bootstrap", choices=[True, False]),
    ], classify)


def _forest_defaults(bootstrap: bool) -> DefaultsFn:
    def defaults(classify: bool) -> Config:
        # scikit-learn's own defaults, so the first trial is the familiar baseline
        return _unweighted({"n_estimators": 100, "max_depth": None, "min_samples_leaf": 1,
                            "max_features": "sqrt" if classify else 1.0, "bootstrap": bootstrap},
                           classify)
    return defaults


def _forest_build(classifier: type, regressor: type) -> BuildFn:
    def build(classify: bool, config: Config, seed: int, needs_proba: bool) -> BaseEstimator:
        cls = classifier if classify else regressor
        return cls(**config, random_state=seed, n_jobs=1)
    return build


# histogram gradient boosting ----------------------------------------------------------------

def _hist_gb_space(classify: bool) -> SearchSpace:
    return _weighted([
        FloatDim(name="learning_rate", low=0.01, high=0.3, log=True),
        IntDim(name="max_iter", low=50, high=500, log=True),
        IntDim(name="max_leaf_nodes", low=8, high=128, log=True),
        IntDim(name="min_samples_leaf", low=5, high=100, log=True),
        FloatDim(name="l2_regularization", low=1e-6, high=10.0, log=True),
    ], classify)


def _hist_gb_defaults(classify: bool) -> Config:
    return _unweighted({"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31,
                        "min_samples_leaf": 20, "l2_regularization": 1e-6}, classify)


def _hist_gb_build(classify: bool, config: Config, seed: int, needs_proba: bool) -> BaseEstimator:
    # No early stopping: its random validation split would make fold scores noisy.
    cls = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
    return cls(**config, early_stopping=False, random_state=seed)


# LightGBM -----------------------------------------------------------------------------------
# Leaf-wise boosting with row and column sampling: the space follows the ranges that work
# across tabular benchmarks (log scales for counts, rates and penalties). The regularisers'
# lower bound stands in for LightGBM's default of zero, which a log scale cannot hold.

def _lightgbm_space(classify: bool) -> SearchSpace:
    return _weighted([
        IntDim(name="n_estimators", low=20, high=1000, log=True),
        IntDim(name="num_leaves", low=4, high=128, log=True),
        FloatDim(name="learning_rate", low=0.01, high=0.3, log=True),
        IntDim(name="min_child_samples", low=2, high=100, log=True),
        FloatDim(name="subsample", low=0.5, high=1.0),
        FloatDim(name="colsample_bytree", low=0.3, high=1.0),
        FloatDim(name="reg_alpha", low=1e-4, high=10.0, log=True),
        FloatDim(name="reg_lambda", low=1e-4, high=10.0, log=True),
        # Histogram resolution: 255 bins (the default) blur a numeric column with thousands
        # of informative values, such as a key that repeat rows share.
        IntDim(name="max_bin", low=15, high=1023, log=True),
    ], classify)


def _lightgbm_defaults(classify: bool) -> Config:
    # LightGBM's own defaults, so the first trial is what a user would have tried
    return _unweighted({"n_estimators": 100, "num_leaves": 31, "learning_rate": 0.1,
                        "min_child_samples": 20, "subsample": 1.0, "colsample_bytree": 1.0,
                        "reg_alpha": 1e-4, "reg_lambda": 1e-4, "max_bin": 255}, classify)


def _lightgbm_build(classify: bool, config: Config, seed: int, needs_proba: bool) -> BaseEstimator:
    cls = LGBMClassifier if classify else LGBMRegressor
    # Row sampling only acts with a bagging frequency; deterministic + col-wise histograms
    # make the same seed give the same model on any thread count.
    return cls(**config, subsample_freq=1 if config["subsample"] < 1.0 else 0,
               random_state=seed, n_jobs=1, verbose=-1, deterministic=True,
               force_col_wise=True)


# support vector machines ----------------------------------------------------------------

def _svm_space(classify: bool) -> SearchSpace:
    dims: list[Any] = [
        FloatDim(name="C", low=1e-2, high=1e3, log=True),
        CategoricalDim(name="gamma_mode", choices=["scale", "value"]),
        FloatDim(name="gamma", low=1e-4, high=1.0, log=True),
    ]
    if not classify:
        dims.append(FloatDim(name="epsilon", low=1e-3, high=1.0, log=True))
    return _weighted(dims, classify)


def _svm_defaults(classify: bool) -> Config:
    config: Config = {"C": 1.0, "gamma_mode": "scale", "gamma": 0.1}
    return _unweighted(config, classify) if classify else {**config, "epsilon": 0.1}


def _svm_build(classify: bool, config: Config, seed: int, needs_proba: bool) -> BaseEstimator:
    gamma = "scale" if config["gamma_mode"] == "scale" else config["gamma"]
    if not classify:
        # A standardised target makes C and epsilon mean the same on every data set.
        svr = SVR(C=config["C"], gamma=gamma, epsilon=config["epsilon"])
        return TransformedTargetRegressor(regressor=svr, transformer=StandardScaler())
    svc = SVC(C=config["C"], gamma=gamma, class_weight=config["class_weight"], random_state=seed)
    # SVC(probability=True) is deprecated since scikit-learn 1.9; this is its replacement.
    return CalibratedClassifierCV(svc, ensemble=False, cv=3) if needs_proba else svc


# k nearest neighbours ---------------------------------------------------------------------

def _knn_space(classify: bool) -> SearchSpace:
    return SearchSpace(dims=[
        IntDim(name="n_neighbors", low=1, high=50, log=True),
        CategoricalDim(name="weights", choices=["uniform", "distance"]),
        CategoricalDim(name="p", choices=[1, 2]),
    ])


def _knn_defaults(classify: bool) -> Config:
    return {"n_neighbors": 5, "weights": "uniform", "p": 2}


def _knn_build(classify: bool, config: Config, seed: int, needs_proba: bool) -> BaseEstimator:
    cls = KNeighborsClassifier if classify else KNeighborsRegressor
    return cls(**config, n_jobs=1)


# torch multilayer perceptron --------------------------------------------------------------

def _mlp_space(classify: bool) -> SearchSpace:
    return SearchSpace(dims=[
        IntDim(name="hidden_size", low=16, high=512, log=True),
        IntDim(name="n_layers", low=1, high=3),
        FloatDim(name="dropout", low=0.0, high=0.5),
        FloatDim(name="lr", low=1e-4, high=1e-2, log=True),
        FloatDim(name="weight_decay", low=1e-6, high=1e-2, log=True),
        CategoricalDim(name="batch_size", choices=[32, 64, 128, 256]),
        IntDim(name="max_epochs", low=20, high=200, log=True),
    ])


def _mlp_defaults(classify: bool) -> Config:
    return {"hidden_size": 128, "n_layers": 2, "dropout": 0.1, "lr": 1e-3,
            "weight_decay": 1e-4, "batch_size": 64, "max_epochs": 100}


def _mlp_build(classify: bool, config: Config, seed: int, needs_proba: bool) -> BaseEstimator:
    # torch is imported here, not with the zoo: its import costs seconds of every run's limit
    from hyperpilot.tools.torch_mlp import TorchMLPClassifier, TorchMLPRegressor

    cls = TorchMLPClassifier if classify else TorchMLPRegressor
    return cls(**config, random_state=seed)


# the registry -----------------------------------------------------------------------------

ZOO: Mapping[str, ModelEntry] = MappingProxyType({e.name: e for e in [
    ModelEntry("linear", ALL_TASKS,
               "logistic regression / ridge: fast, interpretable, strong on few rows",
               True, None, "low", _linear_space, _linear_defaults, _linear_build, sparse=True),
    ModelEntry("random_forest", ALL_TASKS,
               "random forest: robust default for tabular data, little tuning needed",
               False, None, "medium", _forest_space, _forest_defaults(True),
               _forest_build(RandomForestClassifier, RandomForestRegressor)),
    ModelEntry("extra_trees", ALL_TASKS,
               "extremely randomised trees: like a random forest, faster, lower variance",
               False, None, "medium", _forest_space, _forest_defaults(False),
               _forest_build(ExtraTreesClassifier, ExtraTreesRegressor)),
    ModelEntry("hist_gb", ALL_TASKS,
               "histogram gradient boosting: usually the most accurate on tabular data",
               False, None, "medium", _hist_gb_space, _hist_gb_defaults, _hist_gb_build),
    ModelEntry("lightgbm", ALL_TASKS,
               "LightGBM leaf-wise gradient boosting: accurate and fast on medium and large data",
               False, None, "medium", _lightgbm_space, _lightgbm_defaults, _lightgbm_build),
    ModelEntry("svm", ALL_TASKS,
               "RBF support vector machine: strong on small, dense, scaled data",
               True, 10_000, "high", _svm_space, _svm_defaults, _svm_build),
    ModelEntry("knn", ALL_TASKS,
               "k nearest neighbours: simple local model, good on low-dimensional data",
               True, 100_000, "low", _knn_space, _knn_defaults, _knn_build),
    ModelEntry("torch_mlp", ALL_TASKS,
               "PyTorch multilayer perceptron: flexible, uses a GPU when present",
               True, None, "high", _mlp_space, _mlp_defaults, _mlp_build, gpu=True),
]})


@functools.cache
def strong_defaults_table() -> dict[str, Any]:
    """The shipped portfolios: ``{family: {"classification"|"regression": [{"config": ...}]}}``."""
    text = resources.files("hyperpilot.tools").joinpath("strong_defaults.json").read_text()
    return dict(json.loads(text)["portfolios"])


def get_model(name: str) -> ModelEntry:
    """Look up a model family by name.

    Args:
        name: one of the keys of ``ZOO``, e.g. "hist_gb".
    """
    if name not in ZOO:
        raise TaskSpecError(f"unknown model {name!r}; choose one of {', '.join(ZOO)}")
    return ZOO[name]


def models_for(task_type: TaskType) -> list[str]:
    """Names of the model families that support ``task_type``, in registry order.

    Args:
        task_type: "binary", "multiclass" or "regression".
    """
    return [name for name, entry in ZOO.items() if task_type in entry.task_types]
