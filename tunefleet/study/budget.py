"""``search.budget`` on the driver: how many trials a budget can start, the order in which a grid
is cut, and the stopper that ends the study once the budget is spent.

A budget of epochs counts what the trials report as trained (every execution's epoch, an epoch
repeated after a retry again: the reporter's ``executions_trained``, summed as summary.json's
``epochs_total``); a budget of trials is Ray's ``num_samples``; a budget of seconds runs from
Ray's first step, as ``search.time_budget_s`` does. When it is spent the failure policy's
tracker ends the study (``FailureTracker.stop_study``), so the trials still running or waiting
are recorded as stopped by the study. Trials that report while Ray stops the others can take a
study a few epochs past its budget; comparisons read every study at the budget itself
(reports/compare.py).
"""

from __future__ import annotations

import math
import time
from typing import Any, Optional

import numpy as np

from ..spec import Experiment
from ..spec.budget import BudgetSpec
from ..spec.population import POPULATION_SCHEDULERS
from ..trainables.reporter import TRAINED_KEY
from .failure_policy import SEARCH_BUDGET_SPENT

__all__ = ["budget_trials", "grid_points", "budget_searcher", "with_budget", "budget_spent_so_far",
           "spent_search_budget", "spent_budget_note", "until_spent", "MAX_OPEN_TRIALS"]

# Trials a budget of seconds lets Ray create: the clock, not this number, ends such a study.
MAX_OPEN_TRIALS = 10_000


