"""Search spaces as prompt text, and LLM proposals parsed back into the space.

The text follows LLAMBO: each range states its type, bounds, scale and precision
("C: float in [1, 1000], log scale, 3 significant digits"), values in histories are
written with that precision, and a config reads "C is 12.3, kernel is 'rbf'".
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from hyperpilot.tools.space import AnyDim, CategoricalDim, FloatDim, IntDim, SearchSpace
from hyperpilot.tools.types import Config

SIGNIFICANT = 3  # digits shown for log-scale floats
OUT_OF_RANGE_SLACK = 0.05  # share of the (log) range a proposal may overshoot and be clipped


class ProposalRejected(ValueError):
    """An LLM proposal that cannot be repaired into the space, or repeats a tried config."""


def decimals(dim: FloatDim) -> int:
    """Decimal places that resolve ``dim``: those of its step, else ~3 digits of its range."""
    if dim.step is not None:
        text = f"{dim.step:.10f}".rstrip("0")
        return len(text.split(".")[1]) if "." in text else 0
    return max(0, 3 - math.floor(math.log10(dim.high - dim.low)))


def format_value(dim: AnyDim, value: Any) -> str:
    """``value`` as the prompt shows it: fixed decimals, or significant digits on a log scale."""
    if isinstance(dim, CategoricalDim):
        return repr(value)
    if isinstance(dim, IntDim):
        return str(int(value))
    if dim.log and dim.step is None:
        return f"{float(value):.{SIGNIFICANT}g}"
    return f"{float(value):.{decimals(dim)}f}"


def describe_dim(dim: AnyDim) -> str:
    """One line: name, type, range, scale, precision and the condition that activates it."""
    if isinstance(dim, CategoricalDim):
        text = f"{dim.name}: one of {dim.choices}"
    elif isinstance(dim, IntDim):
        step = f", step {dim.step}" if dim.step != 1 else ""
        text = f"{dim.name}: integer in [{dim.low}, {dim.high}]{step}" + (
            ", log scale" if dim.log else "")
    elif dim.log:
        text = (f"{dim.name}: float in [{dim.low:g}, {dim.high:g}], log scale, "
                f"{SIGNIFICANT} significant digits")
    else:
        step = f", step {dim.step:g}" if dim.step is not None else ""
        text = f"{dim.name}: float in [{dim.low:g}, {dim.high:g}]{step}, {decimals(dim)} decimals"
    return text + (f" ({dim.condition.describe()})" if dim.condition is not None else "")


def serialise_config(space: SearchSpace, config: Config) -> str:
    """LLAMBO's fixed text form of a config, in the space's order: ``depth is 7, C is 12.3``."""
    return ", ".join(f"{dim.name} is {format_value(dim, config[dim.name])}"
                     for dim in space.dims if dim.name in config)


def parse_proposal(space: SearchSpace, raw: Any, tried: Collection[str] = (),
                   fill: Config | None = None) -> Config:
    """A config repaired into ``space`` from an LLM's answer, or ``ProposalRejected``.

    Repaired: numbers given as text, small overshoots (clipped), off-grid values (rounded),
    parameters the config makes inactive (dropped). Rejected: not a mapping, unknown keys,
    wrong types, values far out of range, missing parameters (unless in ``fill``), and
    configs whose ``space.key`` is in ``tried``.
    """
    if not isinstance(raw, dict):
        raise ProposalRejected(f"a configuration must be an object, got {type(raw).__name__}")
    try:
        config = space.repair(raw, fill=fill)
    except ValueError as err:
        raise ProposalRejected(str(err)) from None
    for name in config:
        if name in raw:
            _check_range(space[name], raw[name])
    if space.key(config) in tried:
        raise ProposalRejected(f"already tried: {serialise_config(space, config)}")
    return config


def _check_range(dim: AnyDim, value: Any) -> None:
    if isinstance(dim, CategoricalDim) or isinstance(value, bool):
        return
    try:
        number = float(value)
    except (TypeError, ValueError):
        return  # the dimension's own repair names the wrong type
    low, high = float(dim.low), float(dim.high)
    if dim.log:
        if number <= 0:
            raise ProposalRejected(f"{dim.name}={value!r} is outside [{dim.low}, {dim.high}]")
        low, high, number = math.log(low), math.log(high), math.log(number)
    slack = OUT_OF_RANGE_SLACK * (high - low)
    if not low - slack <= number <= high + slack:
        raise ProposalRejected(f"{dim.name}={value!r} is outside [{dim.low}, {dim.high}]")


def parse_proposals(space: SearchSpace, raws: list[Any], tried: Collection[str] = (),
                    fill: Config | None = None) -> tuple[list[Config], list[str]]:
    """Every usable, mutually distinct proposal, and why each other one was dropped."""
    seen = set(tried)
    kept: list[Config] = []
    dropped: list[str] = []
    for raw in raws:
        try:
            config = parse_proposal(space, raw, seen, fill)
        except ProposalRejected as err:
            dropped.append(str(err))
            continue
        seen.add(space.key(config))
        kept.append(config)
    return kept, dropped
