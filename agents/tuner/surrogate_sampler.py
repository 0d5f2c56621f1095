"""``SurrogateSampler(generator, surrogates, acquisition)``: LLAMBO's parts behind one sampler.

Each proposal: the generator proposes a pool of untried configs; every surrogate is
measured on the trials seen (held-out rank correlation over ``cv_folds`` folds); the
surrogates are weighed by that trust, and an LLM (non-classical) surrogate gets weight only
when it ranks the held-out trials better than every classical one and than chance. An LLM
candidate generator (``llm_generator``) is asked only in a trial where the LLM has earned
that weight: what the LLM cannot predict, it does not get to propose either. The config
with the highest acquisition under the weighted mixture wins. An LLM that earns no weight
thus leaves every proposal exactly as the classical parts make it (the same config from the
same random stream). ``propose`` returns the weights with the config.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from hyperpilot.agents.tuner.gp import expected_improvement
from hyperpilot.agents.tuner.history import observed
from hyperpilot.agents.tuner.llambo import LLMMeter, own_stream
from hyperpilot.agents.tuner.surrogates import (
    CandidateGenerator,
    GPSurrogate,
    LocalGenerator,
    Surrogate,
    SurrogateUnavailable,
)
from hyperpilot.tools.space import SearchSpace
from hyperpilot.tools.space_text import parse_proposals
from hyperpilot.tools.types import Config, TrialRecord

Acquisition = Callable[[np.ndarray, np.ndarray, float], np.ndarray]
SHORTLIST = 8  # candidates a non-classical surrogate is asked about, after a classical pre-rank


def ei_acquisition(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    return expected_improvement(mean, std, best, xi=0.01)


@dataclass
class Trust:
    """Held-out rank correlation per surrogate, the weights drawn from it, and notes."""

    scores: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def held_out_rank_correlation(surrogate: Surrogate, configs: list[Config], y: np.ndarray,
                              space: SearchSpace, rng: np.random.Generator) -> float:
    """Spearman correlation of ``surrogate``'s out-of-fold predictions with the scores
    (its own ``held_out`` predictions where it has a cheaper exact form: GP leave-one-out,
    forest out-of-bag)."""
    n = len(configs)
    predicted = np.empty(n)
    own = getattr(surrogate, "held_out", None)
    folds = [] if own is not None else np.array_split(rng.permutation(n), min(surrogate.cv_folds, n))
    if own is not None:
        predicted = own(configs, y, space, rng)
    for fold in folds:
        train = np.setdiff1d(np.arange(n), fold)
        mean, _ = surrogate.predict([configs[i] for i in train], y[train],
                                    [configs[i] for i in fold], space, rng)
        predicted[fold] = mean
    if np.ptp(predicted) == 0 or np.ptp(y) == 0:
        return 0.0
    rho = float(spearmanr(predicted, y).statistic)
    return rho if np.isfinite(rho) else 0.0


def trust_weights(scores: dict[str, float], classical: set[str], power: float = 2.0,
                  chance: float = 0.0) -> dict[str, float]:
    """Weights from trust scores (``scores`` in order, the first one the anchor, e.g. the GP).

    The anchor keeps its weight; any other surrogate gets weight only when it ranks the
    held-out trials at least as well as the anchor, and an LLM (non-classical) one only
    when at least as well as the best classical one and above ``chance`` (the correlation
    that random predictions exceed about 5% of the time). No positive score: the anchor alone.
    """
    names = list(scores)
    anchor = names[0]
    bar = max([scores[anchor], *(scores[n] for n in classical if n in scores), chance])
    raw = {name: max(rho, 0.0) ** power if name == anchor or rho >= (
        bar if name not in classical else scores[anchor]) else 0.0 for name, rho in scores.items()}
    total = sum(raw.values())
    if total == 0:
        return {n: float(n == anchor) for n in names}
    return {name: w / total for name, w in raw.items()}


def mixture(parts: list[tuple[float, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of a weighted mixture of Gaussian predictions."""
    mean = sum(w * m for w, m, _ in parts)
    second = sum(w * (s**2 + m**2) for w, m, s in parts)
    return np.asarray(mean), np.sqrt(np.maximum(np.asarray(second) - np.asarray(mean) ** 2, 0.0))


