"""Secrets kept out of every output: one ``redact`` for reply text, records and log lines.

A secret is the value of an environment variable named like a credential (``OPENAI_API_KEY``
and any other ``*_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*_PASSWORD``), a key a backend was
handed directly (``remember_secret``), or a string shaped like one: an ``sk-`` style key, a
``Bearer`` token, a long random token after ``api_key=`` or ``key:``, a password in a URL.
``install_log_redaction()`` applies the same rule to log records and warnings.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"
_SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
_MIN_LENGTH = 7  # shorter values are too likely to occur in ordinary text
_TOKEN = r"[A-Za-z0-9._~+/=-]"
_SHAPES = (
    re.compile(r"\bsk-[A-Za-z0-9_-]{10,}"),  # OpenAI and Anthropic keys
    re.compile(r"\b(?:hf|ghp|gho|ghs|ghu|github_pat)_[A-Za-z0-9_]{20,}"),
    re.compile(rf"(?i)(?<=\bbearer ){_TOKEN}+"),
    re.compile(r"(?<=://)[^\s/:@\"',]+:[^\s/@\"',]+(?=@)"),  # user:password@host
)
# A label such as api_key, x-api-key, access_token or secret, then = or :, then the value.
_LABELLED = re.compile(
    r"(?i)(?<![a-z0-9])((?:api|access|auth|client|secret|private)?[_-]?(?:key|token|secret|password))"
    rf"([\"']?\s*[:=]\s*[\"']?)({_TOKEN}{{16,}})"
)
# Packages whose loggers may quote requests and responses: the HTTP clients (httpx2 and
# httpcore2 are what openai 3.x uses), and tenacity. Then this package.
_LOGGER_PACKAGES = ("openai", "httpx", "httpx2", "httpcore", "httpcore2", "tenacity", "hyperpilot")
_remembered: set[str] = set()
_lock = threading.Lock()


def remember_secret(value: str | None) -> None:
    """Treat ``value`` (a key passed in code rather than through the environment) as secret
    for the rest of the process."""
    if value and len(value) >= _MIN_LENGTH:
        with _lock:
            _remembered.add(value)


def secrets_from_env(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables that look like credentials, longest first."""
    env = os.environ if env is None else env
    found = {value for name, value in env.items()
             if name.upper().endswith(_SECRET_SUFFIXES) and len(value) >= _MIN_LENGTH}
    return sorted(found, key=len, reverse=True)


def known_secrets(extra: Iterable[str] = ()) -> list[str]:
    """Every secret value to hide: the environment's, remembered ones and ``extra``."""
    with _lock:
        found = set(_remembered)
    found |= {value for value in extra if value and len(value) >= _MIN_LENGTH}
    # Longest first, so a secret that contains another is replaced whole.
    return sorted(found | set(secrets_from_env()), key=len, reverse=True)


def _labelled(match: re.Match[str]) -> str:
    value = match.group(3)
    if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return match.group(0)  # a word such as a parameter name, not a random token
    return match.group(1) + match.group(2) + REDACTED


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    for pattern in _SHAPES:
        text = pattern.sub(REDACTED, text)
    return _LABELLED.sub(_labelled, text)


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with every known secret (see ``known_secrets``) and key-shaped string
    replaced by ``[REDACTED]``."""
    return _scrub(text, known_secrets(extra))


def redact_tree(value: Any, extra: Iterable[str] = ()) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with ``redact`` applied to every string."""
    secrets = known_secrets(extra)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return _scrub(item, secrets)
        if isinstance(item, dict):
            return {key: walk(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [walk(inner) for inner in item]
        return item

    return walk(value)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, traceback and stack with ``redact``; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it itself when it formats
            return True
        secrets = known_secrets()
        clean = _scrub(message, secrets)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _scrub(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = _scrub(record.stack_info, secrets)
        return True


_FILTER = RedactingFilter()


def install_log_redaction() -> RedactingFilter:
    """Redact secrets from every log line and warning this process writes; safe to call again.

    Call it after the handlers are set up (``logging.basicConfig``): the filter goes on the
    root logger's handlers and on logging's last-resort handler, which every propagated
    record passes, and on the loggers that exist now of this package, the HTTP clients and
    tenacity, so that a handler added later sees their records redacted too (a logger's
    filter sees only records made on that very logger). Warnings are formatted through
    ``redact``.
    """
    root = logging.getLogger()
    handlers = [*root.handlers, *([logging.lastResort] if logging.lastResort else [])]
    names = {*_LOGGER_PACKAGES, *(name for name in list(root.manager.loggerDict)
                                  if name.split(".")[0] in _LOGGER_PACKAGES)}
    for name in names:
        logger = logging.getLogger(name)
        logger.addFilter(_FILTER)  # addFilter ignores a filter it already has
        handlers += logger.handlers
    for handler in handlers:
        handler.addFilter(_FILTER)
    _redact_warnings()
    return _FILTER


def _redact_warnings() -> None:
    original = warnings.formatwarning
    if getattr(original, "redacts", False):
        return

    def formatwarning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, line: str | None = None) -> str:
        return redact(original(message, category, filename, lineno, line))

    formatwarning.redacts = True  # type: ignore[attr-defined]
    warnings.formatwarning = formatwarning
