"""The tuner's sampler for a run: LLAMBO parts when an LLM and a budget are given, the
classical parts of the same ``SurrogateSampler`` otherwise."""

from __future__ import annotations

from typing import Any

from hyperpilot.agents.tuner.llambo import LLMGenerator, LLMMeter, LLMSurrogate
from hyperpilot.agents.tuner.llm_logprobs import LogprobSurrogate
from hyperpilot.agents.tuner.surrogate_sampler import SurrogateSampler
from hyperpilot.agents.tuner.surrogates import GPSurrogate, LocalGenerator, Surrogate

LLM_CALLS_PER_TRIAL = 10
# How the LLM surrogate gets its spread: "samples" asks n_samples times at temperature 0.7,
# "logprobs" reads it from the digits' token probabilities of one greedy answer. On the
# local model, logprobs ranked held-out trials better and had a lower NLL at 1 call than
# samples at 2 (benchmarks/results/llm_surrogate_spread); against a server that returns no
# log-probabilities it samples instead.
SPREADS = ("samples", "logprobs")
DEFAULT_SPREAD = "logprobs"


def llm_surrogate(meter: LLMMeter, task: str, spread: str = DEFAULT_SPREAD) -> Surrogate:
    if spread not in SPREADS:
        raise ValueError(f"unknown LLM surrogate spread {spread!r}; choose from {', '.join(SPREADS)}")
    return LogprobSurrogate(meter, task) if spread == "logprobs" else LLMSurrogate(meter, task)


def tuner_sampler(llm: Any | None, task: str, llm_budget: int = 0,
                  per_trial: int = LLM_CALLS_PER_TRIAL, spread: str = DEFAULT_SPREAD) -> SurrogateSampler:
    """``llm_budget`` caps the tuner's LLM calls over the history the sampler sees."""
    if llm is None or llm_budget <= 0:
        return SurrogateSampler()
    meter = LLMMeter(llm)
    surrogates = [GPSurrogate(), llm_surrogate(meter, task, spread)]
    # The LLM's candidates join the pool only in trials where its predictions earned weight.
    return SurrogateSampler(LocalGenerator(), surrogates, meter=meter, llm_budget=llm_budget,
                            llm_calls_per_trial=per_trial, llm_generator=LLMGenerator(meter, task))
