"""The spec's tuned entries as BOHB's ConfigSpace, and BOHB's configurations back as spec values.

Ray's own conversion (``TuneBOHB.convert_search_space``) drops the step of ``quniform`` and
``qrandint`` and hands choices back as numpy scalars. Here a choice is modelled by its index
(any value works, ``None`` and lists included) and returned as the spec's own value, a
quantized range is modelled as its continuous range and rounded to its step on the way back
(as Ray rounds it for random search), and an entry with one possible value is left out of the
model (hpbandster's kernel density estimate cannot handle a one-level dimension).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["config_space", "from_config_space", "to_config_space"]


def _single(entry: Any) -> bool:
    """Whether the entry can take one value only (then it is not modelled)."""
    if entry.type == "choice":
        return len(entry.values) == 1
    return entry.type == "randint" and entry.high - entry.low == 1


def _only_value(entry: Any) -> Any:
    return entry.values[0] if entry.type == "choice" else int(entry.low)


def config_space(tuned: dict[str, Any]) -> Any:
    """A ``ConfigSpace.ConfigurationSpace`` over ``tuned`` (the spec's non-fixed entries)."""
    import ConfigSpace as CS

    space = CS.ConfigurationSpace()
    for name, entry in tuned.items():
        if _single(entry):
            continue
        kind = entry.type
        if kind == "choice":
            hp: Any = CS.CategoricalHyperparameter(name, choices=list(range(len(entry.values))))
        elif kind in ("uniform", "quniform", "loguniform"):
            hp = CS.UniformFloatHyperparameter(name, lower=float(entry.low),
                                               upper=float(entry.high), log=kind == "loguniform")
        elif kind == "randint":  # high excluded
            hp = CS.UniformIntegerHyperparameter(name, lower=int(entry.low),
                                                 upper=int(entry.high) - 1)
        elif kind == "qrandint":  # high included
            hp = CS.UniformIntegerHyperparameter(name, lower=int(entry.low), upper=int(entry.high))
        else:  # grid entries are refused with BOHB when the spec is validated
            raise ValueError(f"search_space.{name}: BOHB cannot model a {kind} entry")
        space.add(hp)
    return space


def _quantized(value: float, entry: Any) -> float:
    """``value`` rounded to a multiple of the entry's step (Ray's rule), kept in its range."""
    q = entry.q
    # round(..., 12): 3 × 0.1 is 0.30000000000000004 in floats; the spec means 0.3.
    rounded = round(float(np.round(value / q) * q), 12)
    if rounded < entry.low:
        rounded += q
    if rounded > entry.high:
        rounded -= q
    return rounded


def from_config_space(tuned: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """A configuration BOHB proposed, as the values the spec's entries take (plain Python)."""
    out: dict[str, Any] = {}
    for name, entry in tuned.items():
        if _single(entry):
            out[name] = _only_value(entry)
            continue
        value = config[name]
        kind = entry.type
        if kind == "choice":
            out[name] = entry.values[int(value)]
        elif kind == "quniform":
            out[name] = _quantized(float(value), entry)
        elif kind == "qrandint":
            out[name] = int(_quantized(float(value), entry))
        elif kind == "randint":
            out[name] = int(value)
        else:
            out[name] = float(value)
    return out


def to_config_space(tuned: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """A point to evaluate (spec values, validated) as BOHB's configuration of it."""
    out: dict[str, Any] = {}
    for name, entry in tuned.items():
        if _single(entry):
            continue
        value = point[name]
        if entry.type == "choice":
            out[name] = list(entry.values).index(value)
        elif entry.type in ("randint", "qrandint"):
            out[name] = int(value)
        else:
            out[name] = float(value)
    return out
