"""Reading a request against the table: which column, which kind, which metric, which class.

The rules read like a careful person: a column counts as named when the text names it
(exactly, quoted, in another case or spacing) or describes it by a word of its name (or,
with less weight, a prefix of one or a one-letter slip: "minimum" for min, "chrages"); a
column listed after "from" or "using" is an input, not the target; a number in the text is
never taken for a numbered column. Each candidate gets a score; when the best two are close,
or nothing points at a column, the reading carries a question instead of a guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

import pandas as pd
from pydantic import BaseModel, Field

from hyperpilot.tools.time_order import asks_for_forecast, is_time_name
from hyperpilot.tools.types import TaskType

_MAX_VALUES = 8
_MAX_VALUE_CHARS = 30
_MAX_CLASSES = 200  # a text column with more distinct values is free text or an identifier


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
# A word people use for what a column holds: each maps to words of likely column names.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "buy": ("purchase",), "bought": ("purchase",), "buyer": ("purchase",),
    "die": ("dead",), "died": ("dead",), "death": ("dead",), "fatality": ("dead",),
    "killed": ("dead",), "survive": ("survived", "dead"), "survival": ("survived", "dead"),
    "worth": ("price", "value"), "cost": ("price", "charges", "cost", "expense"),
    "charge": ("charges",), "charged": ("charges",), "pricing": ("price",),
    "colour": ("color",), "grey": ("gray",), "centre": ("center",),
    "pay": ("wage", "salary"), "paid": ("wage", "salary"), "earn": ("wage", "salary", "income"),
    "earning": ("wage", "salary", "income"), "salary": ("wage", "salary"),
    "application": ("apps",), "riders": ("ridership",), "rider": ("ridership",),
    "star": ("score", "rating"), "stars": ("score", "rating"), "rating": ("score", "rating"),
    "denied": ("deny",), "denial": ("deny",), "fraudulent": ("fraud", "class"),
    "leave": ("left", "churn", "churned"), "leaver": ("left",), "quit": ("left", "churn"),
    "attrition": ("left", "churn"), "cancel": ("churn", "churned"), "churner": ("churn",),
    "diabetic": ("diabetes", "outcome"), "pass": ("passed",), "fail": ("passed",),
    "failure": ("passed",), "rain": ("rain",), "rainy": ("rain",), "rainfall": ("rain",),
    "kids": ("children", "child"), "kid": ("children", "child"), "child": ("children",),
}


def _both_ways(synonyms: dict[str, tuple[str, ...]]) -> dict[str, set[str]]:
    """The reverse of each entry that lists its own word: "rating" -> (score, rating) says the
    two words name the same column, so "score" may name a column called rating as well."""
    out: dict[str, set[str]] = {}
    for key, names in synonyms.items():
        for name in names:
            if key in names and name != key:
                out.setdefault(name, set()).add(key)
    return out


_EQUIVALENT = _both_ways(_SYNONYMS)
_PHRASES = [(re.compile(r"\b(?:sells?|sold|go(?:es)?) for\b", re.I), ("price",)),
            (re.compile(r"\b(?:take|takes|took|taking) out (?:a|an|the)\b", re.I), ("purchase",))]
_STOP = {"the", "a", "an", "of", "and", "or", "to", "in", "on", "for", "is", "are", "it", "its",
         "be", "will", "from", "by", "with", "each", "per", "this", "that", "data", "table",
         "column", "col", "model", "predict", "what", "which", "how", "who", "we", "i", "my",
         "our", "you", "u", "can", "do", "does", "not", "no", "yes", "number", "rate",
         "total", "type", "id", "at", "as", "all", "one", "use", "using", "other", "others",
         "row", "rows", "record", "records", "feature", "features", "line", "item", "items"}


def stem(word: str) -> str:
    """A crude stem: ``denials``, ``denied`` and ``deny`` all give ``den``."""
    word = word.lower()
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def stems(word: str) -> set[str]:
    """The stems a text word may stand for: its own and its synonyms'."""
    word = word.lower()
    out = {stem(word)}
    for key in (word, stem(word), word.rstrip("s")):
        out |= {stem(s) for s in _SYNONYMS.get(key, ())}
        out |= {stem(s) for s in _EQUIVALENT.get(key, ())}
    return out


