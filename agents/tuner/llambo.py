"""The LLM parts of LLAMBO behind the classical interfaces: a surrogate and a generator.

Both show the LLM the trials so far in LLAMBO's text form (``render_history``). The
surrogate asks for the scores of several candidates in one prompt, ``n_samples`` times
over shuffled histories at temperature 0.7; the mean and spread of the answers are its
prediction (a ranking signal only: no predicted score is ever recorded as measured).
The generator asks for configs that would reach ``best + alpha x range``. Every call
goes through an ``LLMMeter`` that caps calls per proposal; every config the LLM names
is parsed back into the space (repaired or dropped).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hyperpilot.agents.tuner.history import observed
from hyperpilot.agents.tuner.surrogates import SurrogateUnavailable
from hyperpilot.prompts import render
from hyperpilot.tools.errors import HyperpilotError, NoLogprobsError
from hyperpilot.tools.space import FloatDim, IntDim, SearchSpace
from hyperpilot.tools.space_text import parse_proposals, serialise_config
from hyperpilot.tools.types import Config, TrialRecord

SCORE_DECIMALS = 4


class ScorePredictions(BaseModel):
    scores: list[float] = Field(default_factory=list)


class ConfigProposals(BaseModel):
    configs: list[dict[str, Any]] = Field(default_factory=list)


def proposals_model(space: SearchSpace, n: int) -> type[ConfigProposals]:
    """``ConfigProposals`` whose JSON schema is narrowed to ``space``: at most ``n`` configs,
    each naming only the space's parameters, with their types (a categorical's choices).
    A server that enforces the schema then cannot run on past ``n`` configs or invent keys,
    which a small local model otherwise does until its token cap. Validation stays as loose
    as ``ConfigProposals``: ``parse_proposals`` repairs a value out of range, or drops one
    config, rather than losing the whole answer to a re-ask."""
    properties: dict[str, Any] = {}
    for dim in space.dims:
        if isinstance(dim, IntDim):
            properties[dim.name] = {"type": "integer"}
        elif isinstance(dim, FloatDim):
            properties[dim.name] = {"type": "number"}
        else:
            properties[dim.name] = {"enum": list(dim.choices)}
    required = [dim.name for dim in space.dims if dim.condition is None]
    item = {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False}
    configs = {"type": "array", "items": item, "minItems": 1, "maxItems": n}
    return _narrowed(ConfigProposals, {"properties": {"configs": configs}, "required": ["configs"]})


def scores_model(n: int) -> type[ScorePredictions]:
    """``ScorePredictions`` whose JSON schema asks for exactly ``n`` scores (a wrong count
    from a server that does not enforce it is still dropped, not re-asked)."""
    scores = {"type": "array", "items": {"type": "number"}, "minItems": n, "maxItems": n}
    return _narrowed(ScorePredictions, {"properties": {"scores": scores}, "required": ["scores"]})


def _narrowed(base: type[Any], schema: dict[str, Any]) -> type[Any]:
    """A subclass of ``base`` with the same name and validation, and ``schema`` merged over
    its JSON schema."""
    return type(base.__name__, (base,), {"model_config": ConfigDict(json_schema_extra=schema),
                                        "__module__": base.__module__})


@dataclass
class LLMMeter:
    """Calls the LLM parts may still make in the current proposal, and what they spent.

    ``SurrogateSampler`` sets ``allowed`` before each proposal (from the run's budget and
    the calls its history already spent) and reads ``calls``/``tokens`` after it.
    """

    llm: Any
    allowed: int = 0
    calls: int = 0
    tokens: int = 0
    dropped: list[str] = field(default_factory=list)

    def start(self, allowed: int) -> None:
        self.allowed, self.calls, self.tokens, self.dropped = allowed, 0, 0, []

    def complete(self, prompt: str, model: type[BaseModel], agent: str) -> Any:
        """One sampled answer (temperature 0.7); ``SurrogateUnavailable`` when it fails."""
        return self._call(self.llm.complete, prompt, model, agent, temperature=0.7)

    def complete_with_logprobs(self, prompt: str, model: type[BaseModel], agent: str,
                               top_logprobs: int) -> tuple[Any, list[dict[str, Any]]]:
        """The greedy answer and its tokens' log-probabilities (top ``top_logprobs`` each)."""
        ask = getattr(self.llm, "complete_with_logprobs", None)
        if ask is None:
            raise NoLogprobs(f"{agent}: this LLM client gives no token log-probabilities")
        try:
            return self._call(ask, prompt, model, agent, temperature=0.0,  # type: ignore[no-any-return]
                              top_logprobs=top_logprobs)
        except SurrogateUnavailable as err:
            if isinstance(err.__cause__, NoLogprobsError):
                raise NoLogprobs(str(err)) from err
            raise

    def _call(self, ask: Any, prompt: str, model: type[BaseModel], agent: str, **settings: Any) -> Any:
        if self.calls >= self.allowed:
            raise SurrogateUnavailable("LLM budget for this trial is spent")
        before = self.llm.usage.total_tokens
        self.calls += 1
        messages = [{"role": "system", "content": render("system.j2", agent="tuner", data_seen=False)},
                    {"role": "user", "content": prompt}]
        try:
            return ask(messages, model, agent=agent, **settings)
        except HyperpilotError as err:  # invalid output, budget, outage: the classical path
            raise SurrogateUnavailable(f"{agent}: {err}") from err
        finally:
            self.tokens += self.llm.usage.total_tokens - before


