"""Population-based training: ``scheduler.name: pbt`` (Ray's PopulationBasedTraining) and
``pb2`` (Ray's PB2, a GP bandit choosing the new values), and the checks that tie them to the
search space.

A population trains side by side; every ``perturbation_interval`` epochs a trial in the bottom
``quantile_fraction`` copies the weights (and optimizer state) of one in the top fraction and
continues with *mutated* training hyperparameters. Only hyperparameters that own no weights can
change mid-training (:data:`MUTABLE`); structural ones (filters, layers, units, ...) may still
be sampled once per trial, when ``mutate`` leaves them out, and are then copied with the
weights they belong to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field, field_validator

from .base import StrictModel, suggest
from .errors import SpecError

if TYPE_CHECKING:
    from .experiment import Experiment

__all__ = ["PbtSpec", "Pb2Spec", "MUTABLE", "POPULATION_SCHEDULERS", "RANGES",
           "check_population", "mutated_keys"]

# Hyperparameters a trial can change between two epochs: they own no variables (dropout layers
# hold only a seed state, see trainables/checkpoint.py), or only the optimizer's learning-rate
# variable, which the trainable sets to the new value after restoring a cloned checkpoint.
MUTABLE = ("learning_rate", "momentum", "weight_decay", "batch_size", "dropout", "conv_dropout")
POPULATION_SCHEDULERS = ("pbt", "pb2")
# Entries PB2 can bound ([low, high]): its GP proposes any value in between.
RANGES = ("uniform", "quniform", "loguniform", "randint", "qrandint")
# Searchers that give Ray's PBT its population up front (it refuses model-based searchers).
_POPULATION_SEARCHERS = ("random", "grid")
_USES = {"momentum": ("sgd", "rmsprop"), "weight_decay": ("adamw",)}


class _PopulationSpec(StrictModel):
    # Epochs between two exploit/explore decisions of a trial (Ray's time unit here: epochs).
    perturbation_interval: int = Field(2, ge=1)
    # The bottom fraction copies the top fraction (Ray: at most half the population).
    quantile_fraction: float = Field(0.25, gt=0, le=0.5)
    # Which search_space keys change mid-training (default: every tuned one); the others are
    # sampled once per trial and copied with the weights.
    mutate: Optional[list[str]] = None
    # Ray's synchronous PBT: every decision waits for the whole population to reach the epoch.
    synch: bool = False

    @field_validator("mutate")
    @classmethod
    def _trainable_keys(cls, value: Optional[list[str]]) -> Optional[list[str]]:
        if value is None:
            return value
        if not value:
            raise ValueError("mutate lists the search_space keys to mutate, got []; list at "
                             "least one, or leave mutate out to mutate every tuned one")
        for key in value:
            if value.count(key) > 1:
                raise ValueError(f"{key!r} is listed twice; list each key once")
            if key not in MUTABLE:
                raise ValueError(f"{_structural(key)}, got {value!r}; remove {key!r} from "
                                 "mutate (a search_space entry of it is then sampled once per "
                                 "trial and copied with the weights)")
        return value


class PbtSpec(_PopulationSpec):
    """Population-based training (Ray's PopulationBasedTraining): a copied trial multiplies
    each mutated range by 0.8 or 1.2 (a choice moves to a neighbouring value), or with
    ``resample_probability`` draws it anew from its search_space entry; values stay in the
    entry's bounds."""

    name: Literal["pbt"]
    resample_probability: float = Field(0.25, ge=0, le=1)
    # No decision before this epoch (Ray's PB2 has no such setting).
    burn_in_period: int = Field(0, ge=0)


class Pb2Spec(_PopulationSpec):
    """Population-based bandits (Ray's PB2): a Gaussian-process bandit over the mutated
    hyperparameters' ranges picks a copied trial's new values from how the population's
    objective improved; every mutated entry must be a numeric range (its bounds), modelled on
    a linear scale (a loguniform range too)."""

    name: Literal["pb2"]


def _structural(key: str) -> str:
    hint = suggest(key, MUTABLE)
    budget = (" (epochs is every trial's budget: set train.epochs)" if key == "epochs"
              else "")
    return (f"{key!r} cannot change while a trial trains{budget}: PBT copies a trial's weights "
            f"into another, and only hyperparameters that own no weights can then take a new "
            f"value; {hint}mutable: {', '.join(MUTABLE)}")


def mutated_keys(experiment: "Experiment") -> list[str]:
    """The search_space keys PBT/PB2 mutate: ``scheduler.mutate``, or every tuned entry."""
    listed = getattr(experiment.scheduler, "mutate", None)
    if listed is not None:
        return list(listed)
    return [k for k, e in experiment.search_space.items() if e.type != "fixed"]


def check_population(experiment: "Experiment") -> None:
    """Raise SpecError for the first thing a ``pbt``/``pb2`` study could not do; nothing for
    other schedulers. What it checks needs the whole spec (search space, searcher, optimizer,
    checkpoints), so it runs on the validated Experiment."""
    scheduler = experiment.scheduler
    name = scheduler.name
    if not isinstance(scheduler, (PbtSpec, Pb2Spec)):
        return
    where = "scheduler.mutate" if getattr(scheduler, "mutate", None) is not None else "search_space"
    space = experiment.search_space
    if experiment.model.hypermodel:
        raise SpecError("model.hypermodel", f"{name} mutates the training hyperparameters "
                        "tunefleet compiles; a hypermodel compiles its own model",
                        experiment.model.hypermodel, fix="use model.builder, or scheduler asha "
                        "or hyperband")
    if experiment.search.algorithm not in _POPULATION_SEARCHERS:
        raise SpecError("search.algorithm", f"Ray's {name} draws its population up front and "
                        "refuses a model-based searcher", experiment.search.algorithm,
                        fix="use search.algorithm: random (or grid)")
    if experiment.search.max_concurrent is not None:
        raise SpecError("search.max_concurrent", f"{name} trains its whole population side by "
                        "side (trials that do not fit wait paused and take turns); a limit here "
                        "would start the population in batches that never meet",
                        experiment.search.max_concurrent,
                        fix="remove it (resources still limit how many trials run at once)")
    if "epochs" in space:
        raise SpecError("search_space.epochs", _structural("epochs"),
                        fix="remove it from search_space")
    if experiment.output.checkpoint_every not in (1, "auto"):
        raise SpecError("output.checkpoint_every", f"{name} copies a trial's checkpoint of the "
                        "epoch it decides at, so every epoch needs one",
                        experiment.output.checkpoint_every, fix="use auto (or 1)")
    budget = experiment.epoch_budget
    start = max(scheduler.perturbation_interval, getattr(scheduler, "burn_in_period", 0))
    if start >= budget:
        raise SpecError("scheduler.perturbation_interval", f"the first decision would come at "
                        f"epoch {start}, but trials train {budget} epochs, so no trial would "
                        "ever copy another", scheduler.perturbation_interval,
                        fix=f"use a perturbation_interval (and burn_in_period) below {budget}")
    keys = mutated_keys(experiment)
    if not keys:
        raise SpecError("search_space", f"{name} needs hyperparameters to mutate; the search "
                        "space tunes none", fix=f"add one or more of {', '.join(MUTABLE)}")
    for key in keys:
        entry = space.get(key)
        if entry is None or entry.type == "fixed":
            raise SpecError(f"scheduler.mutate.{key}", "has no tuned search_space entry to "
                            "draw mutations from", fix=f"add search_space.{key} (a range or "
                            "a choice), or remove it from mutate")
        if key not in MUTABLE:
            raise SpecError(f"{where}.{key}", _structural(key),
                            {"type": entry.type,
                             **entry.model_dump(exclude={"type"}, exclude_none=True)},
                            fix="fix it in model.params, or list the keys to mutate in "
                            "scheduler.mutate (the others are sampled once per trial and "
                            "copied with the weights)")
        if name == "pb2" and entry.type not in RANGES:
            raise SpecError(f"search_space.{key}", f"PB2 needs bounds to model, got a "
                            f"{entry.type} entry", fix="use a range (uniform, loguniform, "
                            "quniform, randint or qrandint), or scheduler pbt")
        _check_optimizer_uses(experiment, key, entry)


def _check_optimizer_uses(experiment: "Experiment", key: str, entry) -> None:
    """Momentum and weight decay mutate only where the optimizer reads them, and momentum
    never through 0 (Keras' SGD and RMSprop keep momentum slots only above 0, so a checkpoint
    with them cannot be loaded into an optimizer without, or the reverse)."""
    users = _USES.get(key)
    if users is None:
        return
    from .space import entry_values

    optimizers = {experiment.train.optimizer}
    if "optimizer" in experiment.search_space:
        optimizers = set(entry_values(experiment.search_space["optimizer"]))
    if not optimizers & set(users):
        raise SpecError(f"search_space.{key}", f"no trial's optimizer reads it "
                        f"({', '.join(sorted(map(str, optimizers)))}), so mutating it would "
                        "change nothing", fix=f"use train.optimizer: {' or '.join(users)}, or "
                        f"remove {key} from the mutated keys")
    if key == "momentum" and min(entry_values(entry)) <= 0:
        raise SpecError("search_space.momentum", "Keras keeps momentum slots only for "
                        "momentum > 0, so a trial could not load a copied optimizer state "
                        "across 0: the entry's lowest value", min(entry_values(entry)),
                        fix="start the range above 0 (e.g. low: 0.5)")
