"""Reading a request against the table: which column, which kind, which metric, which class.

The rules read like a careful person: a column counts as named when the text names it
(exactly, quoted, in another case or spacing) or describes it by a word of its name; a
column listed after "from" or "using" is an input, not the target; a number in the text is
never taken for a numbered column. Each candidate gets a score; when the best two are close,
or nothing points at a column, the reading carries a question instead of a guess.
"""

from __future__ import annotations

import re
from typing import Literal

import pandas as pd
from pydantic import BaseModel, Field

from hyperpilot.tools.types import TaskType

_MAX_VALUES = 8
_MAX_VALUE_CHARS = 30


class ColumnSummary(BaseModel):
    """One column as a reader needs it: its name, whether it is numeric, its common values."""

    name: str
    numeric: bool = False
    datetime: bool = False
    n_unique: int = 0
    values: dict[str, int] = Field(default_factory=dict)  # the most frequent values, with counts


class Candidate(BaseModel):
    column: str
    score: float
    why: list[str] = Field(default_factory=list)


class RequestReading(BaseModel):
    """What the text asks for once it is held against the table's columns."""

    is_ml: bool
    target: str | None = None
    task_type: TaskType | None = None
    metric: str | None = None
    metric_named: bool = False
    positive_class: str | None = None
    time_ordered: bool = False
    candidates: list[Candidate] = Field(default_factory=list)
    question: str | None = None


def summarise_table(frame: pd.DataFrame, max_values: int = _MAX_VALUES) -> list[ColumnSummary]:
    """Column summaries of ``frame``, values capped in number and length."""
    out = []
    for col in frame.columns:
        series = frame[col]
        numeric = bool(pd.api.types.is_numeric_dtype(series)) and not pd.api.types.is_bool_dtype(series)
        counts = series.dropna().astype(str).value_counts().head(max_values)
        values = {str(k)[:_MAX_VALUE_CHARS]: int(v) for k, v in counts.items()}
        out.append(ColumnSummary(name=str(col), numeric=numeric, datetime=_looks_datetime(series),
                                 n_unique=int(series.nunique()), values=values))
    return out


def _looks_datetime(series: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(series):
        return True
    if series.dtype != object:
        return False
    sample = series.dropna().astype(str).head(20)
    return bool(len(sample)) and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}([ T].*)?|\d{1,2}/\d{1,2}/\d{2,4}", v)
                                     for v in sample)


# ---------------------------------------------------------------- words

_SUFFIXES = ("ations", "ation", "ials", "ers", "ial", "ied", "ies", "ing", "als", "ed", "es",
             "er", "al", "s", "e", "y")
_SYNONYMS = {
    "buy": "purchase", "bought": "purchase", "buying": "purchase", "buys": "purchase",
    "die": "dead", "dies": "dead", "died": "dead", "death": "dead", "deaths": "dead",
    "killed": "dead", "survive": "survived", "survival": "survived", "worth": "price",
    "cost": "price", "costs": "price", "value": "price", "pay": "wage", "paid": "wage",
    "earn": "wage", "earnings": "wage", "salary": "wage", "applications": "apps",
    "default": "default", "defaults": "default", "defaulted": "default", "leave": "churn",
    "churned": "churn", "cancel": "churn", "sold": "price", "riders": "ridership",
    "rating": "score", "stars": "score", "approved": "approve", "denied": "deny",
    "fraudulent": "fraud", "spam": "spam", "sick": "disease",
}
_STOP = {"the", "a", "an", "of", "and", "or", "to", "in", "on", "for", "is", "are", "it", "its",
         "be", "will", "from", "by", "with", "each", "per", "this", "that", "data", "table",
         "column", "col", "model", "predict", "what", "which", "how", "who", "we", "i", "my",
         "our", "you", "u", "can", "do", "does", "not", "no", "yes", "number", "count", "rate",
         "total", "type", "id", "at", "as", "all", "one"}


