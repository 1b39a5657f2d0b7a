"""The epochs where a scheduler stops or pauses trials, read from the Ray scheduler that
``make_scheduler`` builds (its rungs and brackets), so the preview cannot drift from Ray."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..spec import Experiment, SpecError
from .registry import make_scheduler

__all__ = ["Bracket", "brackets", "cut_epochs"]

_MOST_BRACKETS = 200  # a reduction factor this close to 1 makes bands of astronomical size


@dataclass(frozen=True)
class Bracket:
    """One bracket of ASHA, HyperBand or BOHB's HyperBand, as Ray's scheduler object computes
    it."""

    rungs: tuple[int, ...]  # epochs (below the budget) where trials are compared and the best go on
    stop: int  # the epoch at which the bracket stops its last trials (HyperBand: may be < budget)
    budget: int  # the scheduler's max_t
    keep: tuple[int, ...] = ()  # HyperBand: how many trials go on from each rung (Ray's n)
    size: int | None = None  # HyperBand: how many trials Ray puts in the bracket; ASHA: None
    trials: int | None = None  # HyperBand: how many of the study's trials land in it

    @property
    def cuts(self) -> tuple[int, ...]:
        """Every epoch below the budget at which this bracket may pause or stop a trial."""
        return tuple(sorted({*self.rungs, self.stop} - {self.budget}))


def brackets(experiment: Experiment, trials: int = 0) -> list[Bracket]:
    """ASHA's, HyperBand's or BOHB's brackets (in the order Ray fills them); [] for other
    schedulers.

    ``trials``: the study's trial count, which HyperBand's brackets are filled with in order
    (BOHB's HyperBand fills the largest bracket first, Ray's HyperBand the smallest).
    """
    name = experiment.scheduler.name
    if name not in ("asha", "hyperband", "bohb"):
        return []
    scheduler = make_scheduler(experiment)
    if name == "asha":
        return _asha(scheduler)
    return _hyperband(scheduler, trials, largest_first=name == "bohb")


def cut_epochs(experiment: Experiment) -> list[int]:
    """Every epoch below the budget at which the scheduler may stop or pause a trial.

    ASHA, HyperBand and BOHB: the union of their brackets' cuts. Median: every epoch from Ray's
    grace period (it has no rungs). FIFO: none.
    """
    budget = experiment.epoch_budget
    if experiment.scheduler.name == "median":
        grace = int(make_scheduler(experiment)._grace_period)
        return list(range(grace, budget))
    return sorted({c for b in brackets(experiment) for c in b.cuts})


def _epoch(value: Any) -> int:
    """A milestone Ray computed (a float, like the reduction factor) as the epoch it acts at:
    trials report whole epochs, so a rung at 2.5 acts at epoch 3."""
    whole = int(value)
    return whole if whole == value else whole + 1


def _asha(scheduler: Any) -> list[Bracket]:
    """``AsyncHyperBandScheduler._brackets[i]._rungs``: (milestone, records), highest first.
    A trial at ``max_t`` is stopped, so milestones from ``max_t`` on cut nothing."""
    max_t = int(scheduler._max_t)
    out = []
    for bracket in scheduler._brackets:
        rungs = sorted({_epoch(m) for m, _ in bracket._rungs if m < max_t})
        out.append(Bracket(rungs=tuple(rungs), stop=max_t, budget=max_t))
    return out


def _hyperband(scheduler: Any, trials: int, largest_first: bool = False) -> list[Bracket]:
    """Ray's synchronous HyperBand: the brackets its ``on_trial_add`` creates (it skips those
    whose first rung ``_get_r0(s)`` is 0), each halved empty by Ray's ``successive_halving``
    to list its rungs; ``trials`` fill them in order, ``_n0`` each, round after round.
    ``largest_first``: HyperBandForBOHB's order, from the bracket with the most rungs
    (``s = _s_max_1 - 1``) down."""
    if scheduler._s_max_1 > _MOST_BRACKETS:
        raise SpecError("scheduler.reduction_factor",
                        f"HyperBand would make {scheduler._s_max_1} brackets of up to "
                        f"{scheduler._max_t_attr} epochs", scheduler._eta,
                        fix="use a reduction factor of 2 or more")
    out = []
    order = range(scheduler._s_max_1)
    for s in (reversed(order) if largest_first else order):
        if scheduler._get_r0(s) == 0:
            continue
        bracket = scheduler._create_bracket(s)
        size, rungs, keep = int(bracket._n0), [], []
        while bracket._halves > 0:
            rungs.append(int(bracket._cumul_r))
            bracket.successive_halving("objective", 1.0)  # no trials: only the arithmetic runs
            keep.append(int(bracket._n))
        out.append(Bracket(rungs=tuple(rungs), stop=int(bracket._cumul_r),
                           budget=int(scheduler._max_t_attr), keep=tuple(keep), size=size))
    rounds, left = divmod(trials, sum(b.size or 0 for b in out))
    for i, b in enumerate(out):
        first = min(left, b.size or 0)
        left -= first
        out[i] = replace(b, trials=rounds * (b.size or 0) + first)
    return out
