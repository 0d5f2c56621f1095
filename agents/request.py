"""The request parser: task text -> a draft of the task, before the data is resolved."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from hyperpilot.agents.request_reading import (
    ColumnSummary,
    RequestReading,
    complete_reading,
    prompt_columns,
    read_request,
)
from hyperpilot.agents.runner import AgentSpec, Decision, decide
from hyperpilot.tools.evaluate import METRICS
from hyperpilot.tools.types import TaskType


class RequestDraft(BaseModel):
    """What the text says. ``None`` means the text does not say."""

    is_ml: bool
    target: str | None = None
    task_type: TaskType | Literal["classification"] | None = None
    metric: str | None = None
    positive_class: str | None = None
    max_latency_ms: float | None = None
    max_features: int | None = None
    max_model_mb: float | None = None
    interpretable: bool = False
    time_ordered: bool = False
    question: str | None = None  # set when the text cannot be read without asking back


REQUEST_AGENT = AgentSpec(name="request", prompt="request.j2", output_type=RequestDraft)

_ML_WORDS = re.compile(
    r"\b(predict\w*|classif\w*|regress\w*|forecast\w*|estimat\w*|model\w*|detect\w*|"
    r"recogni[sz]\w*|identify|which|whether|target|label\w*|churn|fraud|risk|outcome|"
    r"machine learning|ml|train\w*|learn\w*|optimi[sz]e|maximi[sz]e|minimi[sz]e|score)\b",
    re.IGNORECASE,
)
# Interpretability however it is asked: the word itself, "no black box", or a model that named
# people "can read" or "can understand".
_INTERPRETABLE = re.compile(
    r"\b(interpretab\w*|explainab\w*|transparent|white[\s-]*box|glass[\s-]*box|"
    r"no black[\s-]*box(?:es)?|not (?:a )?black[\s-]*box|"
    r"(?:that|which|the)\s+(?:\w+\s+){0,2}(?:can|could|must be able to)\s+"
    r"(?:read|understand|follow|interpret)\b)", re.IGNORECASE)
# What a feature cap counts: features, or the same thing under another name.
_INPUTS_WORD = r"(?:features|variables|inputs|columns|predictors|attributes)\b"
# Small amounts written in words, as in "under half a millisecond".
_AMOUNTS = {"a": 1.0, "one": 1.0, "half a": 0.5, "a half": 0.5, "a tenth of a": 0.1,
            "one tenth of a": 0.1, "a quarter of a": 0.25, "a quarter": 0.25, "two": 2.0,
            "three": 3.0, "five": 5.0, "ten": 10.0}
_AMOUNT_WORDS = "|".join(r"\s+".join(map(re.escape, w.split()))
                         for w in sorted(_AMOUNTS, key=len, reverse=True))
_TARGET_CUES = re.compile(r"\b(predict|classify|forecast|estimate|target|label|model|detect)\b",
                          re.IGNORECASE)
# Most specific first: "macro F1" must win over "F1", "balanced accuracy" over "accuracy".
_METRIC_PATTERNS: list[tuple[str, str]] = [
    (r"macro[\s-]*(averaged\s+)?f1|f1[\s-]*macro", "f1_macro"),
    (r"weighted[\s-]*f1|f1[\s-]*weighted", "f1_weighted"),
    (r"balanced[\s-]*accuracy", "balanced_accuracy"),
    (r"\b(roc[\s-]*)?auc\b|roc", "roc_auc"),
    (r"log[\s-]*loss|cross[\s-]*entropy", "log_loss"),
    (r"\bf1\b|f[\s-]*score|f[\s-]*measure", "f1"),
    (r"\baccuracy\b", "accuracy"),
    (r"\bprecision\b", "precision"),
    (r"\brecall\b|sensitivity", "recall"),
    (r"\br2\b|r\^2|r²|r[\s-]*squared|coefficient of determination", "r2"),
    (r"\brmse\b|root[\s-]*mean[\s-]*squared", "rmse"),
    (r"\bmae\b|mean[\s-]*absolute", "mae"),
]


def parse_request(text: str, columns: list[str], llm: object | None) -> Decision[RequestDraft]:
    """Read the task text: the LLM policy when an LLM is given, else the rules.

    The LLM's answer is accepted only when its target is a real column and its metric known.
    """
    inputs = {"text": text, "columns": prompt_columns(columns), "metrics": sorted(METRICS)}
    return decide(REQUEST_AGENT, inputs, llm,  # type: ignore[arg-type]
                  accept=lambda draft: _checked(draft, columns, parse_request_rules(text, columns)),
                  rules=lambda: parse_request_rules(text, columns))


# What the text states that an LLM's answer may not change: limits it did not state, or
# numbers for them that the text does not hold, are taken from the rules' reading.
STATED = ("max_latency_ms", "max_features", "max_model_mb", "interpretable")


def _checked(draft: RequestDraft, columns: list[str], stated: RequestDraft) -> RequestDraft:
    """The LLM's reading held against the columns and the text: a real column, a known
    metric, the constraints the text states (by the rules' reading, never invented ones nor
    out-of-range numbers), and a request the text's own words call ML stays ML."""
    draft = draft.model_copy(update={key: getattr(stated, key) for key in STATED})
    if stated.is_ml and not draft.is_ml:
        draft = draft.model_copy(update={"is_ml": True})
    if not draft.is_ml and draft.target is None and draft.metric is not None:
        raise ValueError("the answer says the request is not ML yet names a metric")
    if not draft.is_ml and draft.target is not None:
        # Small local models say "not ML" while naming a real column to predict: the column
        # is the stronger signal, and it is checked below.
        draft = draft.model_copy(update={"is_ml": True})
    if draft.target is not None and draft.target not in columns:
        matched = match_column(draft.target, columns)
        if matched is None:
            raise ValueError(f"target '{draft.target}' is not a column")
        draft = draft.model_copy(update={"target": matched})
    if draft.metric is not None and draft.metric not in METRICS:
        raise ValueError(f"unknown metric '{draft.metric}'")
    return draft