def name_tokens(name: str) -> list[str]:
    """The words of a column name: ``HHV`` -> [hhv]; ``Contraceptive_method`` -> two words."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", re.sub(r"\(.*?\)", " ", name))
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def _text_words(text: str) -> list[tuple[str, int]]:
    return [(m.group(0).lower(), m.start()) for m in re.finditer(r"[A-Za-z][A-Za-z0-9']*", text)]


# ---------------------------------------------------------------- target

_CUE = re.compile(r"\b(predict\w*|forecast\w*|estimat\w*|classify|classif\w+|model(?:l?ing)?|"
                  r"tell (?:if|whether|apart|us|me)|tell(?=\s+(?:\w+\s+){1,4}apart\b)|guess|detect|flag|"
                  r"identify|recogni[sz]e|separate\w*|"
                  r"distinguish|whether|which(?=\s+\w+(?:\s+\w+)?\s+(?:do|does|did)\b)|into|who|"
                  r"how (?:many|much)|what is|what's|what (?:are|will|would|do|does)|target|label|likely to|"
                  r"will (?:a|an|the|each|this|my|our)\s+\w+|"
                  r"outcome|y\s*=|explain|score)\b", re.IGNORECASE)
# A yes/no question opens by its verb and subject, and asks what follows the subject:
# "is a film animated?", "does the loan default?" (the film, the loan: the rows).
_YES_NO_CUE = re.compile(r"(?:^|(?<=[.?!;:,]\s))(?:is|are|was|were|does|do|did|has|have)\s+"
                         r"(?:(?:a|an|the|this|that|each|my|our|your)\s+[\w-]+|it|he|she|they)\b",
                         re.IGNORECASE)
_AFTER_CUE = re.compile(r"^[\w-]{0,3}\s*(?:\w+\s+)?(predict\w*|prediction|model(?:l?ing)?|forecast\w*|"
                        r"classifier|regression|is predictable|is the target)\b", re.IGNORECASE)
_GROUP_BEFORE = re.compile(r"\b(each|per|every|by|which|across|among|at|in)\s+(?:the\s+)?$", re.I)
_NOT_BEFORE = re.compile(r"\b(not|rather than|instead of|other than|except|besides)\s+(?:the\s+)?$",
                         re.I)
_SHORT_WORDS = {"a", "i", "an", "or", "to", "in", "on", "of", "is", "it", "at", "as", "be", "by",
                "do", "if", "me", "my", "no", "so", "up", "us", "we"}
# "use age, job, ..." lists inputs; "use F1 on the ..." names a metric.
_INPUT_CUE = re.compile(r"\b(from|using|use(?!\s+(?:\w+\s+)?(?:f1|auc|roc|accura|recall|precision|r2|r\^2|"
                        r"rmse|mae|log|balanced|macro|area|mean|root)\w*)|based on|given|with|features?|"
                        r"predictors?|inputs?|"
                        r"other than|except|lagged|besides)\b", re.IGNORECASE)
_TARGET_DECLARED = re.compile(
    r"(?:\btarget|\blabel|\boutcome|\bresponse|\by)\s*(?:column|variable|col)?\s*(?:is|=|:)\s*"
    r"['\"`]?([\w.\- ]+?)['\"`]?(?=$|[\s,.;)!?])", re.IGNORECASE)
_METRIC_WORD = re.compile(r"accura|precis|recall|error|score|balanc|absolut|squar", re.I)
_SETS_APART = r"(?:tell|separate|distinguish|flag|detect|identify|spot|catch|pick out|find)"
# Words about the modelling itself, never shortened names of a column.
_PROCESS_WORD = re.compile(r"(?:train|test|fit|split|valid|tun|learn|scor)\w*", re.I)
_MIN_PREFIX = 3  # the shortest word of a name that may stand for a longer text word
_YES_LIKE = ("yes", "1", "true", "y", "positive", "pos", "t", "1.0")


def score_targets(text: str, columns: list[ColumnSummary]) -> list[Candidate]:
    """Every column that the text points at, best first, with the reasons."""
    words = _text_words(text)
    cues = sorted([m.end() for m in _CUE.finditer(text)] + [m.end() for m in _YES_NO_CUE.finditer(text)])
    inputs = [m.start() for m in _INPUT_CUE.finditer(text)]
    typos = _typo_positions(words, columns)
    out = []
    for col in columns:
        score, why = _score_column(text, words, cues, inputs, col, columns, typos)
        if score > 0:
            out.append(Candidate(column=col.name, score=round(score, 2), why=why))
    return sorted(out, key=lambda c: -c.score)


def _name_positions(text: str, name: str) -> list[tuple[int, bool]]:
    """Where the text names ``name`` (any case, spacing or quote); with whether it is quoted."""
    flags = re.IGNORECASE
    if re.fullmatch(r"\d+", name) or name.lower() in _SHORT_WORDS:
        # a number in the text is not a numbered column, nor the word "a" a column named a
        pattern = rf"(?:\bcolumn\s+|\bcol\s+|['\"`]){re.escape(name)}(?![\w])"
    elif len(name) <= 2:
        pattern, flags = rf"(?<![\w/-]){re.escape(name)}(?![\w/])", 0
    else:
        variants = {name, name.replace("_", " "), name.replace(".", " "), name.replace("_", ""),
                    " ".join(name_tokens(name))}
        alts = "|".join(re.escape(v) + r"(?:e?s)?" for v in sorted(variants, key=len, reverse=True) if v)
        pattern = rf"(?<![\w/-])(?:{alts})(?![\w/])"
    hits = []
    for m in re.finditer(pattern, text, flags):
        before, after = text[max(0, m.start() - 1): m.start()], text[m.end(): m.end() + 1]
        hits.append((m.start(), before in "'\"`" and before != "" and after in "'\"`" and after != ""))
    return hits


def _score_column(text: str, words: list[tuple[str, int]], cues: list[int], inputs: list[int],
                  col: ColumnSummary, columns: list[ColumnSummary],
                  typos: dict[str, list[int]]) -> tuple[float, list[str]]:
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
                 r"(?:target|label|outcome|0/1 column|yes/no column|column to predict)|"
                 rf"(?<![\w]){re.escape(col.name)}\s+is\s+(?:0/1|yes/no|binary|the label)|\(\s*"
                 rf"{re.escape(col.name)}\s+col", text, re.IGNORECASE):
        score += 4.0
        why.append("called the target")
    if not named:
        tokens = {stem(t) for t in name_tokens(col.name) if t not in _STOP and len(t) >= 3}
        described = [pos for word, pos in words if _fits_exactly(word, col.name)]
        described += [m.start() for rx, names in _PHRASES for m in rx.finditer(text)
                      if {stem(n) for n in names} & tokens]
        described += _compound_positions(text, col.name)
        described = sorted(set(described))
        loose = sorted(({pos for word, pos in words if _fits_loosely(word, col.name)}
                        | set(typos.get(col.name, ()))) - set(described))
        both = sorted(set(described) | set(loose))
        # what sets a column apart is said where the target is asked for: "house listings
        # export. predict the price" does not make the price the listing price
        asked = [p for p in both if _in_cue_sentence(text, p, cues)] or both
        if described:
            score += 1.5 if _unique_description(asked, words, col, columns) else 0.5
            why.append("described by a word of its name")
        elif loose:
            # a prefix or a misspelling: weaker evidence than the word itself
            score += 1.0 if _unique_description(loose, words, col, columns) else 0.25
            why.append("described by a shortened or misspelt word of its name")
        positions = both or positions
    values = _mentioned_values(text, col)
    quoted = [v for v in values if re.search(rf"['\"`]{re.escape(v)}['\"`]", text)]
    if len(values) < 2 and quoted:
        score += 2.0
        why.append(f"its value '{quoted[0]}' quoted")
        positions = positions or [text.find(quoted[0]) - 1]
    if len(values) >= 2:
        score += 3.0
        why.append(f"its values named: {', '.join(values[:3])}")
        positions = positions or [text.lower().find(values[0].lower())]
    elif len(values) == 1 and not quoted and col.n_unique == 2 and (singled := _singled_out(text, values[0])):
        # "tell the great reviews apart": one class of a two-class column, set apart by a verb
        score += 1.5
        why.append(f"one of its two classes, '{values[0]}', singled out")
        positions = positions or singled
    about = [pos for pos, phrase in _positive_phrases(text) if _class_for_phrase(phrase, col)]
    if about:
        score += 2.5
        why.append("the class the metric is about")
        positions = positions or about
    generic = re.search(r"\b(label|class|target|outcome|response)\b", text, re.I)
    if not positions and generic and _CONVENTIONAL.match(col.name):
        positions = [generic.start()]
    if not positions:
        return 0.0, why
    if len(positions) > 1:
        score += 0.5
    if _CONVENTIONAL.match(col.name):
        score += 1.0
        why.append("named like a target")
        if re.search(r"\b(label|class|target|outcome|response)\b", text, re.I):
            score += 1.0
    if named and re.search(rf"\(\s*(?:the\s+)?{re.escape(col.name)}(?:\s+col(?:umn)?)?\s*\)",
                           text, re.I):
        score += 1.5
        why.append("named in brackets")
    score += max(_place_bonus(text, p, cues, inputs, col) for p in positions)
    if re.search(rf"(?<![\w]){re.escape(col.name)}\s*(?:=|==)\s*['\"`]?(\w+)", text, re.I) and any(
            re.search(rf"{re.escape(col.name)}\s*==?\s*['\"`]?{re.escape(v)}\b", text, re.I)
            for v in col.values):
        score += 2.0
        why.append("one of its values named with it")
    if not col.numeric and not col.datetime and col.n_unique > _MAX_CLASSES:
        score -= 3.0
        why.append("free text or an identifier: too many distinct values to be a class")
    if col.datetime or re.fullmatch(r"(date|time|timestamp|day|datetime)", col.name, re.I):
        score -= 3.0
        why.append("a date: the order of the rows, not a target")
    return score, why


def _singled_out(text: str, value: str) -> list[int]:
    """Where a verb that sets rows apart names ``value`` as the rows to find: "tell the great
    reviews apart", "flag the spam ones". A value merely mentioned ("for female passengers")
    is a condition on the rows, not the class asked for."""
    if not re.fullmatch(r"[A-Za-z]{4,}", value):
        return []
    pattern = rf"\b{_SETS_APART}\s+(?:\w+\s+){{0,2}}?({re.escape(value)})(?!\w)"
    return [m.start(1) for m in re.finditer(pattern, text, re.IGNORECASE)]


@lru_cache(maxsize=65536)
def _fits_exactly(word: str, name: str) -> bool:
    """True when ``word`` is a word of the name, by stem, synonym or vowel-less short form."""
    if word in _STOP or len(word) < 3:
        return False
    tokens = [t for t in name_tokens(name) if t not in _STOP and len(t) >= 3]
    if stems(word) & {stem(t) for t in tokens}:
        return True
    return len(word) >= 4 and not _METRIC_WORD.match(word) and any(
        _abbreviates(t, word) for t in name_tokens(name))


@lru_cache(maxsize=65536)
def _fits_loosely(word: str, name: str) -> bool:
    """True when a word of the name is a prefix of ``word`` or the reverse: temp/temperature,
    min/minimum, animation/animated, year/yearacc. A 3-letter prefix needs a 6-letter word."""
    if (word in _STOP or len(word) < 3 or _METRIC_WORD.match(word) or _CUE.fullmatch(word)
            or _PROCESS_WORD.fullmatch(word) or _fits_exactly(word, name)):
        return False  # "classifier", "test" speak of the modelling, not of a column class, testosterone
    for token in name_tokens(name):
        if token in _STOP or len(token) < _MIN_PREFIX or token.isdigit():
            continue
        short = stem(token) if len(stem(token)) >= _MIN_PREFIX + 1 else token
        if word.startswith(short) and (len(short) >= _MIN_PREFIX + 1 or len(word) >= 6):
            return True
        if len(word) >= _MIN_PREFIX + 1 and token.startswith(word) and len(token) >= len(word) + 2:
            return True
    return False


def _fits(word: str, name: str) -> bool:
    return _fits_exactly(word, name) or _fits_loosely(word, name)


def _typo_positions(words: list[tuple[str, int]], columns: list[ColumnSummary]) -> dict[str, list[int]]:
    """Misspelt words of column names: "chrages" for charges, "montly" for monthly_charges.

    Only a word that fits no column otherwise, and is one slip (two, for long words) away from
    a word of exactly one column's name, counts.
    """
    tokens = {c.name: [t for t in name_tokens(c.name) if len(t) >= 5 and not t.isdigit()] for c in columns}
    out: dict[str, list[int]] = {}
    for word, pos in words:
        if len(word) < 5 or word in _STOP or _METRIC_WORD.match(word):
            continue
        if any(_fits(word, c.name) for c in columns):
            continue
        limit = 1 if len(word) < 8 else 2
        near = [name for name, toks in tokens.items()
                if any(abs(len(t) - len(word)) <= limit and _edit_distance(word, t) <= limit for t in toks)]
        if len(near) == 1:
            out.setdefault(near[0], []).append(pos)
    return out


def _edit_distance(a: str, b: str) -> int:
    """Edits between two words, a swap of neighbours counting as one ("chrages", "charges")."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _abbreviates(token: str, word: str) -> bool:
    """True when ``token`` is a vowel-less short form of ``word``: cnt/count, amt/amount."""
    if not (3 <= len(token) <= 5) or re.search(r"[aeiou]", token[1:]) or token[0] != word[0].lower():
        return False
    rest = iter(word.lower())
    return len(word) > len(token) and all(ch in rest for ch in token)