def budget_trials(experiment: Experiment) -> int:
    """The most trials the study's budget can start: the budget itself for trials; one per
    epoch the budget holds (a trial trains at least one epoch per execution before it reports)
    for epochs; :data:`MAX_OPEN_TRIALS` for seconds. A PBT/PB2 population is what trains to
    the end within the budget (``search.num_samples`` under a budget of seconds)."""
    budget = experiment.search.budget
    if budget is None:
        raise ValueError("budget_trials needs a study with search.budget")
    if budget.trials is not None:
        return budget.trials
    executions = experiment.search.executions_per_trial
    if experiment.scheduler.name in POPULATION_SCHEDULERS:
        # PBT creates its whole population at once and trains it side by side, least-trained
        # first: one trial per budget epoch would spend the budget before any trial got past
        # its first decision. The population is as many trials as can train to the end.
        if budget.epochs is not None:
            return max(2, budget.epochs // (experiment.epoch_budget * executions))
        return experiment.search.num_samples
    if budget.epochs is not None:
        return math.ceil(budget.epochs / executions)
    return MAX_OPEN_TRIALS


def _grid_axes(experiment: Experiment) -> list[tuple[str, list[Any]]]:
    return [(key, list(entry.values)) for key, entry in experiment.search_space.items()
            if entry.type in ("grid", "choice")]


def grid_points(experiment: Experiment, count: int) -> list[dict[str, Any]]:
    """The first ``count`` configurations of the grid in an order drawn from ``search.seed``:
    each pass over the grid is a new permutation of it, so a budget smaller than the grid runs
    a random subset of it (not one corner), and a larger one repeats every configuration once
    per pass before any twice."""
    axes = _grid_axes(experiment)
    sizes = [len(values) for _, values in axes]
    size = math.prod(sizes)
    rng = np.random.default_rng(experiment.search.seed)
    points: list[dict[str, Any]] = []
    while len(points) < count:
        for index in rng.permutation(size)[:count - len(points)]:
            point, rest = {}, int(index)
            for (key, values), n in zip(reversed(axes), reversed(sizes), strict=True):
                rest, digit = divmod(rest, n)
                point[key] = values[digit]
            points.append({key: point[key] for key, _ in axes})
    return points


def budget_searcher(experiment: Experiment, max_concurrent: int) -> Optional[Any]:
    """Grid search under a budget: Ray's grid generator given the grid's points in the order of
    :func:`grid_points` (Ray's own order would cut the grid at one corner); None otherwise."""
    if experiment.search.budget is None or experiment.search.algorithm != "grid":
        return None
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from ..spec.methods import UNLIMITED_SEARCHER_SCHEDULERS

    points = grid_points(experiment, budget_trials(experiment))
    # HyperBand, PBT and PB2 must see their trials created together (spec/methods.py).
    limit = 0 if experiment.scheduler.name in UNLIMITED_SEARCHER_SCHEDULERS else max_concurrent
    return BasicVariantGenerator(points_to_evaluate=points, random_state=experiment.search.seed,
                                 max_concurrent=limit)


def until_spent(budget: BudgetSpec) -> str:
    """How long a study with ``budget`` runs, as preview and the console say it: ``until 24
    epochs are spent``, ``until 600 s are spent``, ``until 12 trials have started``."""
    amount, unit = f"{budget.amount:g}", budget.unit
    if unit == "wall_s":
        return f"until {amount} s are spent"
    one = budget.amount == 1
    if unit == "trials":
        return f"until {amount} trial{'' if one else 's'} {'has' if one else 'have'} started"
    return f"until {amount} epoch{'' if one else 's'} {'is' if one else 'are'} spent"


def spent_search_budget(stopped: Optional[str]) -> bool:
    """Whether a summary's ``stopped`` says ``search.budget`` was spent (a resume does not
    reopen such a study, unlike one whose ``time_budget_s`` ran out)."""
    return stopped is not None and stopped.startswith(SEARCH_BUDGET_SPENT.split("{")[0])


def spent_budget_note(budget: Optional[BudgetSpec]) -> str:
    """What a resumed study whose ``search.budget`` was spent adds to its ``stopped``: the resume
    ran nothing (a resume may not change ``search.budget``, and ``search.num_samples`` does not
    apply under one), so more training is a new study with a larger budget."""
    more = ""
    if budget is not None:
        amount = budget.amount * 2
        value = f"{amount:g}" if budget.unit == "wall_s" else str(int(amount))
        more = (f", e.g. `tunefleet run SPEC --set search.budget.{budget.unit}={value} "
                "--set name=NEW`")
    return (" (before it was resumed; a resume cannot add to a spent search.budget: to train "
            f"more, start a new study with a larger budget{more})")


def budget_spent_so_far(experiment: Experiment, storage: Any) -> float:
    """What a study being resumed has spent of its budget already: epochs trained, or the
    seconds from its first trial's start to its last result (0 without a budget)."""
    budget = experiment.search.budget
    if budget is None or budget.trials is not None:
        return 0.0
    from ..reports.load import load_study

    study = load_study(storage)
    if budget.epochs is not None:
        return float(study.epochs_run)
    return float(study.history["elapsed_s"].max()) if len(study.history) else 0.0


def with_budget(experiment: Experiment, tracker: Any, spent: float = 0.0) -> tuple[list[Any], Any]:
    """(callbacks to add, the study's stopper): without a budget, none and ``tracker``; with
    one, a stopper that counts what is spent and ends the study through ``tracker`` (the
    failure policy's), combined with it. ``spent``: what a resumed study had spent already."""
    spec_budget = experiment.search.budget
    if spec_budget is None or spec_budget.trials is not None:  # num_samples keeps a trial budget
        return [], tracker
    budget: BudgetSpec = spec_budget
    from ray.tune import Callback
    from ray.tune.stopper import CombinedStopper, Stopper

    why = SEARCH_BUDGET_SPENT.format(budget.describe())

    class _BudgetStopper(Callback, Stopper):
        def __init__(self) -> None:
            self.spent = spent
            self._deadline: Optional[float] = None

        # Counted from the callback: Ray passes a finished trial's last result to the stopper a
        # second time (its "duplicate" end-of-trial result), but to callbacks only once.
        def on_trial_result(self, iteration, trials, trial, result, **info):
            if budget.epochs is not None:
                self.spent += int(result.get(TRAINED_KEY, 1) or 0)

        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            if budget.wall_s is not None:
                now = time.monotonic()
                self._deadline = self._deadline or now + max(budget.wall_s - spent, 0.0)
                done = now >= self._deadline
            else:
                done = self.spent >= budget.amount
            if done:
                tracker.stop_study(why)
            return done

    stopper = _BudgetStopper()
    return [stopper], CombinedStopper(tracker, stopper)
