"""The LLAMBO / Bayesmark tuning tasks on scikit-learn's bundled data.

A task is (dataset, model, seed): an 80/20 split drawn with the seed (stratified for
classification), features standardised on the 80%, and the objective = mean 5-fold CV
accuracy on the 80% (negative MSE on standardised y for diabetes), so higher is better.
The search spaces follow Bayesmark's ``sklearn_funcs``; its logit-scaled ranges are
linear here, and the MLP trains at most ``MLP_MAX_ITER`` epochs to keep the run short.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import datasets
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    AdaBoostClassifier,
    AdaBoostRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from hyperpilot.tools.space import FloatDim, IntDim, SearchSpace
from hyperpilot.tools.types import Config

DATASETS = ("breast_cancer", "digits", "iris", "wine", "diabetes")
MODELS = ("rf", "svm", "dt", "mlp-sgd", "ada")
REGRESSION = {"diabetes"}
MLP_MAX_ITER = 60

_TREE = [IntDim(name="max_depth", low=1, high=15),
         FloatDim(name="max_features", low=0.01, high=0.99),
         FloatDim(name="min_samples_split", low=0.01, high=0.99),
         FloatDim(name="min_samples_leaf", low=0.01, high=0.49),
         FloatDim(name="min_weight_fraction_leaf", low=0.01, high=0.49),
         FloatDim(name="min_impurity_decrease", low=0.0, high=0.5)]
_SVM = [FloatDim(name="C", low=1.0, high=1e3, log=True),
        FloatDim(name="gamma", low=1e-4, high=1e-3, log=True),
        FloatDim(name="tol", low=1e-5, high=1e-1, log=True)]
_MLP = [IntDim(name="hidden_layer_sizes", low=50, high=200),
        FloatDim(name="alpha", low=1e-5, high=1e1, log=True),
        IntDim(name="batch_size", low=10, high=250),
        FloatDim(name="learning_rate_init", low=1e-5, high=1e-1, log=True),
        FloatDim(name="power_t", low=0.1, high=0.9),
        FloatDim(name="tol", low=1e-5, high=1e-1, log=True),
        FloatDim(name="momentum", low=0.001, high=0.999),
        FloatDim(name="validation_fraction", low=0.1, high=0.9)]
_ADA = [IntDim(name="n_estimators", low=10, high=100),
        FloatDim(name="learning_rate", low=1e-4, high=1e1, log=True)]


def search_space(model: str, regression: bool) -> SearchSpace:
    dims: dict[str, list[Any]] = {"rf": _TREE, "dt": _TREE, "svm": _SVM, "mlp-sgd": _MLP, "ada": _ADA}
    extra = [FloatDim(name="epsilon", low=1e-2, high=1.0, log=True)] if model == "svm" and regression else []
    return SearchSpace(dims=[*dims[model], *extra])


def build_model(model: str, config: Config, regression: bool, seed: int) -> BaseEstimator:
    params = dict(config)
    if model == "mlp-sgd":
        params["hidden_layer_sizes"] = (params["hidden_layer_sizes"],)
        params.update(solver="sgd", early_stopping=True, max_iter=MLP_MAX_ITER,
                      learning_rate="invscaling", random_state=seed)
    elif model in ("rf", "dt", "ada"):
        params["random_state"] = seed
    if model == "rf":
        params["n_estimators"] = 10
    classes: dict[str, tuple[Callable[..., BaseEstimator], Callable[..., BaseEstimator]]] = {
        "rf": (RandomForestClassifier, RandomForestRegressor),
        "dt": (DecisionTreeClassifier, DecisionTreeRegressor), "svm": (SVC, SVR),
        "mlp-sgd": (MLPClassifier, MLPRegressor), "ada": (AdaBoostClassifier, AdaBoostRegressor)}
    return classes[model][int(regression)](**params)


@dataclass
class BenchTask:
    """One tuning problem; ``cv`` and ``test`` cache by config, so a config shared by
    several methods (the initial design) is trained once."""

    dataset: str
    model: str
    seed: int
    space: SearchSpace
    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    _cv: dict[str, float] = field(default_factory=dict)
    _test: dict[str, float] = field(default_factory=dict)

    @property
    def regression(self) -> bool:
        return self.dataset in REGRESSION

    def cv(self, config: Config) -> float:
        key = self.space.key(config)
        if key not in self._cv:
            self._cv[key] = self._score(lambda est: float(np.mean(cross_val_score(
                est, self.X, self.y, cv=self._folds(), scoring=self._scoring()))), config)
        return self._cv[key]

    def test(self, config: Config) -> float:
        key = self.space.key(config)
        if key not in self._test:
            self._test[key] = self._score(self._fit_and_score, config)
        return self._test[key]

    def _fit_and_score(self, est: BaseEstimator) -> float:
        est.fit(self.X, self.y)  # type: ignore[attr-defined]
        pred = est.predict(self.X_test)  # type: ignore[attr-defined]
        if self.regression:
            return -float(np.mean((pred - self.y_test) ** 2))
        return float(np.mean(pred == self.y_test))

    def _score(self, how: Callable[[BaseEstimator], float], config: Config) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", UserWarning)
            try:
                score = how(build_model(self.model, config, self.regression, self.seed))
            except ValueError:
                score = float("nan")
        return score if np.isfinite(score) else self._worst()

    def _worst(self) -> float:
        return -float(np.var(self.y)) * 10 if self.regression else 0.0

    def _folds(self) -> KFold | StratifiedKFold:
        kind = KFold if self.regression else StratifiedKFold
        return kind(n_splits=5, shuffle=True, random_state=self.seed)

    def _scoring(self) -> str:
        return "neg_mean_squared_error" if self.regression else "accuracy"


def make_task(dataset: str, model: str, seed: int) -> BenchTask:
    X, y = getattr(datasets, f"load_{dataset}")(return_X_y=True)
    regression = dataset in REGRESSION
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=seed,
                                              stratify=None if regression else y)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    if regression:
        mean, std = float(np.mean(y_tr)), float(np.std(y_tr))
        y_tr, y_te = (y_tr - mean) / std, (y_te - mean) / std
    return BenchTask(dataset, model, seed, search_space(model, regression), X_tr, y_tr, X_te, y_te)