def _compound_positions(text: str, name: str) -> list[int]:
    """Where a hyphenated phrase, two adjacent words or an acronym spell the name: out-of-state,
    part-timers, "part time" for parttime, "full basement" for fullbase, higher heating value."""
    joined = "".join(name_tokens(name))
    out = [m.start() for m in re.finditer(r"\w+(?:-\w+)+", text)
           if stem("".join(p for p in m.group(0).lower().split("-") if p not in ("of", "the", "and")))
           in (joined, stem(joined))]
    out += _joined_positions(text, name)
    words = [(m.group(0).lower(), m.start()) for m in re.finditer(r"[A-Za-z]+", text)]
    if re.fullmatch(r"[a-z]{3,5}", name) and len(re.findall(r"[aeiou]", name)) <= 1:
        # a lowercase initialism (chd, sbp) is spelt out in full, one word per letter
        out += _initial_windows(words, (len(name),), lambda initials: initials == name)
    if re.fullmatch(r"[A-Z]{2,5}", name):
        acronym = name.lower()
        out += _initial_windows(words, range(max(2, len(acronym) - 1), len(acronym) + 1),
                                acronym.endswith)
    return out


def _initial_windows(words: list[tuple[str, int]], sizes: Iterable[int],
                     fits: Callable[[str], bool]) -> list[int]:
    """Where runs of ``sizes`` consecutive words (none a stop word, each of 3+ letters) have
    initials that ``fits`` accepts: the start of each run, once per size that fits."""
    out = []
    for i in range(len(words)):
        for size in sizes:
            window = words[i:i + size]
            if len(window) < size or any(w in _STOP or len(w) < 3 for w, _ in window):
                continue
            if fits("".join(w[0] for w, _ in window)):
                out.append(window[0][1])
    return out