def stem(word: str) -> str:
    word = _SYNONYMS.get(word.lower(), word.lower())
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def name_tokens(name: str) -> list[str]:
    """The words of a column name: ``HHV`` -> [hhv]; ``Contraceptive_method`` -> two words."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", re.sub(r"\(.*?\)", " ", name))
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def _text_words(text: str) -> list[tuple[str, int]]:
    return [(m.group(0).lower(), m.start()) for m in re.finditer(r"[A-Za-z][A-Za-z0-9']*", text)]


# ---------------------------------------------------------------- target

_CUE = re.compile(r"\b(predict\w*|forecast\w*|estimat\w*|classify|classif\w+|model(?:l?ing)?|"
                  r"tell (?:if|whether|apart)|guess|detect|flag|identify|separate\w*|"
                  r"distinguish|whether|which|into|who|how (?:many|much)|what is|what's|target|label|"
                  r"outcome|y\s*=|explain|score)\b", re.IGNORECASE)
_INPUT_CUE = re.compile(r"\b(from|using|based on|given|with|features?|predictors?|inputs?|"
                        r"other than|except|lagged|besides)\b", re.IGNORECASE)
_TARGET_DECLARED = re.compile(
    r"(?:\btarget|\blabel|\boutcome|\bresponse|\by)\s*(?:column|variable|col)?\s*(?:is|=|:)\s*"
    r"['\"`]?([\w.\- ]+?)['\"`]?(?=$|[\s,.;)!?])", re.IGNORECASE)
_YES_LIKE = ("yes", "1", "true", "y", "positive", "pos", "t", "1.0")


def score_targets(text: str, columns: list[ColumnSummary]) -> list[Candidate]:
    """Every column that the text points at, best first, with the reasons."""
    words = _text_words(text)
    cues = [m.end() for m in _CUE.finditer(text)]
    inputs = [m.start() for m in _INPUT_CUE.finditer(text)]
    out = []
    for col in columns:
        score, why = _score_column(text, words, cues, inputs, col, columns)
        if score > 0:
            out.append(Candidate(column=col.name, score=round(score, 2), why=why))
    return sorted(out, key=lambda c: -c.score)


def _name_positions(text: str, name: str) -> list[tuple[int, bool]]:
    """Where the text names ``name`` (any case, spacing or quote); with whether it is quoted."""
    if re.fullmatch(r"\d+", name):  # a number in the text is not a numbered column
        pattern = rf"(?:column|col|['\"`])\s*{name}\b"
    else:
        variants = {name, name.replace("_", " "), name.replace(".", " "), name.replace("_", ""),
                    " ".join(name_tokens(name))}
        alts = "|".join(re.escape(v) + r"(?:e?s)?" for v in sorted(variants, key=len, reverse=True) if v)
        pattern = rf"(?<![\w/-])(?:{alts})(?![\w/])"
    hits = []
    for m in re.finditer(pattern, text, re.IGNORECASE):
        before, after = text[max(0, m.start() - 1): m.start()], text[m.end(): m.end() + 1]
        hits.append((m.start(), before in "'\"`" and before != "" and after in "'\"`" and after != ""))
    return hits


def _score_column(text: str, words: list[tuple[str, int]], cues: list[int], inputs: list[int],
                  col: ColumnSummary, columns: list[ColumnSummary]) -> tuple[float, list[str]]:
    score, why = 0.0, []
    named = _name_positions(text, col.name)
    positions = [p for p, _ in named]
    if named:
        score += 3.0
        why.append("named")
        if any(q for _, q in named):
            score += 2.0
            why.append("quoted")
    declared = _TARGET_DECLARED.search(text)
    if declared and _same_name(declared.group(1), col.name):
        score += 6.0
        why.append("declared the target")
    if re.search(rf"(?<![\w]){re.escape(col.name)}\s+(?:is|=)\s+(?:the|our|my)\s+"
                 r"(?:target|label|outcome|0/1 column|yes/no column|column to predict)|\(\s*"
                 rf"{re.escape(col.name)}\s+col", text, re.IGNORECASE):
        score += 4.0
        why.append("called the target")
    if not named:
        tokens = {stem(t) for t in name_tokens(col.name) if t not in _STOP and len(t) >= 3}
        described = [pos for word, pos in words if word not in _STOP and len(word) >= 3
                     and stem(word) in tokens]
        if described:
            score += 1.5 if _unique_description(described, words, tokens, columns) else 0.5
            why.append("described by a word of its name")
            positions = described
    values = _mentioned_values(text, col)
    if len(values) >= 2:
        score += 2.0
        why.append(f"its values named: {', '.join(values[:3])}")
        positions = positions or [text.lower().find(values[0].lower())]
    if not positions:
        return 0.0, why
    if len(positions) > 1:
        score += 0.5
    if _CONVENTIONAL.match(col.name):
        score += 1.0
        why.append("named like a target")
    score += max(_place_bonus(text, p, cues, inputs) for p in positions)
    if re.search(rf"(?<![\w]){re.escape(col.name)}\s*(?:=|==)\s*['\"`]?(\w+)", text, re.I) and any(
            re.search(rf"{re.escape(col.name)}\s*==?\s*['\"`]?{re.escape(v)}\b", text, re.I)
            for v in col.values):
        score += 2.0
        why.append("one of its values named with it")
    if any(_class_for_phrase(m.group(1), col) for m in _POSITIVE.finditer(text)):
        score += 1.5
        why.append("the class the metric is about")
    if col.datetime or re.fullmatch(r"(date|time|timestamp|day|datetime)", col.name, re.I):
        score -= 3.0
        why.append("a date: the order of the rows, not a target")
    return score, why


def _unique_description(described: list[int], words: list[tuple[str, int]], tokens: set[str],
                        columns: list[ColumnSummary]) -> bool:
    """True when the describing word names this column alone ("region" fits three columns)."""
    stems = {stem(w) for w, p in words if p in described} & tokens
    sharing = [c for c in columns if stems & {stem(t) for t in name_tokens(c.name)}]
    return len(sharing) <= 1


def _place_bonus(text: str, position: int, cues: list[int], inputs: list[int]) -> float:
    """How much one mention's place says "target": after a cue word, not in a list of inputs."""
    bonus = 0.0
    near = min((position - c for c in cues if c <= position
                and not re.search(r"[.;?!:]\s", text[c:position])), default=None)
    if near is not None and near <= 25:
        bonus += 2.5 - near / 20
    elif near is not None and near <= 80:
        bonus += 0.5
    if _listed_as_input(text, position, cues, inputs):
        bonus -= 3.0
    return bonus


