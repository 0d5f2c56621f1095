"""The intent agent: what a chat message asks for, as a typed ``Intent``.

The LLM policy reads the message with the conversation's context; the rule-based policy
(the fallback, and the whole policy without an LLM) matches words and patterns.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from hyperpilot.agents.request import find_metric, match_column
from hyperpilot.agents.runner import AgentSpec, Decision, decide

IntentKind = Literal["task", "correct", "run", "status", "explain", "more", "drop", "predict",
                     "help", "quit", "other"]
# Words people use for the zoo's families.
FAMILY_WORDS: dict[str, str] = {
    "gradient boost": "hist_gb", "boosting": "hist_gb", "hist_gb": "hist_gb", "xgboost": "hist_gb",
    "random forest": "random_forest", "random_forest": "random_forest", "forest": "random_forest",
    "extra trees": "extra_trees", "extra_trees": "extra_trees", "svm": "svm",
    "support vector": "svm", "linear": "linear", "logistic": "linear", "ridge": "linear",
    "knn": "knn", "nearest neighbo": "knn", "neural": "torch_mlp", "mlp": "torch_mlp",
    "torch": "torch_mlp",
}


class Intent(BaseModel):
    """A routed message. Fields other than ``kind`` are filled only when the message says them."""

    kind: IntentKind
    column: str | None = None
    trials: int | None = None
    family: str | None = None
    path: str | None = None
    question: str | None = None


INTENT_AGENT = AgentSpec(name="intent", prompt="intent.j2", output_type=Intent)


def route(text: str, columns: list[str], has_spec: bool, has_run: bool, asking: str | None,
          llm: object | None) -> Decision[Intent]:
    """Route ``text``: the LLM policy when its answer fits the facts, else the rules."""
    inputs = {"text": text, "columns": columns, "has_spec": has_spec, "has_run": has_run,
              "asking": asking, "families": sorted(set(FAMILY_WORDS.values()))}
    return decide(INTENT_AGENT, inputs, llm,  # type: ignore[arg-type]
                  accept=lambda intent: _checked(intent, columns),
                  rules=lambda: route_rules(text, columns, has_spec, has_run, asking))


def _checked(intent: Intent, columns: list[str]) -> Intent:
    if intent.column is not None:
        column = intent.column if intent.column in columns else match_column(intent.column, columns)
        if column is None:
            raise ValueError(f"'{intent.column}' is not a column")
        intent = intent.model_copy(update={"column": column})
    if intent.family is not None and intent.family not in FAMILY_WORDS.values():
        raise ValueError(f"unknown model family '{intent.family}'")
    if intent.kind == "more" and intent.trials is not None and intent.trials < 1:
        raise ValueError("more trials must be at least 1")
    return intent


def route_rules(text: str, columns: list[str], has_spec: bool, has_run: bool,
                asking: str | None) -> Intent:
    """The rule-based router, checked from the most specific request to the least."""
    lowered = " ".join(text.lower().split())
    for check in (_quit_or_help, _more, _drop, _predict, _explain, _status):
        intent = check(lowered, text, columns, has_run)
        if intent is not None:
            return intent
    if asking == "target" and (column := _mentioned_column(lowered, columns)) is not None:
        return Intent(kind="task", column=column)
    if has_spec and re.fullmatch(r"(ok(ay)?|yes|yep|go( ahead)?|run( it)?|start( it)?|do it)"
                                 r"[.! ]*(please)?[.!]*", lowered):
        return Intent(kind="run")
    if has_spec and (re.match(r"(no|not|actually|instead|rather)\b", lowered)
                     or find_metric(text)):
        return Intent(kind="correct")
    return Intent(kind="task")


def _quit_or_help(lowered: str, text: str, columns: list[str], has_run: bool) -> Intent | None:
    if re.fullmatch(r"(quit|exit|bye|goodbye)[.!]*", lowered):
        return Intent(kind="quit")
    if re.fullmatch(r"(help|\?|what can you do\??)", lowered):
        return Intent(kind="help")
    return None


def _more(lowered: str, text: str, columns: list[str], has_run: bool) -> Intent | None:
    match = re.search(r"(\d+)\s+more\s+trials?|more\s+trials|(\d+)\s+more\b", lowered)
    if not (has_run and match):
        return None
    number = match.group(1) or match.group(2)
    return Intent(kind="more", trials=int(number) if number else None, family=find_family(lowered))


def find_family(lowered: str) -> str | None:
    """The model family a phrase names ("gradient boosting" -> ``hist_gb``), or ``None``."""
    for words, family in FAMILY_WORDS.items():
        if words in lowered:
            return family
    return None


def _drop(lowered: str, text: str, columns: list[str], has_run: bool) -> Intent | None:
    match = re.search(r"\b(?:without|drop|leave out|remove|exclude)\s+(?:the\s+)?"
                      r"(?:column\s+)?['\"`]?([^'\"`]+?)['\"`]?(?:\s+column)?\s*[.!?]?$", lowered)
    if not (has_run and match):
        return None
    column = _mentioned_column(match.group(1), columns) or match.group(1)
    return Intent(kind="drop", column=column)


def _predict(lowered: str, text: str, columns: list[str], has_run: bool) -> Intent | None:
    match = re.search(r"(\S+\.(?:csv|tsv|txt|parquet|pq))\b", text)
    if has_run and match and re.search(r"\bpredict|\bscore|\bapply", lowered):
        return Intent(kind="predict", path=match.group(1))
    return None


def _explain(lowered: str, text: str, columns: list[str], has_run: bool) -> Intent | None:
    if has_run and re.search(r"\b(why|explain|how (good|well)|what (was|did you) tr|which "
                             r"features?|features? (matter|important)|importan|holdout|"
                             r"compare|overfit|won|winner|best model)", lowered):
        return Intent(kind="explain", question=text.strip())
    return None


def _status(lowered: str, text: str, columns: list[str], has_run: bool) -> Intent | None:
    if re.search(r"\b(status|progress|where are we|how far)\b", lowered):
        return Intent(kind="status")
    return None


def _mentioned_column(lowered: str, columns: list[str]) -> str | None:
    matched = match_column(lowered.strip(" .!?'\"`"), columns)
    if matched is not None:
        return matched
    for column in sorted(columns, key=len, reverse=True):
        if re.search(rf"(?<![\w]){re.escape(column.lower())}(?![\w])", lowered):
            return column
    return None
