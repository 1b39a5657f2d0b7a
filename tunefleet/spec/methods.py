"""The search and scheduler sections of a spec: which algorithm proposes configurations and
which one stops (or pauses) trials early, one model per method."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional, Union

from pydantic import Field

from .base import StrictModel
from .budget import BudgetSpec
from .population import Pb2Spec, PbtSpec  # population-based training (spec/population.py)

if TYPE_CHECKING:
    from .experiment import Experiment

__all__ = [
    "TRIAL_SEED_KEY", "GridSearchSpec", "RandomSearchSpec", "HyperOptSearchSpec",
    "OptunaSearchSpec", "BohbSearchSpec", "SearchSpec", "FifoSpec", "AshaSpec", "HyperBandSpec",
    "MedianSpec", "BohbSpec", "SchedulerSpec", "MODEL_BASED", "PAUSING_SCHEDULERS",
    "UNLIMITED_SEARCHER_SCHEDULERS", "check_methods",
]

# Sampled by grid and random search with each configuration: the trial's seed (not a
# hyperparameter; model-based searchers derive theirs from the trial's index, seeds.py).
TRIAL_SEED_KEY = "trial_seed"


class _SearchBase(StrictModel):
    seed: int = 0
    max_concurrent: Optional[int] = Field(None, ge=1)
    # Train each configuration this many times (each with its own derived seed); the searcher
    # and scheduler see the aggregate of the executions at every epoch.
    executions_per_trial: int = Field(1, ge=1, le=20)
    aggregate: Literal["mean", "median", "worst"] = "mean"
    # Wall-clock seconds for the whole search (from when Ray starts its loop): then the study
    # ends, the trials still running recorded as stopped by the study, no new ones started.
    time_budget_s: Optional[float] = Field(None, gt=0)
    # What the study may spend (epochs trained, trials or seconds): it runs until that is spent
    # and starts as many trials as that takes (num_samples then comes from it; spec/budget.py).
    budget: Optional[BudgetSpec] = None


class GridSearchSpec(_SearchBase):
    """Every combination of the ``grid`` and ``choice`` entries; ``num_samples`` repeats it."""

    algorithm: Literal["grid"]
    num_samples: int = Field(1, ge=1)


class RandomSearchSpec(_SearchBase):
    """Independent random samples (grid entries, if any, are crossed with them as in Ray)."""

    algorithm: Literal["random"]
    num_samples: int = Field(10, ge=1)


class _ModelBasedSearch(_SearchBase):
    """A searcher that learns from finished trials (Experiment._check_points validates the
    points against search_space)."""

    num_samples: int = Field(10, ge=1)
    # Configurations tried first, in order (known good ones: the "manual search" of the
    # classic exercises), then the model learns from them; each gives every tuned hyperparameter.
    points_to_evaluate: list[dict[str, Any]] = Field(default_factory=list)


class HyperOptSearchSpec(_ModelBasedSearch):
    """Tree-structured Parzen Estimator: ``n_initial_points`` random trials, then model-guided."""

    algorithm: Literal["hyperopt"]
    n_initial_points: int = Field(5, ge=1)
    gamma: float = Field(0.25, gt=0, lt=1)


class OptunaSearchSpec(_ModelBasedSearch):
    """Optuna's samplers through Ray's OptunaSearch: multivariate TPE (``tpe``, which models
    the hyperparameters jointly) or CMA-ES (``cmaes``: numeric ranges only; ``choice`` entries
    next to them are drawn at random). ``n_startup_trials`` random trials come first."""

    algorithm: Literal["optuna"]
    sampler: Literal["tpe", "cmaes"] = "tpe"
    n_startup_trials: int = Field(5, ge=1)


class BohbSearchSpec(_ModelBasedSearch):
    """BOHB's searcher (Ray's TuneBOHB, hpbandster's kernel density model per budget); it
    learns from the budgets ``scheduler.name: bohb`` gives the trials, so needs that scheduler.
    ``random_fraction`` of the configurations stay random (hpbandster's default, 1/3)."""

    algorithm: Literal["bohb"]
    random_fraction: float = Field(1 / 3, ge=0, le=1)


SearchSpec = Annotated[
    Union[GridSearchSpec, RandomSearchSpec, HyperOptSearchSpec, OptunaSearchSpec,
          BohbSearchSpec],
    Field(discriminator="algorithm"),
]


class FifoSpec(StrictModel):
    """No early stopping by the scheduler: every trial trains its full budget."""

    name: Literal["fifo"]


class AshaSpec(StrictModel):
    """Asynchronous successive halving: at epochs grace_period·rf^k, keep the top 1/rf."""

    name: Literal["asha"]
    max_t: Optional[int] = Field(None, ge=1)
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(3, gt=1)
    brackets: int = Field(1, ge=1)


class HyperBandSpec(StrictModel):
    """Synchronous HyperBand: trials are paused at rung boundaries and resumed from checkpoints."""

    name: Literal["hyperband"]
    max_t: Optional[int] = Field(None, ge=1)
    reduction_factor: float = Field(3, gt=1)


class MedianSpec(StrictModel):
    """Stop a trial whose best result is below the median of other trials at the same epoch."""

    name: Literal["median"]
    grace_period: int = Field(1, ge=1)
    min_samples_required: int = Field(3, ge=1)


class BohbSpec(StrictModel):
    """BOHB's HyperBand (Ray's HyperBandForBOHB): HyperBand's brackets, largest first, each
    trial paused at its rung until the rung's results decide; needs ``search.algorithm: bohb``."""

    name: Literal["bohb"]
    max_t: Optional[int] = Field(None, ge=1)
    reduction_factor: float = Field(3, gt=1)


SchedulerSpec = Annotated[
    Union[FifoSpec, AshaSpec, HyperBandSpec, MedianSpec, BohbSpec, PbtSpec, Pb2Spec],
    Field(discriminator="name"),
]


# Searchers that propose each configuration from a model of the finished trials: they sample,
# never enumerate, and derive each trial's seed from its index (search_spaces/seeds.py).
MODEL_BASED = ("hyperopt", "optuna", "bohb")
# Schedulers that pause trials at rung boundaries and resume them from their checkpoints.
PAUSING_SCHEDULERS = ("hyperband", "bohb")
# Schedulers that decide over trials created together, so the searcher is never limited for
# them (resources alone bound how many run at once): synchronous HyperBand cuts a bracket only
# once it is full, PBT and PB2 rank the population against itself (batches would never meet).
# Not bohb: HyperBandForBOHB pauses a trial before its bracket fills and TuneBOHB's own limit
# counts paused trials as not running, so a limit only paces the model (Ray's hb_bohb.py).
UNLIMITED_SEARCHER_SCHEDULERS = frozenset({"hyperband", "pbt", "pb2"})
# A searcher and a scheduler that only work together: BOHB's model learns from the budget
# HyperBandForBOHB attaches to each result, and HyperBandForBOHB tells the searcher of pauses.
_PAIRED = {"bohb": "bohb"}
_LABELS = {"optuna": "Optuna", "bohb": "BOHB"}
_NUMERIC = ("uniform", "quniform", "loguniform", "randint", "qrandint")


def check_methods(experiment: "Experiment") -> None:
    """Cross-checks of the search algorithm, the scheduler, the search space and the model that
    only the new methods need (ValueError with the field path, for the Experiment's validator;
    HyperOpt's and HyperBand's own live next to it in experiment.py)."""
    algorithm, scheduler = experiment.search.algorithm, experiment.scheduler.name
    why = ("BOHB's model learns from the budget its HyperBand attaches to each result, and that "
           "HyperBand tells the searcher which trials it pauses")
    for searcher_name, scheduler_name in _PAIRED.items():
        if algorithm == searcher_name and scheduler != scheduler_name:
            raise ValueError(
                f"search.algorithm: {algorithm} needs scheduler.name: {scheduler_name} ({why}), "
                f"got scheduler.name: {scheduler}; set scheduler: {{name: {scheduler_name}}}")
        if scheduler == scheduler_name and algorithm != searcher_name:
            raise ValueError(
                f"scheduler.name: {scheduler} needs search.algorithm: {searcher_name} ({why}), "
                f"got search.algorithm: {algorithm}; set search.algorithm: {searcher_name}, or "
                f"use scheduler hyperband with {algorithm}")
    tuned = {k: e.type for k, e in experiment.search_space.items() if e.type != "fixed"}
    if algorithm in MODEL_BASED and not tuned and not experiment.model.hypermodel:
        raise ValueError(
            f"search.algorithm: {algorithm} models the tuned hyperparameters of search_space, and "
            "it has none (only fixed values); give one a range or a choice, or use "
            "search.algorithm: random (the same configuration, trained with different seeds)")
    if algorithm in ("optuna", "bohb"):
        label = _LABELS[algorithm]
        grid_keys = [k for k, e in experiment.search_space.items() if e.type == "grid"]
        if grid_keys:
            raise ValueError(
                f"search_space.{grid_keys[0]}: a grid entry cannot be used with "
                f"search.algorithm={algorithm} ({label} samples, it does not enumerate); "
                "use type: choice, or search.algorithm: grid")
        if experiment.model.hypermodel:
            raise ValueError(
                f"search.algorithm: {algorithm} cannot search a hypermodel's space (which "
                "hyperparameters exist depends on others' values, and only tunefleet's own "
                "conditional searcher follows that); use search.algorithm: hyperopt (TPE over "
                "the conditional space), random or grid")
    sampler = getattr(experiment.search, "sampler", None)
    if sampler == "cmaes":
        if not any(kind in _NUMERIC for kind in tuned.values()):
            raise ValueError(
                f"search.sampler: cmaes optimises numeric ranges only, and search_space has "
                f"none (only choice entries: {', '.join(tuned)}), so CMA-ES would draw every "
                "configuration at random; use sampler: tpe, or give a numeric range "
                "(uniform, loguniform, randint, ...)")
    if scheduler == "bohb" and experiment.output.checkpoint_every not in (1, "auto"):
        raise ValueError(
            f"output.checkpoint_every: BOHB's HyperBand pauses trials at rung boundaries and "
            f"resumes them from their last checkpoint, got checkpoint_every="
            f"{experiment.output.checkpoint_every}; use auto (or 1) so that no epochs are lost "
            "or repeated")
