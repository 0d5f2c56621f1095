"""Prompt templates as files, rendered with Jinja2 and ``StrictUndefined``."""

from __future__ import annotations

from functools import cache, lru_cache
from importlib import resources
from typing import Any

from jinja2 import Environment, StrictUndefined, Template


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson_compact"] = _compact_json
    env.filters["data_text"] = data_text
    return env


def data_text(value: Any, cap: int = 60) -> str:
    """Text from the user's data (a column name, a cell) as it may enter a prompt: cut to
    ``cap`` characters and quoted as a JSON string, so a newline or a quote in it cannot
    forge a line of the prompt."""
    import json

    text = str(value)
    return json.dumps(text if len(text) <= cap else text[:cap - 3] + "...")


def _compact_json(value: Any) -> str:
    import json

    return json.dumps(value, default=str, separators=(", ", ": "))


@cache
def _template(name: str) -> Template:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return _environment().from_string(text)


def render(name: str, **variables: Any) -> str:
    """Render the template file ``name`` (e.g. ``"request.j2"``); a missing variable raises."""
    return _template(name).render(**variables).strip()
