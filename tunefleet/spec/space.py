"""Search-space entries: the distributions a spec may name, each validated on its own."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, model_validator

from .base import StrictModel

__all__ = [
    "Choice", "Grid", "Uniform", "QUniform", "LogUniform", "RandInt", "QRandInt", "Fixed",
    "Entry", "DISTRIBUTIONS", "CONTINUOUS", "entry_values",
]


class _Values(StrictModel):
    """A distribution over listed values, which must not be empty."""

    values: list[Any]
    if TYPE_CHECKING:  # each subclass declares ``type`` as its Literal discriminator
        type: str

    @model_validator(mode="after")
    def _non_empty(self):
        if not self.values:
            raise ValueError(f"{self.type} needs at least one value, got values=[]; list the "
                             "values to try")
        return self


class Choice(_Values):
    """One of a list of values, sampled (or modelled by TPE as a categorical)."""

    type: Literal["choice"]


class Grid(_Values):
    """Every value is tried: the grid is the cartesian product of all grid entries."""

    type: Literal["grid"]


class _Range(StrictModel):
    """A distribution over [low, high]; one validator checks every kind's bounds and step."""

    low: float
    high: float
    # Per kind: the condition on the bounds as shown to the user, and the hint that fixes it.
    _needs: ClassVar[str] = "low < high"
    _fix: ClassVar[str] = "swap or widen the bounds"
    if TYPE_CHECKING:  # each subclass declares ``type`` as its Literal discriminator
        type: str

    @model_validator(mode="after")
    def _bounds(self):
        low, high = self.low, self.high
        positive = self.type == "loguniform"
        if not (math.isfinite(low) and math.isfinite(high)) or low >= high or (
                positive and low <= 0):
            raise ValueError(f"{self.type} needs {self._needs}, got low={low}, high={high}; "
                             f"{self._fix}")
        step = getattr(self, "q", None)
        if step is not None and step <= 0:
            raise ValueError(f"{self.type} needs q > 0, got q={step}; use a positive step")
        return self


class Uniform(_Range):
    """A float drawn uniformly from [low, high]."""

    type: Literal["uniform"]


class QUniform(_Range):
    """A float from [low, high] rounded to a multiple of q."""

    type: Literal["quniform"]
    q: float


class LogUniform(_Range):
    """A float whose logarithm is uniform: the usual choice for learning rates and L2."""

    type: Literal["loguniform"]
    _needs = "0 < low < high"
    _fix = ("a log scale cannot reach 0, so start from a small positive value such as 1e-5")


class RandInt(_Range):
    """An integer from [low, high) (high excluded, as in Ray Tune and numpy)."""

    type: Literal["randint"]
    low: int
    high: int
    _needs = "low < high (high is excluded)"
    _fix = "for a single value write the value itself"


class QRandInt(_Range):
    """An integer from [low, high] (high included) in steps of q."""

    type: Literal["qrandint"]
    low: int
    high: int
    q: int = 1


class Fixed(StrictModel):
    """A value that every trial gets; written in the spec as the bare value."""

    type: Literal["fixed"]
    value: Any


Entry = Annotated[
    Union[Choice, Grid, Uniform, QUniform, LogUniform, RandInt, QRandInt, Fixed],
    Field(discriminator="type"),
]

DISTRIBUTIONS = ("choice", "grid", "uniform", "quniform", "loguniform", "randint", "qrandint")
CONTINUOUS = ("uniform", "quniform", "loguniform")


def entry_values(entry: Any) -> list[Any]:
    """The values that bound what an entry can sample: every listed value, or both ends of a
    range (randint's excluded high minus one)."""
    if entry.type == "fixed":
        return [entry.value]
    if entry.type in ("choice", "grid"):
        return list(entry.values)
    if entry.type == "randint":
        return [entry.low, entry.high - 1]
    return [entry.low, entry.high]
