"""Trial schedulers by name: ``fifo``, ``asha``, ``hyperband``, ``median``; time unit = epoch."""

from __future__ import annotations

import math
from typing import Any, Callable, TypeVar

from ..spec import Experiment
from ..spec.sections import AshaSpec, HyperBandSpec, MedianSpec

__all__ = ["SCHEDULERS", "make_scheduler", "cut_epochs", "TIME_ATTR"]

TIME_ATTR = "epoch"  # every trial reports its epoch count; resumed trials continue it

_Section = TypeVar("_Section", AshaSpec, HyperBandSpec, MedianSpec)


def _section(experiment: Experiment, kind: type[_Section]) -> _Section:
    """The scheduler section as the kind this builder is registered for (``SCHEDULERS``
    dispatches on ``name``; a mismatch is a registry bug, not a user error)."""
    s = experiment.scheduler
    if not isinstance(s, kind):
        raise TypeError(f"scheduler {s.name!r} reached the builder for {kind.__name__}")
    return s


def _fifo(experiment: Experiment) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def _asha(experiment: Experiment) -> Any:
    from ray.tune.schedulers import ASHAScheduler

    s = _section(experiment, AshaSpec)
    return ASHAScheduler(time_attr=TIME_ATTR, max_t=experiment.epoch_budget,
                         grace_period=s.grace_period, reduction_factor=s.reduction_factor,
                         brackets=s.brackets)


def _hyperband(experiment: Experiment) -> Any:
    from ray.tune.schedulers import HyperBandScheduler

    s = _section(experiment, HyperBandSpec)
    return HyperBandScheduler(time_attr=TIME_ATTR, max_t=experiment.epoch_budget,
                              reduction_factor=s.reduction_factor)


def _median(experiment: Experiment) -> Any:
    from ray.tune.schedulers import MedianStoppingRule, TrialScheduler

    class MedianStoppingWithoutTimeSlicing(MedianStoppingRule):
        """Ray's rule pauses a trial whenever too few others have reached its epoch ("time
        slicing"). With epochs as the unit every pause costs a checkpoint, a model rebuild and
        a retrace (it tripled a 12-trial study's wall time), so such trials continue instead."""

        def _on_insufficient_samples(self, tune_controller, trial, time):
            return TrialScheduler.CONTINUE

    s = _section(experiment, MedianSpec)
    return MedianStoppingWithoutTimeSlicing(
        time_attr=TIME_ATTR, grace_period=s.grace_period,
        min_samples_required=s.min_samples_required)


SCHEDULERS: dict[str, Callable[[Experiment], Any]] = {
    "fifo": _fifo, "asha": _asha, "hyperband": _hyperband, "median": _median,
}


def make_scheduler(experiment: Experiment) -> Any:
    """The Ray scheduler for ``scheduler.name`` (metric and mode come from TuneConfig)."""
    return SCHEDULERS[experiment.scheduler.name](experiment)


def cut_epochs(experiment: Experiment) -> list[int]:
    """Epochs at which the scheduler may stop or pause trials (for the preview).

    ASHA: its rungs, ``grace_period·rf^k`` below ``max_t`` (the formula Ray uses, bracket 0).
    HyperBand: the rung lengths of its largest bracket. Median: every epoch from the grace
    period. FIFO: none.
    """
    s = experiment.scheduler
    budget = experiment.epoch_budget
    if s.name == "asha":
        rungs = int(math.log(budget / s.grace_period) / math.log(s.reduction_factor) + 1)
        return sorted({int(s.grace_period * s.reduction_factor ** k) for k in range(rungs)
                       if s.grace_period * s.reduction_factor ** k < budget})
    if s.name == "hyperband":
        eta = s.reduction_factor
        s_max = int(math.log(budget) / math.log(eta) + 1e-9)
        return sorted({max(1, int(round(budget * eta ** (-i)))) for i in range(1, s_max + 1)})
    if s.name == "median":
        return list(range(s.grace_period, budget))
    return []
