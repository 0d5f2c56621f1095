"""The transport to any OpenAI-compatible chat server (OpenAI, llama-server, vLLM, Ollama):
retries, structured-output dialects, token log-probabilities, and the no-network guard.
This is the only module that imports ``openai``, and only when a call is made: a run with
``--llm none`` never pays the seconds of its import. ``LLM`` in ``client.py`` sits on top of it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from hyperpilot.agents.llm.deadline import seconds_left_for_call
from hyperpilot.agents.llm.secrets import install_log_redaction, redact, remember_secret
from hyperpilot.agents.llm.transcript import ChatReply
from hyperpilot.tools.errors import LLMUnavailableError

if TYPE_CHECKING:
    import openai

logger = logging.getLogger(__name__)

NO_NETWORK_ENV = "HYPERPILOT_NO_NETWORK"
OPENAI_URL = "https://api.openai.com/v1"
LOCAL_KEY = "not-needed"  # local servers take any key
_STATUS_PREFIX = re.compile(r"^Error code: \d+( - )?")


def _stop_at_call_deadline(state: RetryCallState) -> bool:
    """Stop retrying once the time limit's bound on this call has passed."""
    left = seconds_left_for_call()
    return left is not None and left <= 0


def _is_transient(err: BaseException) -> bool:
    import openai

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
    and message, never the key); each retry logs such a line as a warning.
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
            self._api_key = LOCAL_KEY
        if self._api_key != LOCAL_KEY:
            remember_secret(self._api_key)  # it may come from ``env`` rather than os.environ
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.wait = wait if wait is not None else wait_random_exponential(multiplier=0.5, max=20)
        self.name = redact(f"openai:{model} at {self.base_url or OPENAI_URL}")  # user:pw@host
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
        import openai

        retrying = Retrying(
            retry=retry_if_exception(_is_transient),
            wait=self.wait,
            stop=stop_after_attempt(self.max_attempts) | _stop_at_call_deadline,
            before_sleep=self._log_retry,
            reraise=True,
        )
        if (left := seconds_left_for_call()) is not None and left <= 0:
            error = LLMUnavailableError(f"{self.name}: no time left for this call")
            error.lasting = False
            raise error
        try:
            response = retrying(self._create, messages, schema, schema_name, settings)
        except openai.APIError as err:
            attempts = retrying.statistics.get("attempt_number", 1)
            bounded = isinstance(err, openai.APITimeoutError) and seconds_left_for_call() is not None
            error = LLMUnavailableError(
                f"{self.name}: no answer within the time the limit leaves for this call"
                if bounded else self._describe(err, attempts))
            # a prompt the server refuses (too long, malformed) says nothing of later ones,
            # nor does a reply cut short by the time limit
            error.lasting = not (bounded or (isinstance(err, openai.APIStatusError)
                                             and err.status_code in (400, 413, 422)))
            # The openai error quotes the response body, which a server may fill with the
            # request's headers: it goes to the (redacted) debug log, not into tracebacks.
            logger.debug("%s: %s", self.name, err, exc_info=err)
            raise error from None
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
        import openai

        create = self._get_client().chat.completions.create
        kwargs: dict[str, Any] = {**settings, "model": self.model, "messages": messages}
        left = seconds_left_for_call()
        if left is not None:  # this attempt may wait only for what the time limit leaves
            kwargs["timeout"] = max(0.5, min(self.timeout, left))
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

    def _log_retry(self, state: RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome else None
        if isinstance(err, Exception):
            sleep = state.next_action.sleep if state.next_action else 0.0
            logger.warning("%s; retrying in %.1f s (attempt %d of %d)", self._describe(err, 1),
                           sleep, state.attempt_number + 1, self.max_attempts)

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
        import openai

        with self._lock:
            if self._client is None:
                install_log_redaction()  # the HTTP clients' own logs may quote the key
                self._client = openai.OpenAI(
                    api_key=self._api_key,
                    base_url=self.base_url,
                    max_retries=0,
                    timeout=self.timeout,
                    http_client=self._http_client,
                )
            return self._client

    def _describe(self, err: BaseException, attempts: int) -> str:
        import openai

        text = str(err.message) if isinstance(err, openai.APIError) else str(err)
        # redacted before it is cut, so that no piece of a key survives the cut
        message = redact(_STATUS_PREFIX.sub("", " ".join(text.split())))[:200]
        if isinstance(err, openai.APIStatusError):
            line = f"{self.name}: HTTP {err.status_code}: {message}"
        else:
            line = f"{self.name}: {message}"
        if attempts > 1:
            line += f" (after {attempts} attempts)"
        return redact(line)


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
