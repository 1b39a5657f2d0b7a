"""KerasTuner's tuner arguments as a tunefleet spec: what maps to what, and the arguments
tunefleet refuses because it cannot honour them (never ignored in silence)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Optional

from ..spec import SpecError, apply_overrides

__all__ = ["TunerArguments", "REFUSED", "KT_FIELDS", "refuse_unsupported", "hyperband_trials"]

# Spec fields by the tuner argument that sets them (errors name the argument the user wrote).
KT_FIELDS: dict[str, str] = {
    "name": "project_name", "output.storage": "directory", "search.num_samples": "max_trials",
    "search.seed": "seed", "search.executions_per_trial": "executions_per_trial",
    "search.max_concurrent": "max_concurrent", "search.time_budget_s": "time_budget_s",
    "search.n_initial_points": "num_initial_points",
    "failure.max_retries": "max_retries_per_trial",
    "failure.max_consecutive": "max_consecutive_failed_trials",
    "resources": "resources_per_trial", "cluster.address": "address", "scheduler": "scheduler",
}

# KerasTuner arguments tunefleet cannot honour, with the reason and what to do instead.
REFUSED: dict[str, str] = {
    "max_model_size": "tunefleet does not skip models by parameter count; keep the search "
                      "space's largest model within memory, or set resources_per_trial",
    "optimizer": "KerasTuner re-compiles the built model with it; tunefleet trains the model "
                 "as your build(hp) compiles it: compile it there",
    "loss": "KerasTuner re-compiles the built model with it; tunefleet trains the model as "
            "your build(hp) compiles it: compile it there",
    "metrics": "KerasTuner re-compiles the built model with them; tunefleet trains the model "
               "as your build(hp) compiles it: add the metrics there",
    "distribution_strategy": "one trial spreads over its GPUs with "
                             "settings=['train.distribute.strategy=mirrored'] and "
                             "resources_per_trial={'gpu': N}",
    "tuner_id": "KerasTuner's chief/worker ids belong to its own distributed mode; Ray Tune "
                "runs the trials in parallel: use max_concurrent, resources_per_trial and "
                "address",
}


def refuse_unsupported(kwargs: dict[str, Any]) -> None:
    """SpecError for a refused KerasTuner argument, TypeError for an unknown one."""
    import warnings

    if "logger" in kwargs:  # KerasTuner itself ignores it, with this warning
        kwargs = dict(kwargs)
        kwargs.pop("logger")
        warnings.warn("The `logger` argument is no longer supported by KerasTuner and is "
                      "ignored.", DeprecationWarning, stacklevel=3)
    for name, value in kwargs.items():
        if name in REFUSED:
            raise SpecError(name, f"is a KerasTuner argument tunefleet cannot honour: "
                            f"{REFUSED[name]}", value, fix=f"remove {name}=")
    if kwargs:
        raise TypeError(f"unexpected keyword argument(s) {sorted(kwargs)}; tunefleet's tuners "
                        "take KerasTuner's arguments plus scheduler, resources_per_trial, "
                        "max_concurrent, address, time_budget_s and settings")


def hyperband_trials(max_epochs: int, factor: int, iterations: int) -> tuple[int, int]:
    """KerasTuner's Hyperband as (trials, smallest epoch budget), read from KerasTuner's own
    oracle: every bracket's initial models, times ``iterations``."""
    import keras_tuner as kt

    oracle = kt.oracles.HyperbandOracle(objective=kt.Objective("score", "max"),
                                        max_epochs=max_epochs, factor=factor)
    brackets = range(oracle._get_num_brackets())
    trials = sum(oracle._get_size(b, 0) for b in brackets) * iterations
    return trials, min(oracle._get_epochs(b, 0) for b in brackets)


@dataclass
class TunerArguments:
    """What a tuner was created with, in spec terms (see :meth:`spec`)."""

    algorithm: str
    objective: dict[str, Any]
    max_trials: int
    seed: Optional[int]
    executions_per_trial: int
    directory: str
    project_name: str
    max_retries_per_trial: int
    max_consecutive_failed_trials: Optional[int]
    scheduler: dict[str, Any]
    resources: dict[str, Any]
    max_concurrent: Optional[int]
    address: Optional[str]
    time_budget_s: Optional[float]
    settings: list[str] = field(default_factory=list)
    search_extra: dict[str, Any] = field(default_factory=dict)
    epochs: Optional[int] = None  # Hyperband's max_epochs: search(epochs=) does not apply

    def __post_init__(self) -> None:
        if self.seed is None:  # KerasTuner draws one; recorded in the spec, so reproducible
            self.seed = random.randrange(2**31)
        for key in self.resources:
            if key not in ("cpu", "gpu"):
                raise SpecError("resources_per_trial", f"takes 'cpu' and 'gpu', not {key!r}",
                                self.resources, fix="pass e.g. {'cpu': 1, 'gpu': 0.5}")

    def spec(self, name: str, epochs: int, reference: str) -> dict[str, Any]:
        """The study's spec for a search of ``epochs`` epochs."""
        search: dict[str, Any] = {"algorithm": self.algorithm, "seed": self.seed,
                                  "num_samples": self.max_trials,
                                  "executions_per_trial": self.executions_per_trial,
                                  **self.search_extra}
        if self.max_concurrent is not None:
            search["max_concurrent"] = self.max_concurrent
        if self.time_budget_s is not None:
            search["time_budget_s"] = self.time_budget_s
        spec: dict[str, Any] = {
            "name": name,
            "data": {"dataset": "arrays", "split": "last"},
            "model": {"hypermodel": reference},
            "train": {"epochs": self.epochs or epochs},
            "search": search,
            "scheduler": self.scheduler,
            "objective": self.objective,
            "resources": self.resources,
            "failure": {"max_retries": self.max_retries_per_trial,
                        "max_consecutive": self.max_consecutive_failed_trials},
            "output": {"storage": self.directory},
        }
        if self.address is not None:
            spec["cluster"] = {"address": self.address}
        return apply_overrides(spec, self.settings)