def _joined_positions(text: str, name: str) -> list[int]:
    """Where two adjacent words spell a one-word name, each word in full or cut to its first
    letters (at least three, one word in full): "part time" -> parttime, "lot size" -> lotsize."""
    tokens = name_tokens(name)
    if len(tokens) != 1 or len(tokens[0]) < 6 or not tokens[0].isalpha():
        return []
    joined = tokens[0]
    words = [(m.group(0).lower(), m.start()) for m in re.finditer(r"[A-Za-z]+", text)]
    out = []
    for (first, pos), (second, _) in zip(words, words[1:], strict=False):
        if first in _STOP or second in _STOP:
            continue
        for cut in range(3, len(joined) - 2):
            head, tail = joined[:cut], joined[cut:]
            if (first.startswith(head) and second.startswith(tail)
                    and (first == head or second == tail)):
                out.append(pos)
                break
    return out


def _in_cue_sentence(text: str, position: int, cues: list[int]) -> bool:
    """Whether a cue word ("predict", "which") stands in the same sentence as ``position``."""
    return any(not re.search(r"[.;?!]\s", text[min(c, position):max(c, position)]) for c in cues)


def _unique_description(described: list[int], words: list[tuple[str, int]], col: ColumnSummary,
                        columns: list[ColumnSummary]) -> bool:
    """True when no other column fits every describing word: "region" fits three columns, but
    "minimum temperature" fits temp_min alone, though "temperature" alone fits temp_max too."""
    fitting = [w for w, p in words if p in described and _fits(w, col.name)]
    if not fitting:
        return True
    sharing = [c for c in columns if c.name != col.name and all(_fits(w, c.name) for w in fitting)]
    return not sharing


