"""Whether a task's rows are ordered in time, and by which column. No LLM here.

A task is time-ordered when the table has a date column and either the text asks for a
forecast ("forecast", "later dates", "train on the past", "most recent", ...) or the
target is a series: one row per date, the dates strictly increasing down the file. A text
that asks for a forecast on a table with no date column is ordered by a number named for a
point in time ("year", "pan_day"), when there is one.
"""

from __future__ import annotations

import re
import warnings

import pandas as pd

from hyperpilot.tools.types import DataProfile

# The words of a text that asks to learn from earlier rows and be judged on later ones.
_FORECAST = re.compile(
    r"\b(forecast\w*|time[\s-]*(?:series|ordered|order)|later dates?|future|upcoming|most recent|"
    r"latest|over time|(?:date|calendar|time) order|in time order|chronolog\w*|"
    r"(?:train|learn|fit)\w*\s+(?:only\s+)?on\s+(?:the\s+)?(?:past|earlier|older|first|history|"
    r"historical|\d{4}\b)|"
    r"(?:test|score|evaluat|check|validat)\w*\s+on\s+(?:the\s+)?(?:later|latest|last|final|"
    r"most recent|newest|\d{4}\b)|"
    r"(?:next|coming|upcoming|following) (?:days?|weeks?|months?|quarters?|years?))",
    re.IGNORECASE)
_DATE_NAME = re.compile(r"(^|_)(date|day|time|timestamp|datetime|period|month)s?($|_)",
                        re.IGNORECASE)
# Words of a column name that make it a point in time, singular: "days_employed" and
# "years_experience" are durations, and "day of week" is a cycle, not an order.
_TIME_WORDS = {"date", "day", "time", "timestamp", "datetime", "period", "month", "week", "year",
               "yr", "quarter"}


def is_time_name(name: str) -> bool:
    """True when a column's name says it holds a point in time ("date", "year", "pan_day").

    Args:
        name: the column name.
    """
    words = [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)]
    return bool(_TIME_WORDS & set(words)) and "of" not in words


def asks_for_forecast(text: str) -> bool:
    """True when ``text`` speaks of predicting later times from earlier ones.

    Args:
        text: the user's task sentence.
    """
    return bool(_FORECAST.search(text))


def time_column(text: str, profile: DataProfile, frame: pd.DataFrame) -> str | None:
    """The date column to split by in time order, or ``None`` for an unordered task.

    Args:
        text: the user's task sentence.
        profile: the data profile; its ``datetime`` columns are the candidates.
        frame: the whole table, to see whether a candidate orders the rows.
    """
    dates = [c.name for c in profile.columns
             if c.kind == "datetime" and c.name != profile.target]
    if not dates and asks_for_forecast(text):
        # "fit on the earlier years": a year or day number orders the rows when asked to
        dates = [c.name for c in profile.columns if c.kind == "numeric" and c.name != profile.target
                 and is_time_name(c.name) and c.name in profile.features]
    if not dates:
        return None
    dates = sorted(dates, key=lambda name: not _DATE_NAME.search(name))  # stable: file order
    if asks_for_forecast(text):
        return dates[0]
    for name in dates:
        if _is_series_index(frame[name]):
            return name
    return None


def _is_series_index(column: pd.Series) -> bool:
    parsed = as_dates(column)
    return bool(parsed.notna().all() and parsed.is_monotonic_increasing and parsed.is_unique)


def as_dates(column: pd.Series) -> pd.Series:
    """``column`` parsed as dates; values that do not parse are missing.

    Args:
        column: a date column, parsed or as text.
    """
    if pd.api.types.is_datetime64_any_dtype(column):
        return column
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.to_datetime(column.astype(object), errors="coerce", format="mixed")
