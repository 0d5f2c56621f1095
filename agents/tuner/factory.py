"""The tuner's sampler for a run: LLAMBO parts when an LLM and a budget are given, the
classical parts of the same ``SurrogateSampler`` otherwise."""

from __future__ import annotations

from typing import Any

from hyperpilot.agents.tuner.llambo import LLMGenerator, LLMMeter, LLMSurrogate
from hyperpilot.agents.tuner.surrogate_sampler import SurrogateSampler
from hyperpilot.agents.tuner.surrogates import GPSurrogate, LocalGenerator, MixedGenerator

LLM_CALLS_PER_TRIAL = 10


def tuner_sampler(llm: Any | None, task: str, llm_budget: int = 0,
                  per_trial: int = LLM_CALLS_PER_TRIAL) -> SurrogateSampler:
    """``llm_budget`` caps the tuner's LLM calls over the history the sampler sees."""
    if llm is None or llm_budget <= 0:
        return SurrogateSampler()
    meter = LLMMeter(llm)
    generator = MixedGenerator([(LLMGenerator(meter, task), 0.01), (LocalGenerator(), 1.0)])
    surrogates = [GPSurrogate(), LLMSurrogate(meter, task)]
    return SurrogateSampler(generator, surrogates, meter=meter, llm_budget=llm_budget,
                            llm_calls_per_trial=per_trial)
