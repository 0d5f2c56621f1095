"""The LLM client: typed, validated, retried, recorded completions.

``LLM.complete(messages, ResponseModel)`` returns a validated pydantic object or raises
``LLMOutputError``; transport lives in small backends (``OpenAIBackend`` for any
OpenAI-compatible server, ``ReplayBackend`` for recorded runs). This is the only module
that imports ``openai``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlparse

import openai
from pydantic import BaseModel, ValidationError
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from hyperpilot.agents.transcript import (
    ChatReply,
    ReplayBackend,
    Transcript,
    redact,
)
from hyperpilot.tools.errors import (
    BudgetExceeded,
    LLMOutputError,
    LLMUnavailableError,
    NoLogprobsError,
    TaskSpecError,
)

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

NO_NETWORK_ENV = "HYPERPILOT_NO_NETWORK"
DEFAULT_MODEL = "gpt-4o-mini"
OPENAI_URL = "https://api.openai.com/v1"
# Local servers (vLLM, llama.cpp, Ollama) ignore the key, but the client wants one.
_LOCAL_KEY = "not-needed"
_STATUS_PREFIX = re.compile(r"^Error code: \d+( - )?")
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


# --- backends ------------------------------------------------------------------------


def _is_transient(err: BaseException) -> bool:
    if isinstance(err, openai.APIConnectionError | openai.RateLimitError):
        return True  # APITimeoutError is an APIConnectionError
    return isinstance(err, openai.APIStatusError) and err.status_code >= 500


# Structured-output dialects, strictest first: the schema enforced by the server, the schema
# inside a json_object request (llama-cpp-python), any JSON object, then no response_format at
# all. Every dialect past the first also spells the schema out in the prompt, and LLM.complete
# validates and re-asks whatever comes back.
DIALECTS = ("json_schema", "json_object+schema", "json_object", "plain")
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "schema", "grammar")


def _rejects_format(err: openai.APIStatusError) -> bool:
    """Whether the server refused the response format (some answer 500 rather than 400)."""
    text = f"{err.message} {err.body}".lower()
    return err.status_code in (400, 422, 500, 501) and any(w in text for w in _FORMAT_WORDS)


def _response_format(dialect: str, schema_name: str, schema: dict[str, Any]) -> dict[str, Any]:
    if dialect == "json_schema":
        spec = {"name": schema_name, "schema": schema, "strict": False}
        return {"response_format": {"type": "json_schema", "json_schema": spec}}
    if dialect == "json_object+schema":
        return {"response_format": {"type": "json_object", "schema": schema}}
    if dialect == "json_object":
        return {"response_format": {"type": "json_object"}}
    return {}


def _schema_hint(messages: list[dict[str, str]], schema: dict[str, Any]) -> list[dict[str, str]]:
    """``messages`` with the schema spelled out, for servers that only take json_object."""
    hint = "Answer with one JSON object that follows this JSON schema:\n" + json.dumps(schema)
    # Many chat templates accept a system message only in first place.
    if messages and messages[0].get("role") == "system":
        first = {**messages[0], "content": f"{messages[0]['content']}\n\n{hint}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": hint}, *messages]


class OpenAIBackend:
    """Any OpenAI-compatible chat server, retried with jittered backoff on transient errors.

    The ``openai`` client is made on the first call. ``api_key`` and ``base_url`` default
    to ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` in ``env`` (the process environment).
    ``wait`` is the tenacity wait between attempts (tests pass ``wait_none()``). Every
    failure that retries cannot fix becomes ``LLMUnavailableError`` with one line (status
    and message, never the key).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_attempts: int = 4,
        http_client: Any = None,
        wait: wait_base | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.model = model
        self.base_url = base_url or env.get("OPENAI_BASE_URL") or None
        self._api_key = api_key or env.get("OPENAI_API_KEY") or None
        if self._api_key is None and self.base_url is not None:
            self._api_key = _LOCAL_KEY
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.wait = wait if wait is not None else wait_random_exponential(multiplier=0.5, max=20)
        self.name = f"openai:{model} at {self.base_url or OPENAI_URL}"
        self._http_client = http_client
        self._client: openai.OpenAI | None = None
        self.dialect = DIALECTS[0]
        self._lock = threading.Lock()

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        schema: dict[str, Any] | None,
        schema_name: str,
        settings: dict[str, Any],
    ) -> ChatReply:
        retrying = Retrying(
            retry=retry_if_exception(_is_transient),
            wait=self.wait,
            stop=stop_after_attempt(self.max_attempts),
            before_sleep=before_sleep_log(logger, logging.WARNING),
            reraise=True,
        )
        try:
            response = retrying(self._create, messages, schema, schema_name, settings)
        except openai.APIError as err:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise LLMUnavailableError(self._describe(err, attempts)) from err
        usage = response.usage
        return ChatReply(
            text=(response.choices[0].message.content or "") if response.choices else "",
            prompt_tokens=(usage.prompt_tokens or 0) if usage else 0,
            completion_tokens=(usage.completion_tokens or 0) if usage else 0,
            logprobs=_token_logprobs(response),
            truncated=bool(response.choices) and response.choices[0].finish_reason == "length",
        )

    def _create(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any] | None,
        schema_name: str,
        settings: dict[str, Any],
    ) -> Any:
        create = self._get_client().chat.completions.create
        kwargs: dict[str, Any] = {**settings, "model": self.model, "messages": messages}
        if schema is None:
            return create(**kwargs)
        hinted = _schema_hint(messages, schema)
        while True:
            dialect = self.dialect
            request = kwargs | {"messages": messages if dialect == "json_schema" else hinted}
            try:
                return create(**request | _response_format(dialect, schema_name, schema))
            except openai.APIStatusError as err:
                if dialect == DIALECTS[-1] or not _rejects_format(err):
                    raise
                self._demote(dialect)

    def _demote(self, dialect: str) -> None:
        """Move to the next dialect after ``dialect`` was refused, and remember it."""
        with self._lock:
            if self.dialect == dialect:
                self.dialect = DIALECTS[DIALECTS.index(dialect) + 1]
        logger.info("%s refuses %s output; using %s from now on", self.name, dialect, self.dialect)

    def _get_client(self) -> openai.OpenAI:
        if (self._http_client is None and os.environ.get(NO_NETWORK_ENV) == "1"
                and not is_loopback(self.base_url)):
            raise LLMUnavailableError(f"network access is disabled ({NO_NETWORK_ENV}=1)")
        if self._api_key is None:
            raise LLMUnavailableError(
                f"{self.name}: no API key; set OPENAI_API_KEY "
                "(or OPENAI_BASE_URL for a local server)"
            )
        with self._lock:
            if self._client is None:
                self._client = openai.OpenAI(
                    api_key=self._api_key,
                    base_url=self.base_url,
                    max_retries=0,
                    timeout=self.timeout,
                    http_client=self._http_client,
                )
            return self._client

    def _describe(self, err: openai.APIError, attempts: int) -> str:
        message = _STATUS_PREFIX.sub("", " ".join(str(err.message).split()))[:200]
        if isinstance(err, openai.APIStatusError):
            line = f"{self.name}: HTTP {err.status_code}: {message}"
        else:
            line = f"{self.name}: {message}"
        if attempts > 1:
            line += f" (after {attempts} attempts)"
        return redact(line, [self._api_key] if self._api_key else [])


def _token_logprobs(response: Any) -> list[dict[str, Any]] | None:
    """The reply's token log-probabilities, when the request asked for them."""
    choice = response.choices[0] if response.choices else None
    tokens = getattr(getattr(choice, "logprobs", None), "content", None)
    if not tokens:
        return None
    return [{"token": t.token, "logprob": t.logprob,
             "top": [[a.token, a.logprob] for a in (t.top_logprobs or [])]} for t in tokens]


def is_loopback(url: str | None) -> bool:
    """Whether ``url`` names this machine (127.0.0.0/8, ::1, localhost): never the network."""
    host = (urlparse(url).hostname or "") if url else ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


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
    """Typed completions over a ``ChatBackend``: validate, re-ask, record, keep budget."""

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
                self.unavailable = str(err)
            self.transcript.write(
                _record(agent, schema_name, conversation, settings, ChatReply(text=""), seconds)
                | {"valid": False, "error": str(err), "failed": True}
            )
            raise
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
    from hyperpilot.agents.local_llm import extra_installed

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
    return OpenAIBackend(alias, base_url=base_url, api_key=_LOCAL_KEY, timeout=600.0,
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
        from hyperpilot.agents.local_llm import local_backend

        backend = local_backend(argument, _local_client, env)
    else:
        backend = OpenAIBackend(argument, env=env)
    return LLM(backend, transcript=Transcript(transcript_path)), backend.name + why