def _same_name(phrase: str, name: str) -> bool:
    norm = lambda s: "".join(name_tokens(s))  # noqa: E731
    return norm(phrase) == norm(name) or norm(phrase).rstrip("s") == norm(name)


def _listed_as_input(text: str, position: int, cues: list[int], inputs: list[int]) -> bool:
    """True when the nearest marker before ``position`` says inputs ("from", "using", ...)."""
    last_input = max((i for i in inputs if i < position), default=-1)
    last_cue = max((c for c in cues if c <= position), default=-1)
    if last_input < 0 or last_input < last_cue:
        return False
    between = text[last_input:position]
    return not re.search(r"[.;?!]\s", between)


def _mentioned_values(text: str, col: ColumnSummary) -> list[str]:
    if col.numeric or not (2 <= col.n_unique <= 20):
        return []
    if col.values and max(col.values.values()) > 0.95 * sum(col.values.values()):
        return []
    found = []
    for value in col.values:
        if value.lower() in _YES_LIKE or value.lower() in ("no", "0", "false", "f", "n"):
            continue
        if len(value) >= 3 and re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text, re.IGNORECASE):
            found.append(value)
        elif len(value) < 3 and re.search(rf"[(\"'`]{re.escape(value)}[)\"'`]", text):
            found.append(value)
    return found


# ---------------------------------------------------------------- kind

_SAYS_REGRESSION = re.compile(r"\b(regress\w*|how (?:much|many)|amount|forecast\w*|estimate|price|"
                              r"value of|quantity|worth|continuous)\b", re.IGNORECASE)
