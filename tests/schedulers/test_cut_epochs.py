"""The preview's scheduler cut points agree with the schedulers Ray builds."""

from __future__ import annotations

import pytest

from tunefleet import Experiment
from tunefleet.schedulers import TIME_ATTR, cut_epochs, make_scheduler


@pytest.mark.parametrize("epochs, grace, rf", [(12, 2, 3), (10, 1, 3), (27, 1, 3), (8, 1, 2),
                                               (20, 3, 2)])
def test_asha_cuts_match_rays_rungs(epochs, grace, rf):
    exp = Experiment.from_dict({"name": "x", "train": {"epochs": epochs}, "scheduler": {
        "name": "asha", "grace_period": grace, "reduction_factor": rf}})
    scheduler = make_scheduler(exp)
    rays = sorted(int(milestone) for milestone, _ in scheduler._brackets[0]._rungs
                  if milestone < epochs)
    assert cut_epochs(exp) == rays
    assert scheduler._time_attr == TIME_ATTR


def test_max_t_defaults_to_the_most_epochs_a_trial_trains():
    exp = Experiment.from_dict({"name": "x", "train": {"epochs": 5},
                                "search_space": {"epochs": {"type": "choice", "values": [4, 9]}},
                                "scheduler": {"name": "asha"}})
    assert exp.epoch_budget == 9
    assert make_scheduler(exp)._max_t == 9


def test_fifo_cuts_nothing_and_median_from_grace():
    fifo = Experiment.from_dict({"name": "x", "train": {"epochs": 5}})
    median = Experiment.from_dict({"name": "x", "train": {"epochs": 5},
                                   "scheduler": {"name": "median", "grace_period": 2}})
    assert cut_epochs(fifo) == []
    assert cut_epochs(median) == [2, 3, 4]
