"""The LLM client: typed, validated, retried, recorded completions.

``LLM.complete(messages, ResponseModel)`` returns a validated pydantic object or raises
``LLMOutputError``; transport lives in small backends (``OpenAIBackend`` in
``openai_backend.py`` for any OpenAI-compatible server, ``ReplayBackend`` for recorded runs).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from tenacity import wait_random_exponential

from hyperpilot.agents.llm.openai_backend import LOCAL_KEY, OpenAIBackend
from hyperpilot.agents.llm.secrets import redact
from hyperpilot.agents.llm.transcript import ChatReply, ReplayBackend, Transcript
from hyperpilot.tools.errors import (
    BudgetExceeded,
    LLMOutputError,
    LLMUnavailableError,
    NoLogprobsError,
    TaskSpecError,
)

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

DEFAULT_MODEL = "gpt-4o-mini"
_FENCE = re.compile(r"```[A-Za-z0-9_-]*\s*\n?(.*?)```", re.DOTALL)


class ChatBackend(Protocol):
    """Transport only: send messages, return the reply text and token counts."""

    name: str

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        schema: dict[str, Any] | None,
        schema_name: str,
        settings: dict[str, Any],
    ) -> ChatReply: ...


class LLMClient(Protocol):
    """What agents receive: typed completions plus a running usage count."""

    usage: Usage

    def complete(
        self,
        messages: list[dict[str, str]],
        response_model: type[T],
        *,
        agent: str = "",
        **settings: Any,
    ) -> T: ...


class Usage(BaseModel):
    """Totals over every call one ``LLM`` made, invalid and failed ones included."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    invalid_replies: int = 0
    failures: int = 0
    backend: str = ""
    server_start_seconds: float = 0.0  # a local server's start-ups, kept out of ``seconds``
    structured_output: str = ""  # the dialect the server answered in: see OpenAIBackend

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        """The totals plus seconds per call and completion tokens per second of call time
        (end to end: prompt processing included), as written to ``result.json``."""
        rates = {
            "seconds_per_call": round(self.seconds / self.calls, 3) if self.calls else None,
            "tokens_per_second": (round(self.completion_tokens / self.seconds, 2)
                                  if self.seconds > 0 and self.completion_tokens else None),
        }
        return self.model_dump() | rates


# --- parsing -------------------------------------------------------------------------


def extract_json(text: str) -> str:
    """The JSON part of a reply: inside a code fence, or the first object in prose."""
    fenced = _FENCE.search(text)
    candidate = (fenced.group(1) if fenced else text).strip()
    try:
        json.loads(candidate)
        return candidate
    except ValueError:
        pass
    starts = [i for i in (candidate.find("{"), candidate.find("[")) if i >= 0]
    if not starts:
        return candidate
    try:
        _, end = json.JSONDecoder().raw_decode(candidate, min(starts))
    except ValueError:
        return candidate
    return candidate[min(starts) : end]


def parse_reply(text: str, response_model: type[T]) -> T:
    """Validate a reply against ``response_model``; raises ``ValidationError``."""
    return response_model.model_validate_json(extract_json(text))


def describe_validation_error(err: ValidationError, limit: int = 5) -> str:
    """A few lines naming each bad field, without echoing the whole input."""
    lines = []
    for item in err.errors(include_url=False)[:limit]:
        where = ".".join(str(part) for part in item["loc"]) or "reply"
        lines.append(f"{where}: {item['msg']}")
    if err.error_count() > limit:
        lines.append(f"... and {err.error_count() - limit} more")
    return "; ".join(lines)


def _reask(reply: str, error: str) -> list[dict[str, str]]:
    return [
        {"role": "assistant", "content": reply},
        {
            "role": "user",
            "content": (
                f"That reply does not match the required JSON schema: {error}\n"
                "Answer again with only a JSON object that matches the schema."
            ),
        },
    ]


# --- the client ----------------------------------------------------------------------


