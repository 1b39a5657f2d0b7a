"""Search-space entries: the distributions a spec may name, each validated on its own."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import Field, model_validator

from .base import StrictModel

__all__ = [
    "Choice", "Grid", "Uniform", "QUniform", "LogUniform", "RandInt", "QRandInt", "Fixed",
    "Entry", "DISTRIBUTIONS",
]


class Choice(StrictModel):
    """One of a list of values, sampled (or modelled by TPE as a categorical)."""

    type: Literal["choice"]
    values: list[Any]

    @model_validator(mode="after")
    def _non_empty(self) -> "Choice":
        if not self.values:
            raise ValueError("choice needs at least one value, got values=[]; list the options")
        return self


class Grid(StrictModel):
    """Every value is tried: the grid is the cartesian product of all grid entries."""

    type: Literal["grid"]
    values: list[Any]

    @model_validator(mode="after")
    def _non_empty(self) -> "Grid":
        if not self.values:
            raise ValueError("grid needs at least one value, got values=[]; list the values to try")
        return self


def _check_range(kind: str, low: float, high: float) -> None:
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ValueError(
            f"{kind} needs low < high, got low={low}, high={high}; swap or widen the bounds"
        )


class Uniform(StrictModel):
    """A float drawn uniformly from [low, high]."""

    type: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _bounds(self) -> "Uniform":
        _check_range("uniform", self.low, self.high)
        return self


class QUniform(StrictModel):
    """A float from [low, high] rounded to a multiple of q."""

    type: Literal["quniform"]
    low: float
    high: float
    q: float

    @model_validator(mode="after")
    def _bounds(self) -> "QUniform":
        _check_range("quniform", self.low, self.high)
        if self.q <= 0:
            raise ValueError(f"quniform needs q > 0, got q={self.q}; use a positive step")
        return self


class LogUniform(StrictModel):
    """A float whose logarithm is uniform: the usual choice for learning rates and L2."""

    type: Literal["loguniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _bounds(self) -> "LogUniform":
        if self.low <= 0 or self.low >= self.high:
            raise ValueError(
                f"loguniform needs 0 < low < high, got low={self.low}, high={self.high}; "
                "a log scale cannot reach 0, so start from a small positive value such as 1e-5"
            )
        return self


class RandInt(StrictModel):
    """An integer from [low, high) (high excluded, as in Ray Tune and numpy)."""

    type: Literal["randint"]
    low: int
    high: int

    @model_validator(mode="after")
    def _bounds(self) -> "RandInt":
        if self.low >= self.high:
            raise ValueError(
                f"randint needs low < high (high is excluded), got low={self.low}, "
                f"high={self.high}; for a single value write the value itself"
            )
        return self


class QRandInt(StrictModel):
    """An integer from [low, high] (high included) in steps of q."""

    type: Literal["qrandint"]
    low: int
    high: int
    q: int = 1

    @model_validator(mode="after")
    def _bounds(self) -> "QRandInt":
        if self.low >= self.high:
            raise ValueError(f"qrandint needs low < high, got low={self.low}, high={self.high}")
        if self.q <= 0:
            raise ValueError(f"qrandint needs q > 0, got q={self.q}; use a positive step")
        return self


class Fixed(StrictModel):
    """A value that every trial gets; written in the spec as the bare value."""

    type: Literal["fixed"]
    value: Any


Entry = Annotated[
    Union[Choice, Grid, Uniform, QUniform, LogUniform, RandInt, QRandInt, Fixed],
    Field(discriminator="type"),
]

DISTRIBUTIONS = ("choice", "grid", "uniform", "quniform", "loguniform", "randint", "qrandint")
