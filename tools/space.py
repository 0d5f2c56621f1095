"""Typed search spaces: sampling, validation with repair, and a numeric encoding for surrogates.

Conditional dimensions: a dimension with a ``condition`` is *active* only when its parent
(an earlier dimension) takes one of the listed values. An inactive parameter is **absent**
from the config, as in Optuna: ``sample`` and ``decode`` leave it out, ``repair`` drops it,
``key`` ignores it, and ``encode`` writes a fixed neutral value (0.5, or an all-zero one-hot)
in its slots so every config has a vector of the same width.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from hyperpilot.tools.types import Config

Choice = str | int | float | bool | None
INACTIVE_UNIT = 0.5  # the encoded value of an inactive numeric dimension


def same_choice(a: Any, b: Any) -> bool:
    """Equal by value and type: 1, 1.0 and True are different choices."""
    return bool(a == b) and type(a) is type(b)


class Condition(BaseModel):
    """Active only when ``parent`` is present and equals one of ``values``."""

    parent: str
    values: list[Choice] = Field(min_length=1)

    def holds(self, config: Config) -> bool:
        return self.parent in config and any(same_choice(config[self.parent], v)
                                             for v in self.values)

    def describe(self) -> str:
        return f"only when {self.parent} is " + " or ".join(repr(v) for v in self.values)


def _snap(value: float, low: float, high: float, step: float) -> float:
    """``value`` moved to the nearest point of the grid low, low + step, ... <= high."""
    last = math.floor((high - low) / step + 1e-9)
    index = min(max(round((value - low) / step), 0), last)
    return low + index * step


def _check_number(name: str, value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


class FloatDim(BaseModel):
    kind: Literal["float"] = "float"
    name: str
    low: float
    high: float
    log: bool = False
    step: float | None = None
    condition: Condition | None = None

    @model_validator(mode="after")
    def _check(self) -> FloatDim:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(f"bad float range for {self.name}: [{self.low}, {self.high}]")
        if self.step is not None and (self.step <= 0 or self.log):
            raise ValueError(f"{self.name}: step must be positive and not on a log scale")
        return self

    def sample(self, rng: np.random.Generator) -> float:
        if self.step is not None:
            points = math.floor((self.high - self.low) / self.step + 1e-9) + 1
            return self.repair(self.low + int(rng.integers(points)) * self.step)
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def repair(self, value: Any) -> float:
        number = min(max(_check_number(self.name, value, "a number"), self.low), self.high)
        if self.step is not None:
            number = round(_snap(number, self.low, self.high, self.step), 12)
        return float(number)

    def encode(self, value: Any) -> list[float]:
        lo, hi, v = self.low, self.high, float(value)
        if self.log:
            lo, hi, v = math.log(lo), math.log(hi), math.log(v)
        return [(v - lo) / (hi - lo)]

    def decode(self, unit: list[float]) -> float:
        u = min(max(unit[0], 0.0), 1.0)
        if self.log:
            return self.repair(math.exp(math.log(self.low) + u * (math.log(self.high)
                                                                  - math.log(self.low))))
        return self.repair(self.low + u * (self.high - self.low))

    @property
    def width(self) -> int:
        return 1

    def describe(self) -> str:
        from hyperpilot.tools.space_text import describe_dim

        return describe_dim(self)


class IntDim(BaseModel):
    kind: Literal["int"] = "int"
    name: str
    low: int
    high: int
    log: bool = False
    step: int = 1
    condition: Condition | None = None

    @model_validator(mode="after")
    def _check(self) -> IntDim:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(f"bad int range for {self.name}: [{self.low}, {self.high}]")
        if self.step < 1 or (self.log and self.step != 1):
            raise ValueError(f"{self.name}: step must be at least 1, and 1 on a log scale")
        return self

    def _continuous(self) -> FloatDim:
        # Each grid point owns an equal slice of the (log) line, so rounding is unbiased.
        if self.log:
            return FloatDim(name=self.name, low=max(self.low - 0.5, self.low / 2), high=self.high + 0.5,
                            log=True)
        last = int(_snap(self.high, self.low, self.high, self.step))
        return FloatDim(name=self.name, low=self.low - self.step / 2, high=last + self.step / 2)

    def sample(self, rng: np.random.Generator) -> int:
        return self.repair(self._continuous().sample(rng))

    def repair(self, value: Any) -> int:
        number = min(max(_check_number(self.name, value, "an integer"), self.low), self.high)
        return int(round(_snap(number, self.low, self.high, self.step)))

    def encode(self, value: Any) -> list[float]:
        return self._continuous().encode(float(value))

    def decode(self, unit: list[float]) -> int:
        return self.repair(self._continuous().decode(unit))

    @property
    def width(self) -> int:
        return 1

    def describe(self) -> str:
        from hyperpilot.tools.space_text import describe_dim

        return describe_dim(self)


class CategoricalDim(BaseModel):
    kind: Literal["categorical"] = "categorical"
    name: str
    choices: list[Choice]
    condition: Condition | None = None

    @model_validator(mode="after")
    def _check(self) -> CategoricalDim:
        if len(self.choices) < 1:
            raise ValueError(f"{self.name} needs at least one choice")
        return self

    def sample(self, rng: np.random.Generator) -> Choice:
        return self.choices[int(rng.integers(len(self.choices)))]

    def repair(self, value: Any) -> Choice:
        for choice in self.choices:
            if same_choice(value, choice):
                return choice
        for choice in self.choices:  # "None" / "true" / "5" from text become the typed choice
            if str(value).lower() == str(choice).lower():
                return choice
        raise ValueError(f"{self.name} must be one of {self.choices}, got {value!r}")

    def encode(self, value: Any) -> list[float]:
        chosen = self.repair(value)
        index = next(i for i, c in enumerate(self.choices) if same_choice(c, chosen))
        return [1.0 if i == index else 0.0 for i in range(len(self.choices))]

    def decode(self, unit: list[float]) -> Choice:
        return self.choices[int(np.argmax(unit))]

    @property
    def width(self) -> int:
        return len(self.choices)

    def describe(self) -> str:
        from hyperpilot.tools.space_text import describe_dim

        return describe_dim(self)


Dimension = Annotated[FloatDim | IntDim | CategoricalDim, Field(discriminator="kind")]
AnyDim = FloatDim | IntDim | CategoricalDim


class SearchSpace(BaseModel):
    """An ordered set of named dimensions. Configs are plain dicts of Python scalars;
    a conditional dimension's parent must come before it."""

    dims: list[Dimension] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> SearchSpace:
        names = [d.name for d in self.dims]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate dimension names in {names}")
        for i, dim in enumerate(self.dims):
            if dim.condition is not None and dim.condition.parent not in names[:i]:
                raise ValueError(f"{dim.name}: condition parent {dim.condition.parent!r} "
                                 "must be a dimension listed before it")
        return self

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dims]

    @property
    def conditional(self) -> bool:
        return any(d.condition is not None for d in self.dims)

    def __getitem__(self, name: str) -> AnyDim:
        for dim in self.dims:
            if dim.name == name:
                return dim
        raise KeyError(name)

    def sample(self, rng: np.random.Generator) -> Config:
        out: Config = {}
        for dim in self.dims:
            if dim.condition is None or dim.condition.holds(out):
                out[dim.name] = dim.sample(rng)
        return out

    def active(self, config: Config) -> list[str]:
        """Names of the dimensions active under ``config`` (parents decide, in order)."""
        seen: Config = {}
        for dim in self.dims:
            if (dim.condition is None or dim.condition.holds(seen)) and dim.name in config:
                seen[dim.name] = config[dim.name]
        return list(seen)

    def repair(self, config: dict[str, Any], fill: Config | None = None) -> Config:
        """Clip, round and type-cast ``config`` into the space; inactive parameters are dropped.

        Unknown keys or invalid categorical values raise ``ValueError``; missing active keys
        are taken from ``fill`` when given, else they raise too.
        """
        unknown = set(config) - set(self.names)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}")
        out: Config = {}
        for dim in self.dims:
            if dim.condition is not None and not dim.condition.holds(out):
                continue
            if dim.name in config:
                out[dim.name] = dim.repair(config[dim.name])
            elif fill is not None and dim.name in fill:
                out[dim.name] = dim.repair(fill[dim.name])
            else:
                raise ValueError(f"missing parameter {dim.name}")
        return out

    def contains(self, config: Config) -> bool:
        try:
            return self.repair(config) == config
        except ValueError:
            return False

    @property
    def width(self) -> int:
        return sum(d.width for d in self.dims)

    def encode(self, config: Config) -> np.ndarray:
        """Map a config to a vector in the unit cube (categoricals one-hot; inactive
        dimensions at ``INACTIVE_UNIT`` or an all-zero one-hot)."""
        parts: list[float] = []
        for dim in self.dims:
            if dim.name in config:
                parts.extend(dim.encode(config[dim.name]))
            elif isinstance(dim, CategoricalDim):
                parts.extend([0.0] * dim.width)
            else:
                parts.append(INACTIVE_UNIT)
        return np.asarray(parts, dtype=float)

    def decode(self, vector: np.ndarray) -> Config:
        out: Config = {}
        start = 0
        for dim in self.dims:
            if dim.condition is None or dim.condition.holds(out):
                out[dim.name] = dim.decode([float(x) for x in vector[start:start + dim.width]])
            start += dim.width
        return out

    def key(self, config: Config) -> str:
        """A canonical string for duplicate detection (floats to 6 significant digits);
        parameters absent from ``config`` (inactive ones) are left out."""
        parts = []
        for name in self.names:
            if name not in config:
                continue
            value = config[name]
            parts.append(f"{name}={value:.6g}" if isinstance(value, float) else f"{name}={value!r}")
        return ",".join(parts)

    def describe(self) -> str:
        return "\n".join(d.describe() for d in self.dims)
