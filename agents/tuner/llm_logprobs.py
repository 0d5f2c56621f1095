"""An LLM surrogate whose spread comes from token log-probabilities: one call per prediction.

The LLM answers the same score-prediction prompt as ``LLMSurrogate``, greedily, with the
top log-probabilities of every reply token. A predicted score such as ``0.9123`` is read
digit by digit: each digit's alternatives (renormalised over the digits among them) give
an expected digit and its variance, and the score's mean and variance are the place-value
weighted sums (digits treated as independent given the greedy prefix). Where a server
gives no log-probabilities the spread comes from two sampled answers instead (``LLMSurrogate``).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from hyperpilot.agents.tuner.llambo import (
    LLMMeter,
    LLMSurrogate,
    NoLogprobs,
    own_stream,
    scores_model,
    surrogate_prompt,
)
from hyperpilot.agents.tuner.surrogates import SurrogateUnavailable
from hyperpilot.tools.space import SearchSpace
from hyperpilot.tools.types import Config

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
Tokens = list[dict[str, Any]]


def _digit_moments(token: dict[str, Any]) -> tuple[float, float] | None:
    """Mean and variance of the digit this token stands for, from its alternatives; None
    when the token is not a single digit (its value is then taken as certain)."""
    text = token["token"]
    if len(text) != 1 or not text.isdigit():
        return None
    options = {str(t): float(lp) for t, lp in token.get("top", []) if len(str(t)) == 1 and str(t).isdigit()}
    options.setdefault(text, float(token["logprob"]))
    top = max(options.values())
    weights = {int(d): math.exp(lp - top) for d, lp in options.items()}
    total = sum(weights.values())
    mean = sum(d * w for d, w in weights.items()) / total
    return mean, max(sum(d * d * w for d, w in weights.items()) / total - mean**2, 0.0)


def _number_moments(match: re.Match[str], owner: list[int], tokens: Tokens) -> tuple[float, float]:
    text = match.group()
    if "e" in text.lower():
        return float(text), 0.0
    sign = -1.0 if text.startswith("-") else 1.0
    body_start = match.start() + (sign < 0)
    digits = text.lstrip("-")
    point = digits.find(".") if "." in digits else len(digits)
    mean = var = 0.0
    for j, char in enumerate(digits):
        if char == ".":
            continue
        place = 10.0 ** (point - j - 1 if j < point else point - j)
        moments = _digit_moments(tokens[owner[body_start + j]])
        d_mean, d_var = moments if moments is not None else (float(char), 0.0)
        mean += place * d_mean
        var += place * place * d_var
    return sign * mean, var


def score_moments(tokens: Tokens) -> list[tuple[float, float]]:
    """``(mean, variance)`` of each number in the reply's ``scores`` array, in order."""
    text = "".join(t["token"] for t in tokens)
    owner = [i for i, t in enumerate(tokens) for _ in t["token"]]
    start = text.find("[", max(text.find("scores"), 0))
    end = text.find("]", start)
    if start < 0 or end < 0:
        return []
    return [_number_moments(m, owner, tokens) for m in _NUMBER.finditer(text, start, end)]


class LogprobSurrogate:
    """LLAMBO's LLM surrogate at one call per prediction: mean and spread of each
    candidate's score from the digits' token probabilities (see the module docstring)."""

    name = "llm"
    classical = False
    cv_folds = 2

    def __init__(self, meter: LLMMeter, task: str, k_shot: int = 30, top_logprobs: int = 10) -> None:
        self.meter, self.task, self.k_shot, self.top_logprobs = meter, task, k_shot, top_logprobs

    def predict(self, configs: list[Config], y: np.ndarray, candidates: list[Config],
                space: SearchSpace, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        prompt = surrogate_prompt(self.task, configs, y, candidates, space, own_stream(rng), self.k_shot)
        try:
            _, tokens = self.meter.complete_with_logprobs(prompt, scores_model(len(candidates)),
                                                          "tuner-surrogate", self.top_logprobs)
        except NoLogprobs:  # a server without log-probabilities: the spread of samples instead
            return LLMSurrogate(self.meter, self.task, n_samples=2, k_shot=self.k_shot).predict(
                configs, y, candidates, space, rng)
        moments = np.array(score_moments(tokens), dtype=float).reshape(-1, 2)
        if len(moments) != len(candidates) or not np.all(np.isfinite(moments)):
            raise SurrogateUnavailable(f"the LLM gave {len(moments)} usable scores for "
                                       f"{len(candidates)} candidates")
        floor = 1e-3 * (float(np.ptp(y)) or 1.0)
        return moments[:, 0], np.maximum(np.sqrt(moments[:, 1]), floor)
