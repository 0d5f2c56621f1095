"""Gaussian-process Bayesian optimisation: expected improvement over a Matern GP."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Kernel, Matern, WhiteKernel
from threadpoolctl import threadpool_limits

from hyperpilot.agents.tuner.history import observed
from hyperpilot.tools.space import SearchSpace
from hyperpilot.tools.types import Config, TrialRecord

# With ``prior``, the GP's hyperparameters are fitted by MAP, not maximum likelihood: with the
# handful of trials an early search has, maximum likelihood can send ARD length scales to
# their bounds (a surface flat in all directions but one, or white noise) and the next
# proposals follow that fit. Log-normal priors (mean, sd of the log) on the kernel's scale,
# each length scale and the noise keep them near smooth values until the trials say
# otherwise; the length scale's mean grows with the number of encoded coordinates. Not the
# default: on 50 tasks of the tuner benchmark its gain was no larger than the spread between
# two random streams of the same sampler (benchmarks/results/tuner-gp-prior).
SCALE_PRIOR = (0.0, 1.0)
NOISE_PRIOR = (float(np.log(1e-2)), 1.5)
LENGTH_PRIOR_SD = float(np.sqrt(3.0))


def length_prior_mean(width: int) -> float:
    """The prior mean of log length scale for ``width`` encoded coordinates."""
    return float(np.sqrt(2.0) + 0.5 * np.log(max(width, 1)))


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float,
                         xi: float) -> np.ndarray:
    """Expected improvement over ``best`` for maximisation; where ``std`` is 0 it is the
    plain improvement ``max(mean - best - xi, 0)``."""
    mean = np.asarray(mean, dtype=float)
    std = np.asarray(std, dtype=float)
    improvement = mean - best - xi
    safe_std = np.where(std > 0, std, 1.0)
    z = improvement / safe_std
    ei = improvement * norm.cdf(z) + safe_std * norm.pdf(z)
    return np.where(std > 0, np.maximum(ei, 0.0), np.maximum(improvement, 0.0))


class GPSampler:
    """Bayesian optimisation: a Gaussian process (Matern 5/2, one length scale per encoded
    coordinate) fitted to the COMPLETE trials, maximising expected improvement over random
    candidates and Gaussian perturbations of the best configs so far.

    ``xi`` is measured in standard deviations of the observed scores, so it does not
    depend on the metric's scale. Below ``n_startup`` usable trials it samples at random.
    """

    name = "gp"

    def __init__(self, n_startup: int = 5, n_candidates: int = 512, xi: float = 0.01,
                 n_top: int = 5, prior: bool = False) -> None:
        self.n_startup = n_startup
        self.n_candidates = n_candidates
        self.xi = xi
        self.n_top = n_top
        self.prior = prior

    def suggest(self, history: Sequence[TrialRecord], space: SearchSpace,
                rng: np.random.Generator, *, direction: str = "maximize") -> Config:
        configs, y = observed(history, space, direction)
        if len(configs) < max(self.n_startup, 1):
            return space.sample(rng)
        x = np.stack([space.encode(c) for c in configs])
        seen = {space.key(r.config) for r in history}
        candidates = self._candidates(space, configs, y, seen, rng)
        if not candidates:  # every candidate already tried: a tiny space, nearly exhausted
            return space.sample(rng)
        # Matrices this small run slower on several BLAS threads, badly so on a busy machine.
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            # Length scales at their bounds and tiny negative variances are routine on few
            # points; the fit is still usable, so the warnings are not news to the user.
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
            gp = self._fit(x, y, rng)
            mean, std = gp.predict(np.stack([space.encode(c) for c in candidates]),
                                   return_std=True)
        scale = float(np.std(y)) or 1.0
        ei = expected_improvement(mean / scale, std / scale, float(np.max(y)) / scale, self.xi)
        return candidates[int(np.argmax(ei))]

    def _fit(self, x: np.ndarray, y: np.ndarray,
             rng: np.random.Generator) -> GaussianProcessRegressor:
        return fit_gp(x, y, rng, prior=self.prior)

    def _candidates(self, space: SearchSpace, configs: list[Config], y: np.ndarray,
                    seen: set[str], rng: np.random.Generator) -> list[Config]:
        """Distinct, untried configs: half uniform samples, half local moves around the best."""
        n_local = self.n_candidates // 2
        proposals = [space.sample(rng) for _ in range(self.n_candidates - n_local)]
        top = [space.encode(configs[i]) for i in np.argsort(-y, kind="stable")[:self.n_top]]
        # Mixed step sizes: large steps escape a basin, small ones polish the optimum.
        steps = 10.0 ** rng.uniform(-2.5, -0.5, size=(n_local, 1))
        centres = np.stack(top)[rng.integers(len(top), size=n_local)]
        moved = np.clip(centres + steps * rng.standard_normal(centres.shape), 0.0, 1.0)
        proposals.extend(space.decode(v) for v in moved)
        seen = set(seen)
        out: list[Config] = []
        for config in proposals:
            key = space.key(config)
            if key not in seen:
                seen.add(key)
                out.append(config)
        return out


def gp_kernel(width: int) -> Kernel:
    return (ConstantKernel(1.0, (1e-3, 1e3))
            * Matern(length_scale=np.full(width, 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5)
            + WhiteKernel(1e-4, (1e-8, 0.5)))


def fit_gp(x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
           prior: bool = False) -> GaussianProcessRegressor:
    """A GP fitted to encoded configs ``x`` and scores ``y`` (normalised inside): MAP
    hyperparameters under the priors above, or maximum likelihood without ``prior``."""
    optimizer: Callable[..., tuple[np.ndarray, float]] | str = (
        map_optimizer(x.shape[1]) if prior else "fmin_l_bfgs_b")
    gp = GaussianProcessRegressor(kernel=gp_kernel(x.shape[1]), normalize_y=True,
                                  optimizer=optimizer, n_restarts_optimizer=0,
                                  random_state=int(rng.integers(2**31 - 1)))
    return gp.fit(x, y)


def map_optimizer(width: int) -> Callable[..., tuple[np.ndarray, float]]:
    """scikit-learn's ``optimizer`` hook for ``gp_kernel(width)``: minimises the negative log
    marginal likelihood plus the negative log prior of the kernel's log hyperparameters
    (scale, ``width`` length scales, noise), from the prior's mean and from the kernel's
    starting values, with L-BFGS-B inside the bounds."""
    mean = np.array([SCALE_PRIOR[0], *[length_prior_mean(width)] * width, NOISE_PRIOR[0]])
    sd = np.array([SCALE_PRIOR[1], *[LENGTH_PRIOR_SD] * width, NOISE_PRIOR[1]])

    def optimizer(objective: Callable[..., tuple[float, np.ndarray]], initial: np.ndarray,
                  bounds: np.ndarray) -> tuple[np.ndarray, float]:
        def penalised(theta: np.ndarray) -> tuple[float, np.ndarray]:
            value, gradient = objective(theta, eval_gradient=True)
            z = (theta - mean) / sd
            return float(value) + 0.5 * float(z @ z), np.asarray(gradient) + z / sd

        starts = (np.clip(mean, bounds[:, 0], bounds[:, 1]), np.asarray(initial, dtype=float))
        fits = [minimize(penalised, start, jac=True, method="L-BFGS-B", bounds=bounds)
                for start in starts]
        best = min(fits, key=lambda fit: fit.fun)
        return best.x, float(best.fun)

    return optimizer

