"""Trial schedulers by name: ``fifo``, ``asha``, ``hyperband``, ``median``, ``bohb``, ``pbt``,
``pb2`` (population.py); time unit = epoch."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from ..spec import Experiment
from ..spec.methods import BohbSpec
from ..spec.sections import AshaSpec, HyperBandSpec, MedianSpec
from .population import make_pb2, make_pbt

__all__ = ["SCHEDULERS", "make_scheduler", "TIME_ATTR"]

TIME_ATTR = "epoch"  # every trial reports its epoch count; resumed trials continue it

_Section = TypeVar("_Section", AshaSpec, HyperBandSpec, MedianSpec, BohbSpec)


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


def _bohb(experiment: Experiment) -> Any:
    from ray.tune.schedulers import HyperBandForBOHB

    s = _section(experiment, BohbSpec)
    return HyperBandForBOHB(time_attr=TIME_ATTR, max_t=experiment.epoch_budget,
                            reduction_factor=s.reduction_factor)


SCHEDULERS: dict[str, Callable[[Experiment], Any]] = {
    "fifo": _fifo, "asha": _asha, "hyperband": _hyperband, "median": _median, "bohb": _bohb,
    "pbt": make_pbt, "pb2": make_pb2,
}


def make_scheduler(experiment: Experiment) -> Any:
    """The Ray scheduler for ``scheduler.name`` (metric and mode come from TuneConfig)."""
    return SCHEDULERS[experiment.scheduler.name](experiment)

