"""Whether a task's rows are ordered in time, and by which column. No LLM here.

A task is time-ordered when the table has a date column and either the text asks for a
forecast ("forecast", "later dates", "train on the past", "most recent", ...) or the
target is a series: one row per date, the dates strictly increasing down the file.
"""

from __future__ import annotations

import re
import warnings

import pandas as pd

from hyperpilot.tools.types import DataProfile

_FORECAST = re.compile(
    r"\b(forecast\w*|time[- ]series|later dates?|future|upcoming|most recent|latest|"
    r"(train|learn)\w* on (the )?(past|earlier|history|historical)|"
    r"(next|coming) (day|week|month|quarter|year)s?|in time order|chronolog\w*)\b",
    re.IGNORECASE)
_DATE_NAME = re.compile(r"(^|_)(date|day|time|timestamp|datetime|period|month)s?($|_)",
                        re.IGNORECASE)


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