class SurrogateSampler:
    """Generator + trusted surrogates + acquisition; the default is classical: the GP
    sampler's candidates (uniform and local moves around the best), a GP surrogate and
    expected improvement. A ``ForestSurrogate`` or ``TPEGenerator`` plug in the same way."""

    name = "surrogate"

    def __init__(self, generator: CandidateGenerator | None = None,
                 surrogates: Sequence[Surrogate] | None = None,
                 acquisition: Acquisition = ei_acquisition, *, n_candidates: int = 512,
                 n_startup: int = 5, meter: LLMMeter | None = None, llm_budget: int = 0,
                 llm_calls_per_trial: int = 10, llm_generator: CandidateGenerator | None = None,
                 llm_candidates: int = 5) -> None:
        self.generator = generator or LocalGenerator()
        self.llm_generator = llm_generator
        self.llm_candidates = llm_candidates
        self.surrogates = list(surrogates or [GPSurrogate()])
        self.acquisition = acquisition
        self.n_candidates = n_candidates
        self.n_startup = n_startup
        self.meter = meter
        self.llm_budget = llm_budget
        self.llm_calls_per_trial = llm_calls_per_trial

    def suggest(self, history: Sequence[TrialRecord], space: SearchSpace,
                rng: np.random.Generator, *, direction: str = "maximize") -> Config:
        return self.propose(history, space, rng, direction=direction)[0]

    def propose(self, history: Sequence[TrialRecord], space: SearchSpace,
                rng: np.random.Generator, *, direction: str = "maximize") -> tuple[Config, dict[str, Any]]:
        """The next config and what decided it: trust scores and weights per surrogate."""
        configs, y = observed(history, space, direction)
        if len(configs) < max(self.n_startup, 3):
            return space.sample(rng), {"phase": "startup"}
        if self.meter is not None:
            spent = sum(int(r.tuner.get("llm_calls", 0)) for r in history)
            self.meter.start(max(0, min(self.llm_calls_per_trial, self.llm_budget - spent)))
        tried = {space.key(r.config) for r in history}
        pool = self._pool(self.generator, history, space, rng, direction, self.n_candidates, tried)
        if not pool:
            return space.sample(rng), {"phase": "pool exhausted"}
        trust = self._trust(configs, y, space, rng)
        generator = self.generator.name
        if self.llm_generator is not None and self._llm_trusted(trust):
            tried |= {space.key(c) for c in pool}
            pool += self._pool(self.llm_generator, history, space, rng, direction,
                               self.llm_candidates, tried)
            generator = f"{generator}+{self.llm_generator.name}"
        choice = self._choose(pool, configs, y, space, rng, trust)
        info: dict[str, Any] = {
            "phase": "model", "generator": generator, "weights": trust.weights,
            "trust": {k: round(v, 4) for k, v in trust.scores.items()}}
        if trust.notes:
            info["notes"] = trust.notes
        if self.meter is not None:
            info |= {"llm_calls": self.meter.calls, "llm_tokens": self.meter.tokens,
                     "llm_dropped": len(self.meter.dropped)}
        return choice, info

    @staticmethod
    def _pool(generator: CandidateGenerator, history: Sequence[TrialRecord], space: SearchSpace,
              rng: np.random.Generator, direction: str, n: int, tried: set[str]) -> list[Config]:
        raw = generator.propose(history, space, rng, n, direction=direction)
        pool, _ = parse_proposals(space, raw, tried)
        return pool

    def _llm_trusted(self, trust: Trust) -> bool:
        return any(trust.weights.get(s.name, 0.0) > 0 for s in self.surrogates if not s.classical)

    def _trust(self, configs: list[Config], y: np.ndarray, space: SearchSpace,
               rng: np.random.Generator) -> Trust:
        trust = Trust()
        for surrogate in self.surrogates:
            stream = rng if surrogate.classical else own_stream(rng)
            try:
                trust.scores[surrogate.name] = held_out_rank_correlation(surrogate, configs, y, space, stream)
            except SurrogateUnavailable as err:
                trust.scores[surrogate.name] = -1.0
                trust.notes[surrogate.name] = str(err)
        trust.weights = trust_weights(trust.scores, {s.name for s in self.surrogates if s.classical},
                                      chance=2.0 / np.sqrt(max(len(y) - 1, 1)))
        return trust

    def _choose(self, pool: list[Config], configs: list[Config], y: np.ndarray, space: SearchSpace,
                rng: np.random.Generator, trust: Trust) -> Config:
        classical = [s for s in self.surrogates if s.classical and trust.weights[s.name] > 0]
        parts = self._predict(classical, pool, configs, y, space, rng, trust)
        scores = self._score(parts, y, len(pool))
        others = [s for s in self.surrogates if not s.classical and trust.weights[s.name] > 0]
        if not others:
            return pool[int(np.argmax(scores))]
        order = np.argsort(-scores, kind="stable")[:SHORTLIST]
        shortlist = [pool[i] for i in order]
        extra = self._predict(others, shortlist, configs, y, space, rng, trust)
        if not extra:  # the trusted LLM gave no predictions: exactly the classical choice
            return shortlist[0]
        # The classical predictions are reused on the shortlist, not refitted: a refit would
        # draw from ``rng`` and move every later classical proposal.
        parts = [(w, mean[order], std[order]) for w, mean, std in parts] + extra
        return shortlist[int(np.argmax(self._score(parts, y, len(shortlist))))]

    @staticmethod
    def _predict(surrogates: list[Surrogate], pool: list[Config], configs: list[Config],
                 y: np.ndarray, space: SearchSpace, rng: np.random.Generator,
                 trust: Trust) -> list[tuple[float, np.ndarray, np.ndarray]]:
        parts = []
        for surrogate in surrogates:
            try:
                mean, std = surrogate.predict(configs, y, pool, space, rng)
            except SurrogateUnavailable as err:
                trust.notes[surrogate.name] = str(err)
                continue
            parts.append((trust.weights[surrogate.name], np.asarray(mean), np.asarray(std)))
        return parts

    def _score(self, parts: list[tuple[float, np.ndarray, np.ndarray]], y: np.ndarray,
               n: int) -> np.ndarray:
        if not parts:
            return np.zeros(n)
        total = sum(w for w, _, _ in parts) or 1.0
        mean, std = mixture([(w / total, m, s) for w, m, s in parts])
        scale = float(np.std(y)) or 1.0
        return self.acquisition(mean / scale, std / scale, float(np.max(y)) / scale)
