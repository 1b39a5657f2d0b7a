"""Searchers by name: ``grid``, ``random``, ``hyperopt``, all seeded from ``search.seed``."""

from __future__ import annotations

from typing import Any, Callable

from ..spec import Experiment
from .convert import grid_size

__all__ = ["SEARCHERS", "make_searcher", "total_trials"]


def _basic(experiment: Experiment) -> Any:
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(random_state=experiment.search.seed)


def _hyperopt(experiment: Experiment) -> Any:
    try:
        from ray.tune.search.hyperopt import HyperOptSearch
        import hyperopt  # noqa: F401
    except ImportError as exc:  # pragma: no cover - hyperopt is a dependency
        raise ImportError("search.algorithm=hyperopt needs hyperopt: pip install hyperopt") from exc
    search = experiment.search
    return HyperOptSearch(
        metric=experiment.objective.metric, mode=experiment.objective.mode,
        n_initial_points=search.n_initial_points, random_state_seed=search.seed,
        gamma=search.gamma,
    )


SEARCHERS: dict[str, Callable[[Experiment], Any]] = {
    "grid": _basic,
    "random": _basic,
    "hyperopt": _hyperopt,
}


def make_searcher(experiment: Experiment) -> Any:
    """The Ray search algorithm for ``search.algorithm``."""
    return SEARCHERS[experiment.search.algorithm](experiment)


def total_trials(experiment: Experiment) -> int:
    """How many trials the study runs: grid size × num_samples (grid size is 1 without grids)."""
    return grid_size(experiment) * experiment.search.num_samples