def understand_request(text: str, columns: list[ColumnSummary], llm: object | None = None,
                       declared: str | None = None,
                       chosen: str | None = None) -> Decision[RequestDraft]:
    """The reading a run uses: the rules, the LLM asked only where they are unsure.

    The LLM may settle only the target, and only with a column of the table; kind, metric
    and positive class then follow from the words and that column's data. When neither can
    tell, the draft carries a question for the user instead of a guess. ``declared`` is the
    target a bundled data set declares; it answers that question without asking. ``chosen``
    is a target the user has settled (a chat's answer to that question): kind, metric and
    positive class are then read for it.
    """
    reading = read_request(text, columns)
    source, note = "rules", ""
    if chosen is not None and chosen in [c.name for c in columns]:
        reading = complete_reading(text, columns, reading.model_copy(update={"is_ml": True}),
                                   chosen)
        return Decision(_draft_of(text, reading), "user", f"the target '{chosen}' the user chose")
    named = explicit_target(text)
    if reading.question is not None and named and match_column(named, [c.name for c in columns]) is None:
        # the text names a column the table lacks: say so rather than ask which one
        reading = reading.model_copy(update={"target": named, "question": None})
    if reading.question is not None and declared in [c.name for c in columns]:
        reading = complete_reading(text, columns, reading, str(declared))
        source, note = "rules + dataset", f"the declared target '{declared}'"
    if reading.question is not None and llm is not None:
        first = [c.column for c in reading.candidates]
        names = first + [c.name for c in columns if c.name not in first]
        asked = parse_request(text, names, llm)
        target = asked.value.target if asked.source == "llm" else None
        if target is not None and (not reading.candidates
                                   or target in [c.column for c in reading.candidates]):
            reading = complete_reading(text, columns, reading, target)
            source, note = "rules + llm", f"the LLM chose '{target}' among the candidates"
        else:
            note = asked.note or "the LLM's target is not among the candidates"
    return Decision(_draft_of(text, reading), source, note)