def _place_bonus(text: str, position: int, cues: list[int], inputs: list[int],
                 col: ColumnSummary) -> float:
    """How much one mention's place says "target": after a cue word, not in a list of inputs."""
    bonus, grouped = 0.0, False
    before = text[max(0, position - 30):position]
    if _NOT_BEFORE.search(before):
        return -3.0
    after = text[position:][:60]
    if re.search(r"\bwhich\s+$", before) and re.match(
            r"[\w.'-]*\s+(?:will|would|do|does|did|is|are)\s+(?:a|an|the|each|every|she|he|they|"
            r"you|we|it|people|\w+ one)\b", after, re.I):
        bonus += 2.0  # "which method will a woman pick": the method is asked for
    elif _GROUP_BEFORE.search(before) and not re.search(r"['\"`][^'\"`]+['\"`]\s+in\s+$", before):
        bonus -= 1.5
        grouped = True  # "score per title": the title is the row ("'No' in health_ins" is not)
    if re.search(r"\d\s*$", before) or any(re.search(rf"\b{re.escape(v)}\s*$", before, re.I)
                                            for v in col.values if len(v) >= 3):
        bonus -= 1.5  # "a 1 carat stone", "an ideal cut": a given value, not the unknown
    elif re.match(r"(?!col(?:umn)?\b)[A-Za-z][\w.'-]*\s+\d", text[position:], re.I):
        bonus -= 1.5  # "model year 1953", "age 40": the text states its value
    if re.search(r"\b(?:which|who)\s+(?:\w+\s+){0,2}$", before, re.I) and re.match(r"[\w'-]*\s*[?;]", after):
        bonus += 2.0  # "which occupants die?": the question's last word is what it asks
    if re.match(r"[\w.'-]*\s+(?:as|into)\b", text[position:]) and re.search(
            r"\b(classif\w*|label|sort|split|group)\s+(?:the\s+|each\s+|all\s+)?$", before, re.I):
        bonus -= 2.5  # "classify reviews as great or other": reviews are the rows
    word_end = re.match(r"[\w.'-]*", text[position:])
    rest = text[position + (word_end.end() if word_end else 0):][:40]
    if _AFTER_CUE.match(rest):
        bonus += 2.0
    near = min((position - c for c in cues if c <= position
                and not re.search(r"[.;?!:]\s", text[c:position])), default=None)
    if grouped:
        near = None
    if near is not None and near <= 25:
        bonus += 2.5 - near / 20
    elif near is not None and near <= 80:
        bonus += 0.5
    if _listed_as_input(text, position, cues, inputs):
        return min(bonus, 0.0) - 3.0
    if re.search(r"\b(?:if|whether)\s+(?:a|an|the|this|each)\s+$", before) and re.match(
            r"[\w.'-]*\s+(?:is|was|has|gets|got)\b", after, re.I):
        bonus -= 2.0  # "predict if a review is 'great'": the review is the row
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
        if value.lower() in ("yes", "no", "1", "0", "true", "false", "t", "f", "y", "n"):
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
    if not integral:
        return "regression"
    named = [m for _, m, negated in find_metrics(text) if not negated]
    if named and named[0] in ("r2", "rmse", "mae"):
        return "regression"
    if named and col.n_unique <= 100:
        return "multiclass"  # integer codes scored by a classification metric
    if col.n_unique > 30:
        return "regression"
    if _SAYS_REGRESSION.search(text) and not _SAYS_CLASSIFY.search(text):
        return "regression"
    return "multiclass"


