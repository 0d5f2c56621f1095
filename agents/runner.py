"""Agents are data; running one is a function.

An ``AgentSpec`` names the prompt and the output type. ``decide`` runs the LLM policy
when an LLM is given and its answer survives the caller's checks, and the rule-based
policy otherwise, saying which one decided and why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from hyperpilot.agents.llm.deadline import TimeBudgetExceeded
from hyperpilot.prompts import render
from hyperpilot.tools.errors import (
    BudgetExceeded,
    HyperpilotError,
    LLMOutputError,
    LLMUnavailableError,
)

if TYPE_CHECKING:
    from hyperpilot.agents.llm import LLMClient

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")


@dataclass(frozen=True)
class AgentSpec(Generic[T]):
    """What an agent is: a name, a prompt template, an output type and call settings."""

    name: str
    prompt: str
    output_type: type[T]
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision(Generic[R]):
    """A decision and where it came from: ``"llm"`` or ``"rules"`` (with the reason)."""

    value: R
    source: str
    note: str = ""


def run_agent(spec: AgentSpec[T], inputs: Mapping[str, Any], llm: LLMClient) -> T:
    """Render the agent's prompt with ``inputs`` and return the LLM's validated answer."""
    messages = [
        {"role": "system", "content": render("system.j2", agent=spec.name)},
        {"role": "user", "content": render(spec.prompt, **inputs)},
    ]
    return llm.complete(messages, spec.output_type, agent=spec.name, **dict(spec.settings))


def decide(spec: AgentSpec[T], inputs: Mapping[str, Any], llm: LLMClient | None,
           accept: Callable[[T], R], rules: Callable[[], R]) -> Decision[R]:
    """The LLM policy when it answers acceptably, else the rule-based policy (a fallback).

    ``accept`` turns the LLM's answer into the decision and raises ``ValueError`` or a
    ``HyperpilotError`` when the answer does not hold against the facts.
    """
    if llm is None:
        return Decision(rules(), "rules")
    try:
        answer = run_agent(spec, inputs, llm)
        return Decision(accept(answer), "llm")
    except TimeBudgetExceeded as err:
        reason = str(err)
    except BudgetExceeded as err:
        reason = f"LLM token budget spent ({err})"
    except LLMOutputError as err:
        reason = f"invalid LLM output ({err})"
    except LLMUnavailableError as err:
        reason = f"LLM unavailable ({err})"
    except (HyperpilotError, ValueError) as err:
        reason = f"LLM answer rejected: {err}"
    except Exception as err:  # an answer that breaks the checks themselves (1e999, a wrong type)
        reason = f"LLM answer rejected: {type(err).__name__}: {err}"
    log.warning("%s: falling back to rules: %s", spec.name, reason)
    return Decision(rules(), "rules (fallback)", reason)
