"""The data agent: choose the target, resolve the task type and metric, profile, screen leakage."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from hyperpilot.agents.request import RequestDraft, match_column
from hyperpilot.agents.request_reading import prompt_columns, score_targets, summarise_table
from hyperpilot.agents.runner import AgentSpec, Decision, decide
from hyperpilot.tools.data import (
    bundled_target,
    column_kind,
    infer_task_type,
    profile_table,
    single_feature_leakage,
    split_holdout,
)
from hyperpilot.tools.errors import DataError, TaskSpecError
from hyperpilot.tools.evaluate import get_metric
from hyperpilot.tools.time_order import time_column
from hyperpilot.tools.types import Budget, Constraints, DataProfile, TaskSpec, TaskType


class TargetChoice(BaseModel):
    target: str
    reason: str = ""


TARGET_AGENT = AgentSpec(name="data", prompt="data.j2", output_type=TargetChoice)
_TARGET_NAMES = re.compile(r"^(target|label|labels|class|y|outcome|response|churn\w*|default|"
                           r"survived|is_\w+|has_\w+|price|salary|income|sales|diagnosis)$",
                           re.IGNORECASE)


def choose_target(text: str, draft: RequestDraft, frame: pd.DataFrame, source: str,
                  llm: object | None) -> Decision[str]:
    """The column to predict: named in the text, declared by a bundled set, or inferred."""
    columns = [str(c) for c in frame.columns]
    if draft.target is not None:
        return Decision(draft.target, "request", f"named in the task: '{draft.target}'")
    declared = bundled_target(source)
    if declared is not None:
        return Decision(declared, "dataset", f"the declared target of {source}")
    inputs = {"text": text, "columns": column_cards(frame)}
    return decide(TARGET_AGENT, inputs, llm,  # type: ignore[arg-type]
                  accept=lambda choice: _supported(_known_column(choice.target, columns), text,
                                                   frame),
                  rules=lambda: infer_target_rules(frame))


def _known_column(name: str, columns: list[str]) -> str:
    if name in columns:
        return name
    matched = match_column(name, columns)
    if matched is None:
        raise ValueError(f"'{name}' is not a column")
    return matched


def _supported(target: str, text: str, frame: pd.DataFrame) -> str:
    """The LLM's target, if the task text points at it (the rules' scores) or the rules
    would pick it from the data; the data's own text (a column named like an order to the
    LLM) must not choose what is predicted."""
    pointed = {c.column for c in score_targets(text, summarise_table(frame))}
    try:
        guessed = {infer_target_rules(frame)}
    except DataError:
        guessed = set()
    if target in pointed | guessed:
        return target
    raise ValueError(f"'{target}' is neither pointed at by the task text nor the rules' choice")


def column_cards(frame: pd.DataFrame, max_chars: int = 1000) -> list[dict[str, object]]:
    """A card per column for the prompt, bounded: a wide table keeps its first and last
    columns (``prompt_columns`` chooses them) and one line saying how many were left out;
    example values are cut to 20 characters, real numbers to 4 significant digits."""
    by_name = {str(c)[:40]: c for c in frame.columns}
    cards: list[dict[str, object]] = []
    for name in prompt_columns([str(c) for c in frame.columns], max_chars=max_chars):
        column = by_name.get(name)
        if column is None:  # the "... N more columns ..." marker
            cards.append({"name": name, "omitted": True})
            continue
        values = frame[column].dropna().unique()[:3]
        cards.append({"name": name, "kind": column_kind(frame[column]),
                      "n_unique": int(frame[column].nunique()),
                      "examples": [_example(v) for v in values]})
    return cards


def _example(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    return str(value)[:20]


def conventional_target(frame: pd.DataFrame) -> str | None:
    """The first column named like a target ("label", "churn", "is_fraud", ...), or ``None``."""
    for col in frame.columns:
        if _TARGET_NAMES.match(str(col)) and frame[col].nunique() >= 2:
            return str(col)
    return None


def infer_target_rules(frame: pd.DataFrame) -> str:
    """The rule-based guess: a conventionally named column, else the last usable column."""
    named = conventional_target(frame)
    if named is not None:
        return named
    for col in reversed(frame.columns):
        if column_kind(frame[col]) in ("numeric", "categorical", "boolean"):
            return str(col)
    raise DataError("cannot tell which column to predict; name it in the task text")


def resolve_task_type(hint: str | None, y: pd.Series) -> TaskType:
    """The task type from the data, honouring what the text says when the data allows it."""
    inferred = infer_task_type(y.dropna())
    if hint is None or hint == inferred:
        return inferred
    n_unique = int(y.nunique())
    if hint == "regression":
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            raise TaskSpecError(f"the task asks for regression but target '{y.name}' is not numeric")
        return "regression"
    if hint in ("classification", "binary", "multiclass"):
        if inferred == "regression" and n_unique > 50:
            raise TaskSpecError(f"the task asks for classification but target '{y.name}' has "
                                f"{n_unique} distinct numeric values")
        return "binary" if n_unique == 2 else "multiclass"
    return inferred


def choose_metric(requested: str | None, profile: DataProfile) -> str:
    """The metric the text named, or a sensible default for the task and class balance."""
    if requested is not None:
        metric = get_metric(requested)
        if profile.task_type not in metric.task_types:
            raise TaskSpecError(f"metric '{requested}' does not fit a {profile.task_type} task; "
                                f"use one of {sorted(metrics_for(profile.task_type))}")
        return requested
    if profile.task_type == "regression":
        return "r2"
    return "f1_macro" if profile.imbalance_ratio > 3 else "accuracy"


def metrics_for(task_type: TaskType) -> list[str]:
    from hyperpilot.tools.evaluate import METRICS

    return [name for name, m in METRICS.items() if task_type in m.task_types]


def choose_positive_class(requested: str | None, profile: DataProfile) -> str | None:
    """For binary tasks: the class the text names, else the minority class."""
    if profile.task_type != "binary":
        return None
    classes = list(profile.class_counts)
    if requested is not None:
        for cls in classes:
            if cls.lower() == str(requested).lower():
                return cls
        raise TaskSpecError(f"positive class '{requested}' is not a class of "
                            f"'{profile.target}' ({classes})")
    return min(classes, key=lambda c: (profile.class_counts[c], c))


@dataclass(frozen=True)
class PreparedData:
    """What the data agent settled: the task, the profile (leaking features out), the split."""

    task: TaskSpec
    profile: DataProfile
    train: list[int]
    holdout: list[int]
    target: Decision[str]


def prepare_data(text: str, draft: RequestDraft, frame: pd.DataFrame, source: str,
                 budget: Budget, seed: int, llm: object | None) -> PreparedData:
    """Choose the target, type and metric, profile the table, split off the holdout once and
    drop the features that alone predict the target on the training rows. A time-ordered
    task (``time_order.time_column``) holds out its latest rows.

    Raises ``HyperpilotError`` (a ``TaskSpecError`` or ``DataError``) for a request the data
    cannot serve.
    """
    choice = choose_target(text, draft, frame, source, llm)
    target = choice.value
    if target not in frame.columns:
        raise DataError(f"target column '{target}' not found; columns are {list(frame.columns)}")
    task_type = resolve_task_type(draft.task_type, frame[target])
    profile = profile_table(frame, target, task_type)
    metric = choose_metric(draft.metric, profile)
    ordered_by = time_column(text, profile, frame)
    train, holdout = split_holdout(frame, target, task_type, seed=seed, time_column=ordered_by)
    leakage = single_feature_leakage(frame.iloc[train], target, profile.features, task_type,
                                     seed=seed)
    profile = profile.model_copy(update={
        "features": [f for f in profile.features if f not in leakage], "leakage": leakage})
    positive = _actual_label(choose_positive_class(draft.positive_class, profile), frame[target])
    task = TaskSpec(
        text=text, task_type=task_type, target=target, metric=metric,
        direction=get_metric(metric).direction, data_source=source, positive_class=positive,
        budget=budget,
        constraints=Constraints(max_latency_ms=draft.max_latency_ms,
                                max_features=draft.max_features, max_model_mb=draft.max_model_mb,
                                interpretable=draft.interpretable),
        time_column=ordered_by)
    return PreparedData(task=task, profile=profile, train=train, holdout=holdout, target=choice)


def _actual_label(label: str | None, y: pd.Series) -> Any:
    """Profiles key classes by their text; metrics need the label with its real type."""
    if label is None:
        return None
    for value in y.dropna().unique():
        if str(value) == label:
            return value.item() if isinstance(value, np.generic) else value
    return label


def without_columns(profile: DataProfile, drop: list[str]) -> DataProfile:
    """The profile with ``drop`` (features in use) left out on the user's request."""
    already = {c: profile.dropped.get(c) or profile.leakage.get(c) for c in drop
               if c in profile.dropped or c in profile.leakage}
    if already:
        reasons = "; ".join(f"'{c}' ({why})" for c, why in already.items())
        raise TaskSpecError(f"already left out of this run: {reasons}")
    unknown = [c for c in drop if c not in profile.features]
    if unknown:
        raise TaskSpecError(f"{unknown} not among the features in use: {profile.features}")
    features = [f for f in profile.features if f not in drop]
    if not features:
        raise TaskSpecError("dropping those columns leaves no feature to train on")
    dropped = {**profile.dropped, **{c: "left out on request" for c in drop}}
    return profile.model_copy(update={"features": features, "dropped": dropped})