# ---------------------------------------------------------------- metric

_METRICS: list[tuple[str, str]] = [
    (r"macro[\s-]*(?:averaged\s+|avg\s+)?f1|f1[\s-]*macro|f1 (?:over|across|averaged over) (?:the|all|each)|"
     r"unweighted (?:mean|average) of (?:the )?(?:per[\s-]*class )?f1", "f1_macro"),
    (r"weighted[\s-]*f1|f1[\s-]*weighted", "f1_weighted"),
    (r"balanced[\s-]*acc(?:uracy|\.|\b)", "balanced_accuracy"),
    (r"\bau[\s-]?roc\b|\b(?:roc[\s-]*)?auc\b|\broc\b|area under (?:the )?(?:roc )?curve|c[\s-]statistic", "roc_auc"),  # noqa: E501
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
_RANKING = re.compile(r"\b(rank\w*|top[\s-]*(?:\d+|ranked|scored|n|k)|prioriti[sz]\w*|order (?:them|the \w+) by|"  # noqa: E501
                      r"most likely first|short[\s-]*list)\b", re.IGNORECASE)
_NEGATION_BEFORE = re.compile(r"(?:\bnot|\bnever|n't|\bno|\bignore|\bforget|\brather than|\binstead of|"
                              r"\bover|\bnot just|\bnot only|\bwithout|\bbut not)\s+(?:\w+\s+){0,3}$",
                              re.IGNORECASE)
_NEGATION_AFTER = re.compile(r"^\W*(?:is|are|would be|will be|'s)?\s*(?:\w+\s+){0,2}(?:meaningless|useless|"
                             r"misleading|pointless|not (?:useful|helpful|what)|irrelevant|no good|"
                             r"flatters|inflates|overstates|"
                             r"worthless|a bad (?:metric|choice)|makes? no sense|(?:does|do)n't make sense|wrong here)",  # noqa: E501
                             re.IGNORECASE)
# Later in the same clause, a metric judged useless: "accuracy would look great and tell me nothing".
_DISMISSED_LATER = re.compile(r"^[^.;!?]{0,40}?\b(?:tells?|say|says|shows?) (?:me |us |you |anyone )?"
                              r"(?:nothing|little)\b|^[^.;!?]{0,20}?\b(?:would|will|could) look "
                              r"(?:great|good|high|fine)\b", re.IGNORECASE)


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
                           or _NEGATION_AFTER.search(text[m.end(): m.end() + 40])
                           or _DISMISSED_LATER.search(text[m.end(): m.end() + 80]))
            out.append((m.start(), metric, negated))
    return sorted(out)


def decide_metric(text: str, kind: TaskType | None) -> tuple[str | None, bool]:
    """The metric the words ask for (negated mentions skipped), else the convention; named?"""
    for _, metric, negated in find_metrics(text):
        if negated:
            continue
        if kind == "multiclass" and metric == "f1":
            metric = "f1_macro"
        # a metric that does not fit the kind stays: the task check names the mismatch
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
    r"care (?:most )?about\s+(?:the\s+)?|detect(?:ing)?\s+(?:the\s+)?)"
    # "the ones who fail": the verb names the class, not "ones"
    r"(?:(?:ones|those|people|cases|rows)\s+(?:who|that|which)\s+(?:will\s+|would\s+|did\s+)?)?"
    r"['\"`]?([\w-]+)['\"`]?",
    re.IGNORECASE)