class LLM:
    """Typed completions over a ``ChatBackend``: redact secrets from replies, validate,
    re-ask, record, keep budget."""

    def __init__(
        self,
        backend: ChatBackend,
        *,
        transcript: Transcript | None = None,
        max_reasks: int = 2,
        token_budget: int | None = None,
    ) -> None:
        self.backend = backend
        self.transcript = transcript if transcript is not None else Transcript(None)
        self.max_reasks = max_reasks
        self.token_budget = token_budget
        self.usage = Usage(backend=getattr(backend, "name", ""))
        self.unavailable = ""  # why the backend failed; later calls fail fast, unrecorded
        self._lock = threading.Lock()

    def complete(
        self,
        messages: list[dict[str, str]],
        response_model: type[T],
        *,
        agent: str = "",
        **settings: Any,
    ) -> T:
        """Ask until the reply validates as ``response_model``, re-asking with the error.

        Raises ``LLMOutputError`` (with ``raw``) when it never does, ``BudgetExceeded``
        when the token budget is spent, and ``LLMUnavailableError`` from the backend.
        """
        return self._complete(messages, response_model, agent, settings)[0]

    def complete_with_logprobs(
        self,
        messages: list[dict[str, str]],
        response_model: type[T],
        *,
        top_logprobs: int = 5,
        agent: str = "",
        **settings: Any,
    ) -> tuple[T, list[dict[str, Any]]]:
        """``complete`` plus the valid reply's token log-probabilities (each token with its
        ``top_logprobs`` alternatives); ``LLMOutputError`` when the server returns none."""
        settings = {**settings, "logprobs": True, "top_logprobs": top_logprobs}
        result, reply = self._complete(messages, response_model, agent, settings)
        if not reply.logprobs:
            raise NoLogprobsError(f"{agent or response_model.__name__}: the server returned no "
                                  "token log-probabilities", raw=reply.text)
        return result, reply.logprobs

    def _complete(
        self,
        messages: list[dict[str, str]],
        response_model: type[T],
        agent: str,
        settings: dict[str, Any],
    ) -> tuple[T, ChatReply]:
        schema = response_model.model_json_schema()
        schema_name = response_model.__name__
        settings = {"temperature": 0, **settings}
        conversation = list(messages)
        text, error = "", ""
        for _ in range(self.max_reasks + 1):
            self._check_budget()
            reply, seconds = self._chat(conversation, schema, schema_name, settings, agent)
            text = reply.text
            try:
                result = parse_reply(text, response_model)
            except ValidationError as err:
                error = describe_validation_error(err)
                self._record(agent, schema_name, conversation, settings, reply, seconds, error)
                if reply.truncated:
                    # Cut off at the reply cap: asking again only repeats the same long answer.
                    raise LLMOutputError(f"{agent or schema_name}: the reply ran past the "
                                         f"token cap and was cut off ({error[:200]})",
                                         raw=text) from None
                conversation += _reask(text, error)
                continue
            self._record(agent, schema_name, conversation, settings, reply, seconds, "")
            return result, reply
        tries = self.max_reasks + 1
        raise LLMOutputError(
            f"{agent or schema_name}: invalid output after {tries} tries: {error[:300]}", raw=text
        )

    def close(self) -> None:
        """Release what the backend holds (a local server process); safe to call twice."""
        close = getattr(self.backend, "close", None)
        if callable(close):
            close()

    def _check_budget(self) -> None:
        if self.token_budget is not None and self.usage.total_tokens >= self.token_budget:
            raise BudgetExceeded(
                f"LLM token budget spent: {self.usage.total_tokens} of {self.token_budget} tokens"
            )

    def _chat(
        self,
        conversation: list[dict[str, str]],
        schema: dict[str, Any],
        schema_name: str,
        settings: dict[str, Any],
        agent: str,
    ) -> tuple[ChatReply, float]:
        if self.unavailable:
            # One outage, one wait: the remaining agents fall back at once instead of each
            # spending the backend's full retry schedule.
            raise LLMUnavailableError(f"skipped, the LLM failed earlier: {self.unavailable}")
        start = time.perf_counter()
        try:
            reply = self.backend.chat(
                list(conversation), schema=schema, schema_name=schema_name, settings=settings
            )
        except LLMUnavailableError as err:
            seconds = max(0.0, time.perf_counter() - start - self._startup_delta())
            with self._lock:
                self.usage.failures += 1
                self.usage.seconds += seconds
                if getattr(err, "lasting", True):
                    self.unavailable = str(err)
            self.transcript.write(
                _record(agent, schema_name, conversation, settings, ChatReply(text=""), seconds)
                | {"valid": False, "error": str(err), "failed": True}
            )
            raise
        # A server may echo what it was sent, key included; nothing after this point (the
        # parsed answer, a re-ask, LLMOutputError.raw, the report) sees the raw text.
        text = redact(reply.text)
        if text != reply.text:
            reply = reply.model_copy(update={"text": text})
        return reply, max(0.0, time.perf_counter() - start - self._startup_delta())

    def _startup_delta(self) -> float:
        """Seconds the backend spent starting a server since the last look (0 for others)."""
        total = float(getattr(self.backend, "startup_seconds", 0.0))
        with self._lock:
            delta = total - self.usage.server_start_seconds
            self.usage.server_start_seconds = total
        return max(0.0, delta)

    def _record(
        self,
        agent: str,
        schema_name: str,
        conversation: list[dict[str, str]],
        settings: dict[str, Any],
        reply: ChatReply,
        seconds: float,
        error: str,
    ) -> None:
        with self._lock:
            self.usage.calls += 1
            self.usage.prompt_tokens += reply.prompt_tokens
            self.usage.completion_tokens += reply.completion_tokens
            self.usage.seconds += seconds
            self.usage.invalid_replies += bool(error)
            self.usage.structured_output = str(getattr(self.backend, "dialect", ""))
        record = _record(agent, schema_name, conversation, settings, reply, seconds)
        self.transcript.write(record | {"valid": not error, "error": error})


