"""Surrogates and candidate generators: the swappable parts of a ``SurrogateSampler``.

A surrogate predicts (mean, std) of the oriented score (higher is better) of candidate
configs from the observed ones; a generator proposes candidate configs. Classical and
LLM parts share these interfaces (the LLM ones live in ``llambo.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from threadpoolctl import threadpool_limits

from hyperpilot.agents.tuner.gp import GPSampler, fit_gp
from hyperpilot.agents.tuner.tpe import TPESampler
from hyperpilot.tools.space import SearchSpace
from hyperpilot.tools.types import Config, TrialRecord


class SurrogateUnavailable(RuntimeError):
    """A surrogate that cannot predict now (LLM budget spent, invalid answers)."""


class Surrogate(Protocol):
    name: str
    classical: bool
    cv_folds: int  # folds used to measure it on the trials seen (the trust score)

    def predict(self, configs: list[Config], y: np.ndarray, candidates: list[Config],
                space: SearchSpace, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]: ...


class CandidateGenerator(Protocol):
    name: str

    def propose(self, history: Sequence[TrialRecord], space: SearchSpace,
                rng: np.random.Generator, n: int, *, direction: str) -> list[Config]: ...


class GPSurrogate:
    """scikit-learn's GP (Matern 5/2, ARD) on the unit encoding, as in ``GPSampler``; MAP
    hyperparameters with ``prior``."""

    name = "gp"
    classical = True
    cv_folds = 3

    def __init__(self, prior: bool = False) -> None:
        self.prior = prior

    def predict(self, configs: list[Config], y: np.ndarray, candidates: list[Config],
                space: SearchSpace, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            for kind in (ConvergenceWarning, RuntimeWarning, UserWarning):
                warnings.simplefilter("ignore", kind)
            gp = self._fit(configs, y, space, rng)
            mean, std = gp.predict(np.stack([space.encode(c) for c in candidates]), return_std=True)
        return np.asarray(mean, dtype=float), np.asarray(std, dtype=float)

    def held_out(self, configs: list[Config], y: np.ndarray, space: SearchSpace,
                 rng: np.random.Generator) -> np.ndarray:
        """Exact leave-one-out means from one fit: y_i - [K^-1 y]_i / [K^-1]_ii."""
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            for kind in (ConvergenceWarning, RuntimeWarning, UserWarning):
                warnings.simplefilter("ignore", kind)
            gp = self._fit(configs, y, space, rng)
            k_inv = np.linalg.pinv(gp.kernel_(gp.X_train_))
        centred = y - np.mean(y)
        return y - (k_inv @ centred) / np.maximum(np.diag(k_inv), 1e-12)

    def _fit(self, configs: list[Config], y: np.ndarray, space: SearchSpace,
             rng: np.random.Generator) -> GaussianProcessRegressor:
        return fit_gp(np.stack([space.encode(c) for c in configs]), y, rng, prior=self.prior)


class ForestSurrogate:
    """Extremely randomised trees; the spread of the trees' predictions is the std (SMAC)."""

    name = "forest"
    classical = True
    cv_folds = 3

    def __init__(self, n_trees: int = 30) -> None:
        self.n_trees = n_trees

    def predict(self, configs: list[Config], y: np.ndarray, candidates: list[Config],
                space: SearchSpace, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        x = np.stack([space.encode(c) for c in configs])
        forest = self._fit(x, y, rng)
        grid = np.stack([space.encode(c) for c in candidates])
        per_tree = np.stack([tree.predict(grid) for tree in forest.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)

    def held_out(self, configs: list[Config], y: np.ndarray, space: SearchSpace,
                 rng: np.random.Generator) -> np.ndarray:
        """Out-of-bag predictions (the mean where a trial was in every bootstrap sample)."""
        forest = self._fit(np.stack([space.encode(c) for c in configs]), y, rng)
        oob = np.asarray(forest.oob_prediction_, dtype=float)
        return np.where(np.isfinite(oob), oob, float(np.mean(y)))

    def _fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> ExtraTreesRegressor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # few trials: some never out of bag
            return ExtraTreesRegressor(n_estimators=self.n_trees, min_samples_leaf=2, bootstrap=True,
                                       oob_score=True,
                                       random_state=int(rng.integers(2**31 - 1))).fit(x, y)


class LocalGenerator:
    """Random configs and Gaussian moves around the best ones (the GP sampler's pool)."""

    name = "local"

    def propose(self, history: Sequence[TrialRecord], space: SearchSpace,
                rng: np.random.Generator, n: int, *, direction: str) -> list[Config]:
        from hyperpilot.agents.tuner.history import observed

        configs, y = observed(history, space, direction)
        if not configs:
            return [space.sample(rng) for _ in range(n)]
        seen = {space.key(r.config) for r in history}
        return GPSampler(n_candidates=n)._candidates(space, configs, y, seen, rng)


class TPEGenerator:
    """Draws from the TPE density of the good trials (l(x)), best l/g ratio first."""

    name = "tpe"

    def __init__(self, n_startup: int = 5) -> None:
        self.tpe = TPESampler(n_startup=n_startup)

    def propose(self, history: Sequence[TrialRecord], space: SearchSpace,
                rng: np.random.Generator, n: int, *, direction: str) -> list[Config]:
        return self.tpe.candidates(history, space, rng, n, direction=direction)