# Words for the class opposite to the one a column is named for: "the ones who fail" of a
# column named passed is its no class.
_OPPOSITE = {"fail": "pass", "fails": "pass", "failed": "pass", "failing": "pass",
             "failure": "pass", "die": "surviv", "died": "surviv", "dead": "surviv",
             "stay": "left", "stays": "left", "stayed": "left", "reject": "approv",
             "rejected": "approv", "lose": "win", "lost": "win", "uninsured": "insur"}
_NO_LIKE = ("no", "0", "false", "n", "negative", "neg", "f", "0.0")


# The class named before the words that make it positive: "with smokers as the positive class".
_POSITIVE_BEFORE = re.compile(r"['\"`]?([\w-]+)['\"`]?\s+(?:as|is|are)\s+(?:the\s+)?positive(?:\s+class)?\b",
                              re.IGNORECASE)


def _positive_phrases(text: str) -> list[tuple[int, str]]:
    """Each phrase the text names as the class that matters, with its place, in text order."""
    found = [(m.start(1), m.group(1)) for m in _POSITIVE.finditer(text)]
    found += [(m.start(1), m.group(1)) for m in _POSITIVE_BEFORE.finditer(text)
              if m.group(1).lower() not in ("class", "label", "one", "it", "that", "this")]
    return sorted(found)


def decide_positive_class(text: str, col: ColumnSummary) -> str | None:
    """The class the text cares about, as one of the target's values, else ``None``."""
    if col.n_unique != 2 or not col.values:
        return None
    for value in col.values:
        if re.search(rf"(?<![\w]){re.escape(col.name)}\s*==?\s*['\"`]?{re.escape(value)}(?![\w])",
                     text, re.IGNORECASE):
            return value
    for _, phrase in _positive_phrases(text):
        found = _class_for_phrase(phrase, col)
        if found is not None:
            return found
    return None


def _class_for_phrase(phrase: str, col: ColumnSummary) -> str | None:
    values = list(col.values)
    lowered = phrase.lower()
    for value in values:
        if value.lower() == lowered or re.sub(r"^\d+\.\s*", "", value.lower()) == lowered:
            return value
    for value in values:
        if len(value) >= 3 and stem(value) == stem(phrase):
            return value
    for value in values:
        if len(value) >= 3 and stem(value) in stems(phrase):
            return value  # "the fatalities" of a column whose classes are alive and dead
    opposite = _OPPOSITE.get(lowered)
    if opposite and any(stem(t).startswith(opposite) or (len(t) >= 3 and opposite.startswith(t))
                        for t in name_tokens(col.name)):
        for value in values:
            if _bare(value) in _NO_LIKE:
                return value
    # "the denials" of a yes/no column named deny: the word names the column, so the yes class;
    # so do a shortened word ("the survivors" of Survived) and a hyphenated one ("part-timers")
    joined = re.sub(r"[\s-]+", "", lowered)
    if (stem(phrase) in {stem(t) for t in name_tokens(col.name)} or lowered in ("positives", "ones")
            or _fits(lowered, col.name) or stem(joined) == stem("".join(name_tokens(col.name)))):
        for value in values:
            if _bare(value) in _YES_LIKE:
                return value
    return None


def _bare(value: str) -> str:
    """A class label without a numbered prefix, lower case: "2. No" is "no"."""
    return re.sub(r"^\d+\.\s*", "", value.lower())


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
                 r"machine learning|ml|tell (?:if|whether|apart)|tell \w+(?: \w+)? from|"
                 r"tell (?:\w+ ){1,4}apart|separat\w+|"
                 r"distinguish|detect\w*|flag\w*|screen\w*|recogni[sz]\w*|identif\w*|likely|pricing|"
                 r"which \w+(?: \w+)? (?:will|would|are likely|is likely)|will\b|whether|guess|"
                 r"score|f1|auc|rmse|mae|accuracy|target|label)\b", re.IGNORECASE)
_DESCRIPTIVE = re.compile(r"\b(bar chart|chart|plot|histogram|cross[\s-]*tab\w*|pivot|were there|"
                          r"share of|proportion of|percentage of|correlat\w+|average|median|mean of|"
                          r"count (?:the|of)|list the|show me)\b", re.IGNORECASE)
_STRONG_ML = re.compile(r"\b(predict\w*|forecast\w*|classif\w*|model\w*|estimat\w*|regress\w*|train\w*|"
                        r"guess\w*|"
                        r"will\b|whether|tell (?:if|whether))", re.IGNORECASE)