def _draft_of(text: str, reading: RequestReading) -> RequestDraft:
    limits = parse_request_rules(text, [])
    return limits.model_copy(update={
        "is_ml": reading.is_ml, "target": reading.target, "task_type": reading.task_type,
        "metric": reading.metric, "positive_class": reading.positive_class,
        "time_ordered": reading.time_ordered, "question": reading.question})


def parse_request_rules(text: str, columns: list[str]) -> RequestDraft:
    """The rule-based policy: keyword, metric and column matching in the text."""
    return RequestDraft(
        is_ml=bool(_ML_WORDS.search(text)) or find_metric(text) is not None,
        target=explicit_target(text) or find_target(text, columns),
        task_type=find_task_type(text),
        metric=find_metric(text),
        positive_class=_find_positive_class(text),
        max_latency_ms=_find_latency_ms(text),
        max_features=_find_max_features(text),
        max_model_mb=_find_max_model_mb(text),
        interpretable=bool(_INTERPRETABLE.search(text)),
    )


def find_metric(text: str) -> str | None:
    """The metric the text names, as a key of ``METRICS``, or ``None``."""
    for pattern, metric in _METRIC_PATTERNS:
        if re.search(pattern, text, re.IGNORECASE):
            return metric
    return None


def find_task_type(text: str) -> TaskType | Literal["classification"] | None:
    if re.search(r"\bregress\w*|\bhow (much|many)\b", text, re.IGNORECASE):
        return "regression"
    if re.search(r"\bbinary\b|\byes or no\b|\bwhether\b", text, re.IGNORECASE):
        return "binary"
    if re.search(r"\bmulti[\s-]*class\b", text, re.IGNORECASE):
        return "multiclass"
    if re.search(r"\bclassif\w*|\bcategor\w*", text, re.IGNORECASE):
        return "classification"
    return None


def _normalise(name: str) -> str:
    name = re.sub(r"\(.*?\)", " ", name)
    return " ".join(re.sub(r"[_\-.]+", " ", name).lower().split())


def match_column(phrase: str, columns: list[str]) -> str | None:
    """The column whose normalised name equals ``phrase`` (plural forms allowed), else ``None``."""
    wanted = _normalise(phrase)
    for col in columns:
        norm = _normalise(col)
        if norm and wanted in (norm, norm + "s", norm + "es") or norm == wanted.rstrip("s"):
            return col
    return None


def find_target(text: str, columns: list[str]) -> str | None:
    """The column the text asks to predict: named columns closest after a cue word win."""
    lowered = " ".join(re.sub(r"[_\-]+", " ", text).lower().split())
    hits: list[tuple[int, int, str]] = []
    for col in columns:
        norm = _normalise(col)
        if not norm:
            continue
        for variant in (norm, norm + "s", norm + "es"):
            match = re.search(rf"(?<![\w]){re.escape(variant)}(?![\w])", lowered)
            if match:
                hits.append((_cue_distance(lowered, match.start()), -len(norm), col))
                break
    if not hits:
        return None
    return min(hits)[2]


def explicit_target(text: str) -> str | None:
    """A target the text names explicitly: quoted after a cue, or after "target"/"column"."""
    quoted = re.search(r"\b(?:predict|classify|forecast|estimate|target|label|column)\s+"
                       r"(?:the\s+)?(?:column\s+)?['\"`]([^'\"`]+)['\"`]", text, re.IGNORECASE)
    if quoted:
        return quoted.group(1)
    named = re.search(r"\b(?:target|label)\s+(?:column\s+)?(?:is\s+|=\s*)?([A-Za-z_][\w.]*)",
                      text, re.IGNORECASE)
    if named and named.group(1).lower() not in ("column", "is", "the", "of", "for", "and"):
        return named.group(1)
    return None


def _cue_distance(text: str, position: int) -> int:
    cues = [m.end() for m in _TARGET_CUES.finditer(text) if m.end() <= position]
    return position - cues[-1] if cues else 10_000 + position