_SAYS_CLASSIFY = re.compile(r"\b(classif\w*|categor(?:y|ies)|class(?:es)?|whether|tell (?:if|whether)|"
                            r"yes/no|0/1|binary|multi[\s-]*class|which (?:one|type|kind|group)|"
                            r"will (?:\w+ )?(?:be|get|buy|die|default|churn)|denied|approved)\b",
                            re.IGNORECASE)


def decide_kind(text: str, col: ColumnSummary) -> TaskType:
    """The task kind from the target's data, the words deciding only where the data allows both."""
    if col.n_unique == 2:
        return "binary"
    if not col.numeric:
        return "multiclass"
    integral = all(re.fullmatch(r"-?\d+(\.0+)?", v) for v in col.values)
    if col.n_unique > 30 or not integral:
        return "regression"
    if _SAYS_REGRESSION.search(text) and not _SAYS_CLASSIFY.search(text):
        return "regression"
    return "multiclass"


# ---------------------------------------------------------------- metric

_METRICS: list[tuple[str, str]] = [
    (r"macro[\s-]*(?:averaged\s+|avg\s+)?f1|f1[\s-]*macro|f1 (?:over|across|averaged over) (?:the|all|each)", "f1_macro"),
    (r"weighted[\s-]*f1|f1[\s-]*weighted", "f1_weighted"),
    (r"balanced[\s-]*accuracy", "balanced_accuracy"),
    (r"\bau[\s-]?roc\b|\b(?:roc[\s-]*)?auc\b|\broc\b|area under (?:the )?(?:roc )?curve|c[\s-]statistic", "roc_auc"),
    (r"log[\s-]*loss|cross[\s-]*entropy|logarithmic loss|\bdeviance\b", "log_loss"),
    (r"\bf1\b|\bf[\s-]*(?:1[\s-]*)?score\b|\bf[\s-]*measure\b", "f1"),
    (r"\baccura(?:cy|te)\b|\bhit rate\b|percent(?:age)? correct", "accuracy"),
    (r"\bprecision\b", "precision"),
    (r"\brecall\b|\bsensitivity\b|\btrue positive rate\b", "recall"),
    (r"\br2\b|\br\^2\b|r²|\br[\s-]*squared?\b|coefficient of determination|variance explained", "r2"),
    (r"\brmse\b|root[\s-]*mean[\s-]*squared?(?:[\s-]*error)?|\brms error\b|root mean square", "rmse"),
    (r"\bmae\b|mean[\s-]*abs(?:olute|\.)?(?:[\s-]*error)?|average absolute (?:error|deviation)|"
     r"\bl1 (?:error|loss)\b", "mae"),
]
_RANKING = re.compile(r"\b(rank\w*|top[\s-]*(?:\d+|ranked|scored|n|k)|prioriti[sz]\w*|order (?:them|the \w+) by|"
                      r"most likely first|short[\s-]*list)\b", re.IGNORECASE)
_NEGATION_BEFORE = re.compile(r"(?:\bnot|\bnever|n't|\bno|\bignore|\bforget|\brather than|\binstead of|"
                              r"\bover|\bnot just|\bnot only|\bwithout|\bbut not)\s+(?:\w+\s+){0,3}$",
                              re.IGNORECASE)
_NEGATION_AFTER = re.compile(r"^\W*(?:is|are|would be|will be|'s)?\s*(?:\w+\s+){0,2}(?:meaningless|useless|"
                             r"misleading|pointless|not (?:useful|helpful|what)|irrelevant|no good|"
                             r"worthless|a bad (?:metric|choice))", re.IGNORECASE)


def find_metrics(text: str) -> list[tuple[int, str, bool]]:
    """Every metric the text mentions: (position, metric, negated), in text order."""
    taken: list[tuple[int, int]] = []
    out = []
    for pattern, metric in _METRICS:
        for m in re.finditer(pattern, text, re.IGNORECASE):
            if any(s <= m.start() < e for s, e in taken):
                continue
            taken.append((m.start(), m.end()))
            negated = bool(_NEGATION_BEFORE.search(text[max(0, m.start() - 40): m.start()])
                           or _NEGATION_AFTER.search(text[m.end(): m.end() + 40]))
            out.append((m.start(), metric, negated))
    return sorted(out)