# "no model", "without any machine learning": an ML word the text turns down says "not ML".
_REFUSED_ML = re.compile(r"\b(?:no|not an?|not any|without(?: an?| any)?|(?:don't|do not) (?:need|want)"
                         r"(?: an?| any)?)\s+(?:model\w*|machine learning|ml|predictions?|training)\b", re.I)
_CLOSE = 1.0
# The words the rules key on, so that a slip in one ("predcit", "whcih") still reads as it.
_KEY_WORDS = ("predict", "forecast", "estimate", "classify", "which", "whether", "accuracy",
              "precision", "recall", "balanced", "features", "absolute", "squared")


def read_request(text: str, columns: list[ColumnSummary]) -> RequestReading:
    """The rules' reading of ``text`` against ``columns``; a question when they cannot tell."""
    text = respell(text, columns)
    plain = _REFUSED_ML.sub(" ", text)
    if _NOT_ML.search(text) and not re.search(r"\b(predict\w*|forecast\w*|classif\w*|model)\b",
                                              plain, re.IGNORECASE):
        return RequestReading(is_ml=False)
    if _DESCRIPTIVE.search(text) and not _STRONG_ML.search(plain):
        return RequestReading(is_ml=False)
    if not (_ML.search(plain) or "?" in text or _RANKING.search(text)
            or any(not negated for _, _, negated in find_metrics(text))):
        return RequestReading(is_ml=False)
    candidates = score_targets(text, columns)
    time_ordered = asks_for_forecast(text) and any(c.datetime or is_time_name(c.name)
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
    text = respell(text, columns)
    col = next(c for c in columns if c.name == target)
    kind = decide_kind(text, col)
    metric, named = decide_metric(text, kind)
    positive = decide_positive_class(text, col) if kind == "binary" else None
    if kind == "binary" and positive is None and metric in ("roc_auc", "f1", "precision", "recall",
                                                            "log_loss"):
        positive = _mentioned_first(text, col) or _yes_value(col) or minority_class(col)
    return reading.model_copy(update={"target": target, "task_type": kind, "metric": metric,
                                      "metric_named": named, "positive_class": positive,
                                      "question": None})


def respell(text: str, columns: list[ColumnSummary] | None = None) -> str:
    """``text`` with slips in the rules' key words put right: one edit in a word of five letters
    or more ("predcit", "whcih"), but never a key word itself, an inflection of one, nor a word
    of a column's name."""
    protected = {t for c in columns or [] for t in [c.name.lower(), *name_tokens(c.name)]}

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        lowered = word.lower()
        if (len(word) < 5 or lowered in protected
                or any(lowered.startswith(k) or k.startswith(lowered) for k in _KEY_WORDS)):
            return word  # the word itself, or an inflection of it ("estimated", "features")
        near = [k for k in _KEY_WORDS if abs(len(k) - len(word)) <= 1 and _edit_distance(lowered, k) == 1]
        return near[0] if len(near) == 1 else word
    return re.sub(r"[A-Za-z]+", fix, text)


def prompt_columns(columns: list[str] | list[ColumnSummary], max_chars: int = 4000) -> list[str]:
    """Column names for a prompt, bounded: a wide table keeps its first and last names."""
    names = [c.name if isinstance(c, ColumnSummary) else str(c) for c in columns]
    names = [n[:40] for n in names]
    if sum(len(n) + 3 for n in names) <= max_chars:
        return names
    keep: list[str] = []
    for head, tail in zip(names, reversed(names), strict=True):
        if sum(len(n) + 3 for n in keep) + len(head) + len(tail) + 6 > max_chars - 40:
            break
        keep = keep[: len(keep) // 2] + [head, tail] + keep[len(keep) // 2:]
    half = len(keep) // 2
    return keep[:half] + [f"... {len(names) - len(keep)} more columns ..."] + keep[half:]


_CONVENTIONAL = re.compile(r"^(target|label|labels|class|y|outcome|response)$", re.IGNORECASE)


def _choose(candidates: list[Candidate], columns: list[ColumnSummary]) -> tuple[str | None, str | None]:
    alone = len(candidates) == 1 or (len(candidates) > 1 and candidates[1].score <= 0.5)
    if candidates and (candidates[0].score >= 2.0 or (alone and candidates[0].score >= 1.5)):
        best = candidates[0]
        if len(candidates) < 2 or best.score - candidates[1].score >= _CLOSE:
            return best.column, None
        return None, ask_which([best.column, candidates[1].column])
    names = {c.name.lower() for c in columns}
    conventional = [c.name for c in columns if _CONVENTIONAL.match(c.name) and c.n_unique >= 2
                    and not (c.name.lower() == "y" and {"x", "z"} & names)]
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
