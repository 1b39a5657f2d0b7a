"""Repeated executions of one configuration: their seeds, each epoch's data order, and the
aggregate the searcher and scheduler see. Every execution's own values are reported too (``execution_K/metric``), with
the spread across them (``std/metric``), so nothing is thrown away."""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from ..spec.sections import metric_direction

__all__ = ["execution_seed", "epoch_order", "aggregate_logs", "EXECUTION_PREFIX", "STD_PREFIX",
           "AGGREGATES"]

EXECUTION_PREFIX = "execution_"
STD_PREFIX = "std/"
AGGREGATES = ("mean", "median", "worst")


def execution_seed(trial_seed: int, execution: int) -> int:
    """Execution 0 keeps the trial's seed (one execution trains as before); others derive."""
    if execution == 0:
        return int(trial_seed)
    return zlib.crc32(f"{trial_seed}:execution:{execution}".encode()) & 0x7FFFFFFF


def epoch_order(seed: int, epoch: int, size: int) -> np.ndarray:
    """The order of the training rows in ``epoch`` (0-based) of the execution seeded ``seed``:
    a function of those alone, so a trial resumed from a checkpoint at any epoch sees the same
    order as one that ran straight through."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(size)


def _worst(values: np.ndarray, direction: str) -> float:
    return float(values.min() if direction == "max" else values.max())


def aggregate_logs(logs: list[dict[str, float]], how: str, objective: str,
                   objective_mode: str) -> dict[str, float]:
    """One value per metric over the executions' epoch logs, plus per-execution values and the
    standard deviation. ``worst`` takes the lowest score or the highest loss; NaN stays NaN."""
    if how not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {how!r}")
    out: dict[str, float] = {}
    names = [k for k in logs[0] if all(k in entry for entry in logs)]
    for name in names:
        values = np.array([float(entry[name]) for entry in logs])
        if how == "mean" or len(values) == 1:
            value = float(values.mean())
        elif how == "median":
            value = float(np.median(values))
        else:
            direction = objective_mode if name == objective else (
                metric_direction(name) or "max")
            value = _worst(values, direction)
        out[name] = value
        if len(logs) > 1:
            out[f"{STD_PREFIX}{name}"] = float(values.std()) if np.isfinite(values).all() else math.nan
            for k, v in enumerate(values):
                out[f"{EXECUTION_PREFIX}{k}/{name}"] = float(v)
    return out


def per_execution(result: dict[str, Any], name: str) -> list[float]:
    """The values of ``name`` for each execution in one reported result."""
    found = []
    k = 0
    while f"{EXECUTION_PREFIX}{k}/{name}" in result:
        found.append(float(result[f"{EXECUTION_PREFIX}{k}/{name}"]))
        k += 1
    return found or ([float(result[name])] if name in result else [])
