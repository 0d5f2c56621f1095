"""Typed search spaces: sampling, validation with repair, and a numeric encoding for surrogates."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from hyperpilot.tools.types import Config

Choice = str | int | float | bool | None


class FloatDim(BaseModel):
    kind: Literal["float"] = "float"
    name: str
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> FloatDim:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(f"bad float range for {self.name}: [{self.low}, {self.high}]")
        return self

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def repair(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{self.name} must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{self.name} must be finite, got {value!r}")
        return float(min(max(number, self.low), self.high))

    def encode(self, value: Any) -> list[float]:
        lo, hi, v = self.low, self.high, float(value)
        if self.log:
            lo, hi, v = math.log(lo), math.log(hi), math.log(v)
        return [(v - lo) / (hi - lo)]

    def decode(self, unit: list[float]) -> float:
        u = min(max(unit[0], 0.0), 1.0)
        if self.log:
            return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))
        return float(self.low + u * (self.high - self.low))

    @property
    def width(self) -> int:
        return 1

    def describe(self) -> str:
        scale = ", log scale" if self.log else ""
        return f"{self.name}: float in [{self.low:g}, {self.high:g}]{scale}"


class IntDim(BaseModel):
    kind: Literal["int"] = "int"
    name: str
    low: int
    high: int
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> IntDim:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(f"bad int range for {self.name}: [{self.low}, {self.high}]")
        return self

    def _continuous(self) -> FloatDim:
        # Each integer owns an equal slice of the (log) line, so rounding is unbiased.
        if self.log:
            return FloatDim(name=self.name, low=max(self.low - 0.5, self.low / 2), high=self.high + 0.5,
                            log=True)
        return FloatDim(name=self.name, low=self.low - 0.5, high=self.high + 0.5)

    def sample(self, rng: np.random.Generator) -> int:
        return self.repair(self._continuous().sample(rng))

    def repair(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{self.name} must be an integer, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{self.name} must be finite, got {value!r}")
        return int(min(max(round(number), self.low), self.high))

    def encode(self, value: Any) -> list[float]:
        return self._continuous().encode(float(value))

    def decode(self, unit: list[float]) -> int:
        return self.repair(self._continuous().decode(unit))

    @property
    def width(self) -> int:
        return 1

    def describe(self) -> str:
        scale = ", log scale" if self.log else ""
        return f"{self.name}: integer in [{self.low}, {self.high}]{scale}"


class CategoricalDim(BaseModel):
    kind: Literal["categorical"] = "categorical"
    name: str
    choices: list[Choice]

    @model_validator(mode="after")
    def _check(self) -> CategoricalDim:
        if len(self.choices) < 1:
            raise ValueError(f"{self.name} needs at least one choice")
        return self

    def sample(self, rng: np.random.Generator) -> Choice:
        return self.choices[int(rng.integers(len(self.choices)))]

    def repair(self, value: Any) -> Choice:
        for choice in self.choices:
            if value == choice and type(value) is type(choice):
                return choice
        for choice in self.choices:  # "None" / "true" / "5" from text become the typed choice
            if str(value).lower() == str(choice).lower():
                return choice
        raise ValueError(f"{self.name} must be one of {self.choices}, got {value!r}")

    def encode(self, value: Any) -> list[float]:
        chosen = self.repair(value)
        # By value and type: 1, 1.0 and True are different choices.
        index = next(i for i, c in enumerate(self.choices)
                     if c == chosen and type(c) is type(chosen))
        return [1.0 if i == index else 0.0 for i in range(len(self.choices))]

    def decode(self, unit: list[float]) -> Choice:
        return self.choices[int(np.argmax(unit))]

    @property
    def width(self) -> int:
        return len(self.choices)

    def describe(self) -> str:
        return f"{self.name}: one of {self.choices}"


Dimension = Annotated[FloatDim | IntDim | CategoricalDim, Field(discriminator="kind")]


class SearchSpace(BaseModel):
    """An ordered set of named dimensions. Configs are plain dicts of Python scalars."""

    dims: list[Dimension] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> SearchSpace:
        names = [d.name for d in self.dims]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate dimension names in {names}")
        return self

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dims]

    def __getitem__(self, name: str) -> FloatDim | IntDim | CategoricalDim:
        for dim in self.dims:
            if dim.name == name:
                return dim
        raise KeyError(name)

    def sample(self, rng: np.random.Generator) -> Config:
        return {d.name: d.sample(rng) for d in self.dims}

    def repair(self, config: dict[str, Any], fill: Config | None = None) -> Config:
        """Clip, round and type-cast ``config`` into the space.

        Unknown keys or invalid categorical values raise ``ValueError``; missing keys are
        taken from ``fill`` when given, else they raise too.
        """
        unknown = set(config) - set(self.names)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}")
        out: Config = {}
        for dim in self.dims:
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
        """Map a config to a vector in the unit cube (categoricals one-hot)."""
        parts: list[float] = []
        for dim in self.dims:
            parts.extend(dim.encode(config[dim.name]))
        return np.asarray(parts, dtype=float)

    def decode(self, vector: np.ndarray) -> Config:
        out: Config = {}
        start = 0
        for dim in self.dims:
            out[dim.name] = dim.decode([float(x) for x in vector[start:start + dim.width]])
            start += dim.width
        return out

    def key(self, config: Config) -> str:
        """A canonical string for duplicate detection (floats to 6 significant digits)."""
        parts = []
        for name in self.names:
            value = config.get(name)
            parts.append(f"{name}={value:.6g}" if isinstance(value, float) else f"{name}={value!r}")
        return ",".join(parts)

    def describe(self) -> str:
        return "\n".join(d.describe() for d in self.dims)
