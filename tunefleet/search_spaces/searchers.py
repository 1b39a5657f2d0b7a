"""Searchers by name: ``grid``, ``random``, ``hyperopt``, all seeded from ``search.seed``."""

from __future__ import annotations

from typing import Any, Callable

from ..spec import Experiment
from ..spec.sections import HyperOptSearchSpec
from .convert import grid_size
from .seeds import seeded

__all__ = ["SEARCHERS", "make_searcher", "total_trials"]


def _basic(experiment: Experiment, max_concurrent: int) -> Any:
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(random_state=experiment.search.seed, max_concurrent=max_concurrent)


def _hyperopt(experiment: Experiment, max_concurrent: int) -> Any:
    try:
        from ray.tune.search.hyperopt import HyperOptSearch
        import hyperopt  # noqa: F401
    except ImportError as exc:  # pragma: no cover - hyperopt is a dependency
        raise ImportError("search.algorithm=hyperopt needs hyperopt: pip install hyperopt") from exc
    from ray.tune.search import ConcurrencyLimiter

    search = experiment.search
    if not isinstance(search, HyperOptSearchSpec):  # SEARCHERS dispatches on the algorithm
        raise TypeError(f"search algorithm {search.algorithm!r} reached the hyperopt builder")
    searcher: Any = HyperOptSearch(
        metric=experiment.objective.metric, mode=experiment.objective.mode,
        n_initial_points=search.n_initial_points, random_state_seed=search.seed,
        gamma=search.gamma,
        # Only the tuned keys: fixed entries are constants Ray sets, not HyperOpt's to suggest.
        points_to_evaluate=[{k: v for k, v in point.items()
                             if experiment.search_space[k].type != "fixed"}
                            for point in search.points_to_evaluate] or None,
    )
    # TPE only learns from finished trials: suggest no more than can run at once.
    if max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)
    return seeded(searcher, search.seed)  # grid and random sample trial_seed in the space


SEARCHERS: dict[str, Callable[[Experiment, int], Any]] = {
    "grid": _basic,
    "random": _basic,
    "hyperopt": _hyperopt,
}


def make_searcher(experiment: Experiment, max_concurrent: int) -> Any:
    """The Ray search algorithm for ``search.algorithm``, running at most ``max_concurrent``
    trials at once.

    Under synchronous HyperBand there is no limit here: it must see every trial of a bracket
    up front, or brackets never fill and nothing is cut; the cluster's resources still limit
    how many trials run at once.
    """
    if experiment.scheduler.name == "hyperband":
        return SEARCHERS[experiment.search.algorithm](experiment, 0)
    return SEARCHERS[experiment.search.algorithm](experiment, max_concurrent)


def total_trials(experiment: Experiment) -> int:
    """How many trials the study runs: grid size × num_samples (grid size is 1 without grids)."""
    return grid_size(experiment) * experiment.search.num_samples