def _find_positive_class(text: str) -> str | None:
    match = re.search(r"\bpositive class (?:is |=\s*)?['\"]?([\w-]+)", text, re.IGNORECASE)
    if match:
        return match.group(1)
    match = re.search(r"\b(?:recall|precision|f1) (?:for|of|on) (?:the )?(?:class )?['\"]?([\w-]+)['\"]?",
                      text, re.IGNORECASE)
    if match and match.group(1).lower() not in ("the", "positive", "class", "each", "all"):
        return match.group(1)
    return None


# An amount: digits (a unit may follow at once, "5ms") or words ("half a", then a space).
_AMOUNT = rf"(\d+(?:\.\d+)?(?=\s*[µa-z])|(?:{_AMOUNT_WORDS})(?=\s))\s*"
_SHORT_UNITS = r"ms|msecs?|milliseconds?|µs|us|microseconds?"
_SECOND_UNITS = r"s|secs?|seconds?"
_SHORT_TIME = rf"({_SHORT_UNITS})\b"
# A time per row, however it is worded: a bound before the amount ("under 5 ms", "in 5ms"), a
# bound after it ("5 ms or less"), or a budget per item ("50 microseconds per event", "0.002
# seconds per application"). Seconds count only per item: "within 60 seconds" is a run time.
_LATENCY = [
    re.compile(rf"(?:under|below|within|less than|at most|no more than|<|\bin)\s*{_AMOUNT}"
               rf"{_SHORT_TIME}", re.IGNORECASE),
    re.compile(rf"\b{_AMOUNT}{_SHORT_TIME}\s*(?:or (?:less|under|faster|below)|max(?:imum)?\b|"
               r"at most|tops\b)", re.IGNORECASE),
    re.compile(rf"\b{_AMOUNT}(?:{_SHORT_UNITS}|{_SECOND_UNITS})\b\s*(?:per|for each|for every|"
               r"each|a|an)\s+(?!second\b|minute\b|hour\b|day\b)[a-z]+", re.IGNORECASE),
]
_UNIT_MS = {"µ": 0.001, "u": 0.001, "m": 1.0, "s": 1000.0}


def _find_latency_ms(text: str) -> float | None:
    """The per-row time limit the text states, in milliseconds (the first one it states)."""
    found = [m for rx in _LATENCY for m in rx.finditer(text)]
    if not found:
        return None
    match = min(found, key=lambda m: m.start())
    word = re.sub(r"\s+", " ", match.group(1).strip().lower())
    amount = _AMOUNTS[word] if word in _AMOUNTS else float(match.group(1))
    unit = re.search(r"(µs|us|micro|ms|msec|milli|s|sec)", text[match.end(1):match.end()].lower())
    scale = _UNIT_MS["µ" if unit and unit.group(1) in ("µs", "us", "micro")
                     else "m" if unit and unit.group(1).startswith("m") else "s"]
    return amount * scale


def _find_max_features(text: str) -> int | None:
    """A cap on the inputs, however it is worded: "at most 6 features", "3 features max"."""
    match = (re.search(rf"(?:at most|no more than|not more than|up to|max(?:imum)?(?: of)?)\s*(\d+)\s*"
                       rf"(?:of (?:the|its|our|all)?\s*(?:\d+\s*)?)?{_INPUTS_WORD}", text, re.IGNORECASE)
             or re.search(rf"\b(\d+)\s*{_INPUTS_WORD}\s*(?:max(?:imum)?|at most|or (?:fewer|less)|tops)\b",
                          text, re.IGNORECASE))
    return int(match.group(1)) if match else None


def _find_max_model_mb(text: str) -> float | None:
    match = re.search(r"(?:under|below|within|less than|smaller than|at most|<)\s*(\d+(?:\.\d+)?)"
                      r"\s*(kb|mb|gb)\b", text, re.IGNORECASE)
    if not match:
        return None
    scale = {"kb": 0.001, "mb": 1.0, "gb": 1000.0}[match.group(2).lower()]
    return float(match.group(1)) * scale