def decide_metric(text: str, kind: TaskType | None) -> tuple[str | None, bool]:
    """The metric the words ask for (negated mentions skipped), else the convention; named?"""
    fits = {"regression": ("r2", "rmse", "mae")}.get(kind or "", None)
    for _, metric, negated in find_metrics(text):
        if negated:
            continue
        if kind == "multiclass" and metric == "f1":
            metric = "f1_macro"
        if kind == "multiclass" and metric in ("precision", "recall"):
            continue
        if fits is not None and metric not in fits:
            continue
        if kind in ("binary", "multiclass") and metric in ("r2", "rmse", "mae"):
            continue
        return metric, True
    if kind in ("binary", "multiclass") and _RANKING.search(text):
        return "roc_auc", True
    return default_metric(kind), False


def default_metric(kind: TaskType | None) -> str | None:
    """The convention when the text names no metric: ROC AUC, accuracy, RMSE."""
    return {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}.get(kind or "")


# ---------------------------------------------------------------- positive class

_POSITIVE = re.compile(
    r"\b(?:positive class (?:is |=\s*)?|(?:f1|f-score|recall|precision|sensitivity)\s+(?:score\s+)?"
    r"(?:for|of|on|about)\s+(?:the\s+)?(?:class\s+)?|catch(?:ing)?\s+(?:the\s+)?|"
    r"care (?:most )?about\s+(?:the\s+)?|detect(?:ing)?\s+(?:the\s+)?)['\"`]?([\w-]+)['\"`]?",
    re.IGNORECASE)


def decide_positive_class(text: str, col: ColumnSummary) -> str | None:
    """The class the text cares about, as one of the target's values, else ``None``."""
    if col.n_unique != 2 or not col.values:
        return None
    values = list(col.values)
    for m in _POSITIVE.finditer(text):
        found = _class_for_phrase(m.group(1), col)
        if found is not None:
            return found
    return None


def _class_for_phrase(phrase: str, col: ColumnSummary) -> str | None:
    values = list(col.values)
    lowered = phrase.lower()
    for value in values:
        if value.lower() == lowered:
            return value
    for value in values:
        if len(value) >= 3 and stem(value) == stem(phrase):
            return value
    # "the denials" of a yes/no column named deny: the word names the column, so the yes class
    if stem(phrase) in {stem(t) for t in name_tokens(col.name)} or lowered in ("positives", "ones"):
        for value in values:
            if value.lower() in _YES_LIKE:
                return value
    return None


def minority_class(col: ColumnSummary) -> str | None:
    if not col.values:
        return None
    return min(col.values, key=lambda v: (col.values[v], v))


# ---------------------------------------------------------------- the reading

_NOT_ML = re.compile(r"^\s*(?:(?:please|pls|can you|could you|just)\s+)*(plot|chart|draw|show|list|"
                     r"print|sort|count|sum|describe|summari[sz]e|convert|export|merge|join|dedupe|"
                     r"remove|drop|delete|rename|clean|compute the (?:mean|average|median|sum)|"
                     r"what(?:'s| is) the (?:mean|average|median|total|max|min|sum)|how many rows)\b",
                     re.IGNORECASE)
_ML = re.compile(r"\b(predict\w*|forecast\w*|classif\w*|model\w*|estimat\w*|regress\w*|train\w*|"
                 r"machine learning|ml|tell (?:if|whether|apart)|separat\w+|distinguish|detect\w*|"
                 r"which \w+(?: \w+)? (?:will|would|are likely|is likely)|will\b|whether|guess|"
                 r"score|f1|auc|rmse|mae|accuracy|target|label)\b", re.IGNORECASE)
