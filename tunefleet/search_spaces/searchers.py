"""Searchers by name: ``grid``, ``random``, ``hyperopt``, ``optuna`` (TPE or CMA-ES) and
``bohb``, all seeded from ``search.seed``; the model-based ones through Ray's own integrations."""

from __future__ import annotations

import warnings
from typing import Any, Callable, TypeVar

from ..spec import TRIAL_SEED_KEY, Experiment
from ..spec.methods import (UNLIMITED_SEARCHER_SCHEDULERS, BohbSearchSpec, HyperOptSearchSpec,
                            OptunaSearchSpec)
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

    search = _section(experiment, HyperOptSearchSpec)
    searcher: Any = HyperOptSearch(
        metric=experiment.objective.metric, mode=experiment.objective.mode,
        n_initial_points=search.n_initial_points, random_state_seed=search.seed,
        gamma=search.gamma, points_to_evaluate=_tuned_points(experiment) or None,
    )
    # TPE only learns from finished trials: suggest no more than can run at once.
    if max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)
    return seeded(searcher, search.seed)  # grid and random sample trial_seed in the space


def _optuna(experiment: Experiment, max_concurrent: int) -> Any:
    try:
        import optuna
        from ray.tune.search.optuna import OptunaSearch
    except ImportError as exc:  # pragma: no cover - optuna is a dependency
        raise ImportError("search.algorithm=optuna needs optuna: pip install optuna") from exc
    from ray.tune.search import ConcurrencyLimiter

    search = _section(experiment, OptunaSearchSpec)
    # Optuna logs every finished trial at INFO; tunefleet's console already shows them.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler: Any
    if search.sampler == "cmaes":
        try:
            import cmaes  # noqa: F401
        except ImportError as exc:  # pragma: no cover - cmaes is a dependency
            raise ImportError("search.sampler=cmaes needs cmaes: pip install cmaes") from exc
        # choice entries are drawn by Optuna's RandomSampler (CMA-ES models numbers only), as
        # the spec's docs say; Optuna would otherwise warn about it at every trial.
        sampler = optuna.samplers.CmaEsSampler(
            seed=search.seed, n_startup_trials=search.n_startup_trials,
            warn_independent_sampling=False)
    else:
        # multivariate: one joint density over the hyperparameters, not one per hyperparameter.
        sampler = optuna.samplers.TPESampler(
            multivariate=True, seed=search.seed, n_startup_trials=search.n_startup_trials)

    class SpecOptunaSearch(OptunaSearch):
        """Ray's OptunaSearch over the spec's tuned entries: the trial seed in the param space
        (convert.py; for grid and random search Ray samples it) is not a hyperparameter for
        Optuna to model, and ``seeded`` sets it from the trial's index."""

        @staticmethod
        def convert_search_space(spec: dict) -> dict[str, Any]:
            return OptunaSearch.convert_search_space(
                {k: v for k, v in spec.items() if k != TRIAL_SEED_KEY})

    searcher: Any = SpecOptunaSearch(
        metric=experiment.objective.metric, mode=experiment.objective.mode, sampler=sampler,
        points_to_evaluate=_tuned_points(experiment) or None)
    # The model learns only from finished trials: suggest no more than can run at once.
    if max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)
    return seeded(searcher, search.seed)