def _record(
    agent: str,
    schema_name: str,
    conversation: list[dict[str, str]],
    settings: dict[str, Any],
    reply: ChatReply,
    seconds: float,
) -> dict[str, Any]:
    return {
        "agent": agent,
        "schema_name": schema_name,
        "messages": conversation,
        "settings": settings,
        "reply": reply.text,
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "seconds": round(seconds, 4),
    } | ({"logprobs": reply.logprobs} if reply.logprobs is not None else {}) \
      | ({"truncated": True} if reply.truncated else {})


# --- choosing a backend --------------------------------------------------------------


LLM_ENV = "HYPERPILOT_LLM"
_SCHEMES = ("openai", "replay", "local")


def default_llm_spec(env: Mapping[str, str]) -> tuple[str, str]:
    """What ``--llm`` means when it is not given, as ``(spec, why)``.

    ``$HYPERPILOT_LLM`` if set; else the configured server when ``OPENAI_BASE_URL`` or
    ``OPENAI_API_KEY`` is set; else the embedded local model when the ``[local]`` extra is
    installed; else none (rule-based policies).
    """
    from hyperpilot.agents.llm.local_server import extra_installed

    if env.get(LLM_ENV):
        return env[LLM_ENV], f"from ${LLM_ENV}"
    if env.get("OPENAI_BASE_URL") or env.get("OPENAI_API_KEY"):
        model = env.get("HYPERPILOT_MODEL") or env.get("OPENAI_MODEL") or DEFAULT_MODEL
        return f"openai:{model}", "OPENAI_BASE_URL or OPENAI_API_KEY is set"
    if extra_installed():
        return "local", "no server configured; the [local] extra is installed"
    return "none", "no server configured and the [local] extra is not installed"


def parse_llm_spec(spec: str | None, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``--llm`` as ``(scheme, arg)``: ``none``, ``("openai", MODEL)``, ``("replay", PATH)`` or
    ``("local", MODEL)`` (MODEL empty for the default local model).

    ``None`` means the default that ``default_llm_spec`` chooses.
    """
    env = os.environ if env is None else env
    if spec is None:
        spec = default_llm_spec(env)[0]
    scheme, _, argument = spec.strip().partition(":")
    scheme, argument = scheme.strip().lower(), argument.strip()
    if scheme in ("none", "local") and not argument:
        return scheme, ""
    if scheme in ("openai", "replay") and not argument:
        what = "MODEL" if scheme == "openai" else "PATH"
        raise TaskSpecError(f"--llm {scheme}:{what} needs a {what.lower()}, got {spec!r}")
    if scheme in _SCHEMES:
        return scheme, argument
    raise TaskSpecError(
        f"unknown --llm {spec!r}; use none, openai:MODEL, local[:MODEL] or replay:PATH")


def _local_client(base_url: str, alias: str) -> OpenAIBackend:
    # A CPU model can take minutes on a long prompt; a refused connection means a crash,
    # which the local backend handles, so one quick retry is enough.
    return OpenAIBackend(alias, base_url=base_url, api_key=LOCAL_KEY, timeout=600.0,
                         max_attempts=2, wait=wait_random_exponential(multiplier=0.2, max=1))


def make_llm(
    spec: str | None,
    *,
    transcript_path: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[LLM | None, str]:
    """The ``LLM`` that ``--llm spec`` names (or ``None``) and a line describing it.

    ``local`` resolves the engine and the verified model now (``LocalLLMError`` names the
    install command when either is missing); its server starts on the first call and stops
    on ``LLM.close()``.
    """
    env = os.environ if env is None else env
    scheme, argument = parse_llm_spec(spec, env)
    why = f" [default: {default_llm_spec(env)[1]}]" if spec is None else ""
    if scheme == "none":
        return None, "none (rule-based policies)" + why
    backend: ChatBackend
    if scheme == "replay":
        path = Path(argument).expanduser()
        if not path.is_file():
            raise TaskSpecError(f"--llm replay: transcript {path} does not exist")
        backend = ReplayBackend(path)
    elif scheme == "local":
        from hyperpilot.agents.llm.local_server import local_backend

        backend = local_backend(argument, _local_client, env)
    else:
        backend = OpenAIBackend(argument, env=env)
    return LLM(backend, transcript=Transcript(transcript_path)), backend.name + why
