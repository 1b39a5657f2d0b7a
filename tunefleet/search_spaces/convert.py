"""Spec search-space entries → Ray Tune's param space, and the size of a grid."""

from __future__ import annotations

import math
from typing import Any

from ..spec import TRIAL_SEED_KEY, Experiment

__all__ = ["to_ray_space", "grid_size", "describe_entry", "TRIAL_SEED_KEY"]


def _entry_to_ray(entry: Any, as_grid: bool) -> Any:
    from ray import tune

    kind = entry.type
    if kind == "fixed":
        return entry.value
    if kind == "grid" or (kind == "choice" and as_grid):
        return tune.grid_search(list(entry.values))
    if kind == "choice":
        return tune.choice(list(entry.values))
    if kind == "uniform":
        return tune.uniform(entry.low, entry.high)
    if kind == "quniform":
        return tune.quniform(entry.low, entry.high, entry.q)
    if kind == "loguniform":
        return tune.loguniform(entry.low, entry.high)
    if kind == "randint":
        return tune.randint(entry.low, entry.high)
    if kind == "qrandint":
        return tune.qrandint(entry.low, entry.high, entry.q)
    raise ValueError(f"no Ray conversion for search-space type {kind!r}")


def to_ray_space(experiment: Experiment) -> dict[str, Any]:
    """The ``param_space`` for ``tune.Tuner``; grid search enumerates ``choice`` entries too."""
    from ray import tune

    as_grid = experiment.search.algorithm == "grid"
    space = {key: _entry_to_ray(entry, as_grid) for key, entry in experiment.search_space.items()}
    if experiment.search.algorithm != "hyperopt":
        space[TRIAL_SEED_KEY] = tune.randint(0, 2**31 - 1)
    return space


def grid_size(experiment: Experiment) -> int:
    """Configurations in one pass over the grid (1 when there are no grid axes)."""
    as_grid = experiment.search.algorithm == "grid"
    sizes = [len(e.values) for e in experiment.search_space.values()
             if e.type == "grid" or (e.type == "choice" and as_grid)]
    return math.prod(sizes) if sizes else 1


def describe_entry(entry: Any) -> str:
    """A short human form of an entry, for the preview."""
    kind = entry.type
    if kind == "fixed":
        return repr(entry.value)
    if kind in ("choice", "grid"):
        return f"{kind} {list(entry.values)}"
    if kind in ("quniform", "qrandint"):
        return f"{kind} [{entry.low}, {entry.high}] step {entry.q}"
    if kind == "randint":
        return f"randint [{entry.low}, {entry.high})"
    return f"{kind} [{entry.low}, {entry.high}]"