def _bohb(experiment: Experiment, max_concurrent: int) -> Any:
    try:
        from ray.tune.search.bohb import TuneBOHB
        import ConfigSpace  # noqa: F401
        from hpbandster.optimizers.config_generators.bohb import BOHB  # noqa: F401
    except ImportError as exc:
        raise ImportError("search.algorithm=bohb needs hpbandster and ConfigSpace: pip install "
                          "'tunefleet[methods]' (or hpbandster ConfigSpace)") from exc
    import numpy as np

    from .bohb_space import config_space, from_config_space, to_config_space

    search = _section(experiment, BohbSearchSpec)
    tuned = {k: e for k, e in experiment.search_space.items() if e.type != "fixed"}

    class SpecTuneBOHB(TuneBOHB):
        """Ray's TuneBOHB over the spec's own entries (bohb_space.py: quantized ranges keep
        their step, choices come back as the spec's values, the trial seed is not modelled),
        with hpbandster's numpy draws seeded from search.seed."""

        def __init__(self) -> None:
            super().__init__(
                metric=experiment.objective.metric, mode=experiment.objective.mode,
                points_to_evaluate=[to_config_space(tuned, p)
                                    for p in _tuned_points(experiment)] or None,
                seed=search.seed, max_concurrent=max_concurrent,
                bohb_config={"random_fraction": search.random_fraction})
            # hpbandster draws from numpy's global generator: give it this study's own.
            self._numpy_state = np.random.RandomState(search.seed).get_state()

        def convert_search_space(self, spec: dict) -> Any:  # type: ignore[override]
            return config_space(tuned)

        def suggest(self, trial_id: str) -> Any:
            outer = np.random.get_state()
            np.random.set_state(self._numpy_state)
            try:
                # A choice whose good (or bad) trials all share one value gets an infinite
                # kernel for the others (statsmodels counts levels from the data): hpbandster
                # expects this and skips such candidates, so numpy's warning is noise.
                with np.errstate(divide="ignore", invalid="ignore"):
                    config = super().suggest(trial_id)
            finally:
                self._numpy_state = np.random.get_state()
                np.random.set_state(outer)
            return config if config is None else from_config_space(tuned, config)

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            with warnings.catch_warnings():
                # statsmodels' KDE warns that its random generator's default will change; with
                # hpbandster's normal_reference bandwidths it draws nothing.
                warnings.filterwarnings("ignore", message="After 0.17", category=FutureWarning)
                super().on_trial_result(trial_id, result)

    # TuneBOHB limits concurrency itself, counting the trials HyperBandForBOHB pauses as not
    # running (a ConcurrencyLimiter would count them and stall the brackets).
    return seeded(SpecTuneBOHB(), search.seed)


SEARCHERS: dict[str, Callable[[Experiment, int], Any]] = {
    "grid": _basic,
    "random": _basic,
    "hyperopt": _hyperopt,
    "optuna": _optuna,
    "bohb": _bohb,
}

_Search = TypeVar("_Search", HyperOptSearchSpec, OptunaSearchSpec, BohbSearchSpec)


def _section(experiment: Experiment, kind: type[_Search]) -> _Search:
    """The search section as the kind this builder is registered for (``SEARCHERS``
    dispatches on ``algorithm``; a mismatch is a registry bug, not a user error)."""
    search = experiment.search
    if not isinstance(search, kind):
        raise TypeError(f"search algorithm {search.algorithm!r} reached the builder for "
                        f"{kind.__name__}")
    return search


def _tuned_points(experiment: Experiment) -> list[dict[str, Any]]:
    """``search.points_to_evaluate`` with only the tuned keys: fixed entries are constants Ray
    sets, not the searcher's to suggest (Experiment._check_points validated the rest)."""
    points = getattr(experiment.search, "points_to_evaluate", None) or []
    return [{k: v for k, v in point.items() if experiment.search_space[k].type != "fixed"}
            for point in points]


def make_searcher(experiment: Experiment, max_concurrent: int) -> Any:
    """The Ray search algorithm for ``search.algorithm``, running at most ``max_concurrent``
    trials at once.

    Under synchronous HyperBand, PBT and PB2 there is no limit here
    (``UNLIMITED_SEARCHER_SCHEDULERS``): they decide over trials created together; the
    cluster's resources still limit how many trials run at once.
    """
    if experiment.scheduler.name in UNLIMITED_SEARCHER_SCHEDULERS:
        max_concurrent = 0
    return SEARCHERS[experiment.search.algorithm](experiment, max_concurrent)


def total_trials(experiment: Experiment) -> int:
    """How many trials the study runs: grid size × num_samples (grid size is 1 without grids)."""
    return grid_size(experiment) * experiment.search.num_samples