class NoLogprobs(SurrogateUnavailable):
    """The LLM answers but gives no token log-probabilities."""


def render_history(space: SearchSpace, configs: Sequence[Config], scores: Sequence[float]) -> str:
    """The k-shot block: one ``config text -> score`` line per trial, in the given order."""
    return "\n".join(f"{serialise_config(space, c)} -> {float(s):.{SCORE_DECIMALS}f}"
                     for c, s in zip(configs, scores, strict=True))


def own_stream(rng: np.random.Generator) -> np.random.Generator:
    """A child generator: the LLM parts draw from it, so the parent's stream (and with it
    every classical proposal) is the same whether or not an LLM takes part."""
    try:
        return rng.spawn(1)[0]
    except (TypeError, ValueError):  # a generator built without a seed sequence
        return rng


def _shuffled(configs: list[Config], y: np.ndarray, rng: np.random.Generator,
              k: int) -> tuple[list[Config], list[float]]:
    order = rng.permutation(len(configs))[:k]
    return [configs[i] for i in order], [float(y[i]) for i in order]


def surrogate_prompt(task: str, configs: list[Config], y: np.ndarray, candidates: list[Config],
                     space: SearchSpace, rng: np.random.Generator, k_shot: int) -> str:
    """The score-prediction prompt over a shuffled k-shot history."""
    shown, scores = _shuffled(configs, y, rng, k_shot)
    return render("llambo_surrogate.j2", task=task, space=space.describe(),
                  history=render_history(space, shown, scores), n=len(candidates),
                  candidates=[serialise_config(space, c) for c in candidates],
                  decimals=SCORE_DECIMALS)


class LLMSurrogate:
    name = "llm"
    classical = False
    cv_folds = 2

    def __init__(self, meter: LLMMeter, task: str, n_samples: int = 3, k_shot: int = 30) -> None:
        self.meter, self.task, self.n_samples, self.k_shot = meter, task, n_samples, k_shot

    def predict(self, configs: list[Config], y: np.ndarray, candidates: list[Config],
                space: SearchSpace, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        rng = own_stream(rng)
        samples = []
        for _ in range(self.n_samples):
            prompt = surrogate_prompt(self.task, configs, y, candidates, space, rng, self.k_shot)
            answer = self.meter.complete(prompt, scores_model(len(candidates)), "tuner-surrogate").scores
            if len(answer) == len(candidates) and all(math.isfinite(v) for v in answer):
                samples.append(answer)
        if not samples:
            raise SurrogateUnavailable("the LLM gave no usable score predictions")
        table = np.asarray(samples, dtype=float)
        floor = 1e-3 * (float(np.ptp(y)) or 1.0)
        return table.mean(axis=0), np.maximum(table.std(axis=0), floor)


class LLMGenerator:
    """LLAMBO's candidate sampler: configs the LLM expects to reach a target score."""

    name = "llm"

    def __init__(self, meter: LLMMeter, task: str, alpha: float = 0.1, per_call: int = 5,
                 k_shot: int = 30) -> None:
        self.meter, self.task, self.alpha, self.per_call, self.k_shot = meter, task, alpha, per_call, k_shot

    def propose(self, history: Sequence[TrialRecord], space: SearchSpace,
                rng: np.random.Generator, n: int, *, direction: str) -> list[Config]:
        configs, y = observed(history, space, direction)
        if not configs:
            return []
        shown, scores = _shuffled(configs, y, own_stream(rng), self.k_shot)
        count = min(n, self.per_call)
        prompt = render("llambo_candidates.j2", task=self.task, space=space.describe(),
                        history=render_history(space, shown, scores), n=count,
                        names=", ".join(f'"{name}": ...' for name in space.names),
                        target=f"{target_score(y, self.alpha):.{SCORE_DECIMALS}f}")
        try:
            answer = self.meter.complete(prompt, proposals_model(space, count), "tuner-candidates")
        except SurrogateUnavailable:
            return []
        kept, dropped = parse_proposals(space, answer.configs, {space.key(r.config) for r in history})
        self.meter.dropped += dropped
        return kept


def target_score(y: np.ndarray, alpha: float) -> float:
    """best + alpha x observed range, kept at or below 1 when every score lies in [0, 1]."""
    target = float(np.max(y) + alpha * np.ptp(y))
    return min(target, 1.0) if np.all((y >= 0) & (y <= 1)) else target
