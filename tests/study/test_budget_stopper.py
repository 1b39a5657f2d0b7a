"""search.budget on the driver without training: how many trials a budget can start, the seeded
order a grid is cut in, and the stopper that ends the study through the failure policy."""

from __future__ import annotations

import pytest

from tunefleet import Experiment
from tunefleet.storage import StudyStorage
from tunefleet.study.budget import (MAX_OPEN_TRIALS, budget_trials, grid_points, spent_search_budget,
                                    with_budget)
from tunefleet.study.failure_policy import FailureTracker, budget_spent


def _experiment(budget: dict, algorithm: str = "grid", seed: int = 0, **search) -> Experiment:
    return Experiment.from_dict({
        "name": "b",
        "search_space": {"learning_rate": {"type": "choice", "values": [0.001, 0.01, 0.1]},
                         "optimizer": {"type": "choice", "values": ["adam", "sgd"]},
                         "nesterov": {"type": "grid", "values": [True, False]},
                         "batch_size": 32},
        "search": {"algorithm": algorithm, "seed": seed, "budget": budget, **search}})


@pytest.mark.parametrize("budget, search, trials", [
    ({"trials": 7}, {}, 7),
    ({"epochs": 10}, {}, 10),
    ({"epochs": 10}, {"executions_per_trial": 3}, 4),  # a trial trains >= 3 epochs per report
    ({"wall_s": 60}, {}, MAX_OPEN_TRIALS),
])
def test_how_many_trials_a_budget_can_start(budget, search, trials):
    assert budget_trials(_experiment(budget, "random", **search)) == trials


@pytest.mark.parametrize("scheduler", ["pbt", "pb2"])
@pytest.mark.parametrize("budget, trials", [({"epochs": 54}, 6), ({"epochs": 10}, 2),
                                            ({"wall_s": 60}, 10)])
