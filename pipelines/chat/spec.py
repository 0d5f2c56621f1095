"""The task a chat is building: what is settled, what to ask, and the text a run gets."""

from __future__ import annotations

from typing import Any

import pandas as pd

from hyperpilot.agents.data_agent import (
    choose_metric,
    choose_positive_class,
    conventional_target,
    resolve_task_type,
)
from hyperpilot.agents.request import RequestDraft
from hyperpilot.pipelines.chat.session import DEFAULT_TRIALS, ChatState
from hyperpilot.tools.data import bundled_target, profile_table
from hyperpilot.tools.evaluate import get_metric


def settled(draft: RequestDraft) -> dict[str, Any]:
    """The parts of the task a request draft states (the others stay as they were)."""
    stated = {"target": draft.target, "metric": draft.metric,
              "positive_class": draft.positive_class}
    return {key: str(value) for key, value in stated.items() if value is not None}


def target_of(state: ChatState, frame: pd.DataFrame) -> str | None:
    """The target when it can be inferred: said, declared by a bundled set, or named like one."""
    return state.get("target") or bundled_target(state["data"]) or conventional_target(frame)


def preview(state: ChatState, frame: pd.DataFrame, target: str) -> dict[str, Any]:
    """The task as it would run; ``TaskSpecError`` when a stated part does not fit the data."""
    task_type = resolve_task_type(None, frame[target])
    profile = profile_table(frame, target, task_type)
    metric = choose_metric(state.get("metric"), profile)
    positive = choose_positive_class(state.get("positive_class"), profile)
    return {"data": state["data"], "rows": len(frame), "target": target, "task_type": task_type,
            "metric": metric, "direction": get_metric(metric).direction,
            "positive_class": positive, "trials": state.get("trials", DEFAULT_TRIALS),
            "features": len(profile.features)}


def run_text(spec: dict[str, Any]) -> str:
    """The task sentence a run gets: every settled part said explicitly."""
    text = f"predict the column '{spec['target']}', optimise {spec['metric'].replace('_', ' ')}"
    if spec["positive_class"] is not None:
        text += f", positive class is {spec['positive_class']}"
    return text


def spec_lines(spec: dict[str, Any]) -> list[tuple[str, str]]:
    positive = (f", positive class {spec['positive_class']}"
                if spec["positive_class"] is not None else "")
    return [("data", f"{spec['data']} ({spec['rows']} rows, {spec['features']} usable features)"),
            ("target", f"{spec['target']} ({spec['task_type']})"),
            ("metric", f"{spec['metric']} ({spec['direction']}){positive}"),
            ("budget", f"{spec['trials']} trials")]