_TIME = re.compile(r"\b(forecast\w*|later dates|future|next (?:day|week|month|year|quarter)|"
                   r"train on the past|most recent|time[\s-]*(?:series|ordered|order)|"
                   r"chronolog\w*|over time)\b", re.IGNORECASE)
_CLOSE = 1.0


def read_request(text: str, columns: list[ColumnSummary]) -> RequestReading:
    """The rules' reading of ``text`` against ``columns``; a question when they cannot tell."""
    if _NOT_ML.search(text) and not re.search(r"\b(predict\w*|forecast\w*|classif\w*|model)\b",
                                              text, re.IGNORECASE):
        return RequestReading(is_ml=False)
    if not _ML.search(text) and not re.search(r"\?", text):
        return RequestReading(is_ml=False)
    candidates = score_targets(text, columns)
    time_ordered = bool(_TIME.search(text)) and any(c.datetime or c.name.lower() == "date"
                                                    for c in columns)
    target, question = _choose(candidates, columns)
    reading = RequestReading(is_ml=True, candidates=candidates[:5], time_ordered=time_ordered,
                             question=question)
    if target is None:
        return reading
    return complete_reading(text, columns, reading, target)


def complete_reading(text: str, columns: list[ColumnSummary], reading: RequestReading,
                     target: str) -> RequestReading:
    """``reading`` with ``target`` settled: kind, metric and positive class follow from it."""
    col = next(c for c in columns if c.name == target)
    kind = decide_kind(text, col)
    metric, named = decide_metric(text, kind)
    positive = decide_positive_class(text, col) if kind == "binary" else None
    if kind == "binary" and positive is None and metric in ("roc_auc", "f1", "precision", "recall"):
        positive = _mentioned_first(text, col) or _yes_value(col) or minority_class(col)
    return reading.model_copy(update={"target": target, "task_type": kind, "metric": metric,
                                      "metric_named": named, "positive_class": positive,
                                      "question": None})


def prompt_columns(columns: list[str] | list[ColumnSummary], max_chars: int = 4000) -> list[str]:
    """Column names for a prompt, bounded: a wide table keeps its first and last names."""
    names = [c.name if isinstance(c, ColumnSummary) else str(c) for c in columns]
    names = [n[:40] for n in names]
    if sum(len(n) + 3 for n in names) <= max_chars:
        return names
    keep: list[str] = []
    for head, tail in zip(names, reversed(names)):
        if sum(len(n) + 3 for n in keep) + len(head) + len(tail) + 6 > max_chars - 40:
            break
        keep = keep[: len(keep) // 2] + [head, tail] + keep[len(keep) // 2:]
    half = len(keep) // 2
    return keep[:half] + [f"... {len(names) - len(keep)} more columns ..."] + keep[half:]


_CONVENTIONAL = re.compile(r"^(target|label|labels|class|y|outcome|response)$", re.IGNORECASE)


def _choose(candidates: list[Candidate], columns: list[ColumnSummary]) -> tuple[str | None, str | None]:
    if candidates and candidates[0].score >= 2.0:
        best = candidates[0]
        if len(candidates) < 2 or best.score - candidates[1].score >= _CLOSE:
            return best.column, None
        return None, ask_which([best.column, candidates[1].column])
    conventional = [c.name for c in columns if _CONVENTIONAL.match(c.name) and c.n_unique >= 2]
    if len(conventional) == 1:
        return conventional[0], None
    names = [c.column for c in candidates[:3]] or [c.name for c in columns[-3:]]
    return None, ask_which(names)


def ask_which(names: list[str]) -> str:
    """The one-line question that names the candidates and how to choose."""
    listed = " or ".join(f"'{n}'" for n in names)
    return (f"which column should be predicted: {listed}? name it in the task, "
            f"e.g. 'predict {names[0]}'")


def _mentioned_first(text: str, col: ColumnSummary) -> str | None:
    values = _mentioned_values(text, col)
    if not values:
        return None
    return min(values, key=lambda v: text.lower().find(v.lower()))


def _yes_value(col: ColumnSummary) -> str | None:
    return next((v for v in col.values if v.lower() in _YES_LIKE), None)