def test_a_population_under_a_budget_is_what_can_train_to_the_end(scheduler, budget, trials):
    # PBT trains its population side by side, least-trained first: one trial per budget epoch
    # (54 trials of 9 epochs) would spend the budget before any trial passed epoch 3.
    experiment = Experiment.from_dict({
        "name": "p", "train": {"epochs": 9},
        "search_space": {"learning_rate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}},
        "search": {"algorithm": "random", "budget": budget},
        "scheduler": {"name": scheduler, "perturbation_interval": 3}})
    count = budget_trials(experiment)
    assert isinstance(count, int) and count == trials


def test_a_grid_is_cut_in_a_seeded_random_order():
    experiment = _experiment({"trials": 5})
    first = grid_points(experiment, 12)
    assert first == grid_points(experiment, 12)  # the same seed, the same order
    assert first != grid_points(_experiment({"trials": 5}, seed=1), 12)
    keys = [tuple(sorted(p.items())) for p in first]
    assert len(set(keys)) == 12  # one pass: every configuration once
    assert {type(p["nesterov"]) for p in first} == {bool}
    assert set(first[0]) == {"learning_rate", "optimizer", "nesterov"}  # the fixed value is Ray's
    assert keys != sorted(keys)  # not the grid's own order
    # Past the grid: a second pass, in another order, before any configuration runs thrice.
    more = [tuple(sorted(p.items())) for p in grid_points(experiment, 30)]
    assert more[:12] == keys and sorted(more[12:24]) == sorted(keys) and more[12:24] != keys
    assert len(more) == 30


def test_the_budget_stopper_counts_trained_epochs_and_stops_through_the_tracker(tmp_path):
    tracker = FailureTracker(StudyStorage(str(tmp_path), "s"), max_consecutive=None)
    assert with_budget(_experiment({"trials": 4}), tracker) == ([], tracker)
    callbacks, stop = with_budget(_experiment({"epochs": 5}, "random"), tracker)
    from ray.tune.stopper import CombinedStopper

    assert isinstance(stop, CombinedStopper) and len(callbacks) == 1
    budget = callbacks[0]
    for result in ({"executions_trained": 2}, {"executions_trained": 0},  # a failure's row
                   {}):  # an older result: one execution
        budget.on_trial_result(iteration=1, trials=[], trial=None, result=result)
        assert stop("t", result) is False and stop.stop_all() is False
    assert budget.spent == 3
    budget.on_trial_result(iteration=2, trials=[], trial=None, result={"executions_trained": 2})
    assert stop.stop_all() is True and budget.spent == 5
    why = "the budget (search.budget: 5 epochs) was spent"
    assert tracker.stopped == why
    # Each budget has its own predicate: a resume reopens a study whose time budget ran out
    # (budget_spent), never one whose search.budget was spent.
    assert spent_search_budget(why) is True and budget_spent(why) is False
    timed = "the time budget (search.time_budget_s=5) was spent"
    assert budget_spent(timed) is True and spent_search_budget(timed) is False
    assert not budget_spent(None) and not spent_search_budget(None)
    # A resumed study counts what it had spent already.
    _, resumed = with_budget(_experiment({"epochs": 5}, "random"),
                             FailureTracker(StudyStorage(str(tmp_path), "r"), None), spent=5)
    assert resumed.stop_all() is True


@pytest.mark.parametrize("stopped, exits", [
    ("the budget (search.budget: 12 epochs) was spent", False),
    ("the time budget (search.time_budget_s=5) was spent", False),
    ("the study stopped after 2 consecutive failed trials (failure.max_consecutive=2)", True),
])
def test_either_budget_spent_is_a_planned_end_for_the_cli(tmp_path, stopped, exits):
    """`tunefleet run`/`resume` exit 0 when a budget ended a study in which trials finished,
    1 when the failure policy stopped it."""
    import pandas as pd
    from typer import Exit

    from tunefleet.cli import _finish
    from tunefleet.study.summary import StudyResult

    trials = pd.DataFrame({"trial_id": ["a", "b"], "status": ["completed", "stopped_by_study"]})
    summary = {"name": "s", "trials": {"total": 2, "completed": 1, "stopped_by_study": 1},
               "wall_time_s": 5.0, "epochs_total": 3, "best": None, "stopped": stopped}
    result = StudyResult(tmp_path, None, None, trials, summary)
    if exits:
        with pytest.raises(Exit) as exc:
            _finish(result, report=False)
        assert exc.value.exit_code == 1
    else:
        assert _finish(result, report=False) is None


def test_a_resume_does_not_reopen_a_study_whose_search_budget_was_spent(ray_local, tmp_path):
    """The study is what its budget bought: `tunefleet resume` starts no trial, keeps the
    budget's reason and exits 0 (a planned end); the console says what was spent before."""
    import json

    from tests.conftest import tiny_spec
    from tests.test_cli import _cli
    from tunefleet import run

    # One trial of 2 epochs spends it (one trial at a time: one trial process, started once).
    spec = tiny_spec(tmp_path, name="spent", train={"epochs": 2, "batch_size": 64},
                     search={"algorithm": "random", "seed": 3, "budget": {"epochs": 2},
                             "max_concurrent": 1})
    first = run(spec)
    why = "the budget (search.budget: 2 epochs) was spent"
    assert first.summary["stopped"] == why and isinstance(first.summary["epochs_total"], int)
    assert first.summary["epochs_total"] >= 2
    trials = sorted(p.name for p in first.path.glob("trial_*"))
    proc = _cli("resume", str(first.path), "--no-report", cwd=tmp_path)
    assert proc.exit_code == 0, proc.output[-3000:]
    assert f"study ended: {why}" in " ".join(proc.stderr.split())
    assert "runs until 2 epochs are spent (search.budget, " in proc.stdout  # spent before
    summary = json.loads((first.path / "summary.json").read_text())
    assert summary["stopped"].startswith(why) and summary["cluster"]["resumed"] is True
    # It says why nothing ran and how to train more: a new study with a larger budget.
    assert summary["stopped"] == why + (
        " (before it was resumed; a resume cannot add to a spent search.budget: to train more, "
        "start a new study with a larger budget, e.g. `tunefleet run SPEC --set "
        "search.budget.epochs=4 --set name=NEW`)")
    assert "start a new study with a larger budget" in " ".join(proc.stderr.split())
    assert summary["epochs_total"] == first.summary["epochs_total"]
    assert sorted(p.name for p in first.path.glob("trial_*")) == trials
