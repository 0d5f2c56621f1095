"""LLM-assisted benchmark methods: the tuner with a real LLM (``--llm``), and with a
deliberately uninformative one that shows the trust gate at work without any server."""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
from pydantic import BaseModel

from hyperpilot.agents.llm import Usage
from hyperpilot.agents.tuner.factory import tuner_sampler
from hyperpilot.pipelines.bench_methods import MethodUnavailable, Runner, Trace, run_sampler
from hyperpilot.pipelines.bench_tasks import BenchTask
from hyperpilot.tools.types import Config

LLM_SPEC_ENV = "HYPERPILOT_BENCH_LLM"  # how --llm reaches the worker processes
LLM_BUDGET_ENV = "HYPERPILOT_BENCH_LLM_BUDGET"
DEFAULT_BUDGET = 100


class NoiseLLM:
    """An ``LLMClient`` that answers score predictions with random numbers and proposes
    nothing: the worst an LLM can do without breaking the protocol."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.usage = Usage()

    def complete(self, messages: list[dict[str, str]], response_model: type[BaseModel], *,
                 agent: str = "", **settings: Any) -> Any:
        prompt = messages[-1]["content"]
        self.usage.calls += 1
        self.usage.prompt_tokens += len(prompt) // 4
        if "in order:" not in prompt:
            return response_model.model_validate({"configs": []})
        count = len(re.findall(r"^\d+\. ", prompt.split("in order:")[1], flags=re.M))
        return response_model.model_validate({"scores": self.rng.uniform(0, 1, count).tolist()})


def task_text(task: BenchTask) -> str:
    kind = "regression, score = negative MSE on standardised y" if task.regression else \
        "classification, score = accuracy"
    return (f"tune a scikit-learn {task.model} on the {task.dataset} dataset "
            f"({len(task.y)} training rows, {task.X.shape[1]} numeric features; {kind}; "
            "5-fold cross-validation)")


def _budget() -> int:
    return int(os.environ.get(LLM_BUDGET_ENV, DEFAULT_BUDGET))


def noise_llm_method(task: BenchTask, initial: list[Config], n_trials: int, seed: int) -> Trace:
    sampler = tuner_sampler(NoiseLLM(seed), task_text(task), _budget())
    return run_sampler(sampler, task, initial, n_trials, seed)


def llm_method(task: BenchTask, initial: list[Config], n_trials: int, seed: int) -> Trace:
    from hyperpilot.agents.llm import make_llm

    spec = os.environ.get(LLM_SPEC_ENV, "")
    if not spec or spec == "none":
        raise MethodUnavailable("no LLM given; pass --llm openai:MODEL or --llm replay:PATH")
    llm, _ = make_llm(spec)
    sampler = tuner_sampler(llm, task_text(task), _budget())
    return run_sampler(sampler, task, initial, n_trials, seed)


def local_model_method(task: BenchTask, initial: list[Config], n_trials: int, seed: int) -> Trace:
    raise MethodUnavailable(
        "no local model is available on this install (the llama.cpp backend is not here yet); "
        "point --llm openai:MODEL at a local OpenAI-compatible server to run 'llambo'")


LLM_METHODS: dict[str, Runner] = {
    "surrogate-noise-llm": noise_llm_method,
    "llambo": llm_method,
    "llambo-local": local_model_method,
}
