"""``pbt`` and ``pb2``: Ray's PopulationBasedTraining and PB2 over a study's training
hyperparameters, with the epoch as time unit, built from the spec, and what ``preview`` says
they do.

Mutations come from the search_space entries of the mutated keys, and a mutated value stays
inside its entry (Ray multiplies by 0.8/1.2 without bounds: a momentum of 0.95 became 1.14, a
TrainSpec error), rounded to the entry's step and integer type (:class:`Bounds`). How a trial
copies another (seeding, snapshots of copied checkpoints) is exploit.py's :class:`Population`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..spec import Experiment, SpecError
from ..spec.population import Pb2Spec, PbtSpec, mutated_keys
from .exploit import TIME_ATTR, Population

__all__ = ["make_pbt", "make_pb2", "Bounds", "describe_population"]


@dataclass(frozen=True)
class Bounds:
    """Keeps mutated values inside their search_space entries: Ray's ``custom_explore_fn``.

    ``ranges``: key -> (kind, low, high, step); a ``choice``/``grid`` key is absent (Ray only
    moves it between the listed values)."""

    ranges: dict[str, tuple[str, float, float, Optional[float]]]

    @classmethod
    def of(cls, experiment: Experiment) -> "Bounds":
        out: dict[str, tuple[str, float, float, Optional[float]]] = {}
        for key in mutated_keys(experiment):
            e: Any = experiment.search_space[key]
            if e.type in ("choice", "grid", "fixed"):
                continue
            high = e.high - 1 if e.type == "randint" else e.high
            out[key] = (str(e.type), float(e.low), float(high), getattr(e, "q", None))
        return cls(out)

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        config = dict(config)
        for key, (kind, low, high, step) in self.ranges.items():
            if key not in config:
                continue
            value = min(max(float(config[key]), low), high)
            if step:
                value = min(max(round(value / step) * step, low), high)
            config[key] = int(round(value)) if kind in ("randint", "qrandint") else float(value)
        return config

    def as_pb2(self) -> dict[str, Any]:
        """PB2's ``hyperparam_bounds``."""
        return {k: [low, high] for k, (_, low, high, _) in self.ranges.items()}


def _mutations(experiment: Experiment) -> dict[str, Any]:
    """Ray's ``hyperparam_mutations``: each mutated key's search_space entry as Ray samples it
    (a list for a choice or grid: Ray moves to a neighbouring value)."""
    from ..search_spaces.convert import _entry_to_ray

    out: dict[str, Any] = {}
    for key in mutated_keys(experiment):
        entry = experiment.search_space[key]
        out[key] = (list(entry.values) if entry.type in ("choice", "grid")
                    else _entry_to_ray(entry, as_grid=False))
    return out


def _checked(experiment: Experiment, kind: type) -> Any:
    """The scheduler section as ``kind`` (``SCHEDULERS`` dispatches on ``name``; a mismatch is
    a registry bug). The Experiment ran ``check_population`` when it was validated."""
    s = experiment.scheduler
    if not isinstance(s, kind):
        raise TypeError(f"scheduler {s.name!r} reached the builder for {kind.__name__}")
    return s


def make_pbt(experiment: Experiment) -> Any:
    """Ray's PopulationBasedTraining for a ``pbt`` scheduler section."""
    from ray.tune.schedulers import PopulationBasedTraining

    s: PbtSpec = _checked(experiment, PbtSpec)

    class PBT(Population, PopulationBasedTraining):
        pass

    scheduler = PBT(time_attr=TIME_ATTR, perturbation_interval=s.perturbation_interval,
                    burn_in_period=s.burn_in_period, hyperparam_mutations=_mutations(experiment),
                    quantile_fraction=s.quantile_fraction,
                    resample_probability=s.resample_probability,
                    custom_explore_fn=Bounds.of(experiment), synch=s.synch)
    scheduler._setup(experiment.search.seed, experiment.epoch_budget)
    return scheduler


def make_pb2(experiment: Experiment) -> Any:
    """Ray's PB2 for a ``pb2`` scheduler section (scikit-learn's GP, as Ray 2.60 ships it)."""
    try:
        from ray.tune.schedulers.pb2 import PB2 as RayPB2
    except ImportError as exc:  # pragma: no cover - scikit-learn is a tunefleet dependency
        raise SpecError("scheduler.name", f"PB2 cannot be imported ({exc})", "pb2",
                        fix="pip install scikit-learn") from None

    s: Pb2Spec = _checked(experiment, Pb2Spec)
    bounds = Bounds.of(experiment)

    class PB2(Population, RayPB2):
        pass

    scheduler = PB2(time_attr=TIME_ATTR, perturbation_interval=s.perturbation_interval,
                    hyperparam_bounds=bounds.as_pb2(), quantile_fraction=s.quantile_fraction,
                    custom_explore_fn=bounds, synch=s.synch)
    scheduler._setup(experiment.search.seed, experiment.epoch_budget)
    return scheduler


def describe_population(experiment: Experiment, trials: int,
                        at_once: Optional[int] = None) -> str:
    """What ``preview`` says a ``pbt``/``pb2`` study will do, read from the Ray scheduler
    object :func:`make_pbt`/:func:`make_pb2` builds ('' for other schedulers). ``at_once``:
    how many trials the cluster runs at once, when known."""
    name = experiment.scheduler.name
    if name not in ("pbt", "pb2"):
        return ""
    scheduler = make_pbt(experiment) if name == "pbt" else make_pb2(experiment)
    copied = _quantile_size(scheduler, trials)
    interval = int(scheduler._perturbation_interval)
    start = max(interval, int(scheduler._burn_in_period))
    when = (f"every {interval} epoch{'s' if interval > 1 else ''} from epoch {start}"
            + (" (synchronously: each decision waits for the whole population)"
               if scheduler._synch else ""))
    who = (f"the bottom {copied} of {trials} copy the weights of one of the top {copied}"
           if copied else f"no trial copies another ({trials} trials: too few for a quantile "
                          f"of {scheduler._quantile_fraction:g})")
    if name == "pbt":
        factors = " or ".join(f"{f:g}" for f in scheduler._perturbation_factors)
        how = (f"then each mutated value is multiplied by {factors} (a choice moves to a "
               f"neighbour) or, with probability {scheduler._resample_probability:g}, drawn "
               "again; within its search_space bounds")
    else:
        how = "then a GP bandit over the bounds picks the new values (linear scale)"
    keys = ", ".join(scheduler._hyperparam_mutations)
    turns = (f" ({at_once} train at once; the others wait paused and take turns at each "
             "decision)" if at_once is not None and at_once < trials else "")
    return f"population of {trials}{turns}; {when}, {who}; {how}. Mutated: {keys}"


def _quantile_size(scheduler: Any, trials: int) -> int:
    """How many trials Ray's ``_quantiles`` puts in each quantile of a population of
    ``trials``, asked of the scheduler itself with stand-in trials."""
    from ray.tune.schedulers.pbt import _PBTTrialState

    class Member:
        experiment_tag = ""

        def is_finished(self) -> bool:
            return False

    saved = scheduler._trial_state
    try:
        scheduler._trial_state = {}
        for i in range(trials):
            member = Member()
            state = _PBTTrialState(member)  # type: ignore[arg-type]
            state.last_score = float(i)
            scheduler._trial_state[member] = state
        lower, _ = scheduler._quantiles()
    finally:
        scheduler._trial_state = saved
    return len(lower)
