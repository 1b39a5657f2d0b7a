"""The preview's scheduler cut points are the ones Ray's scheduler objects compute, and the
ones a real HyperBand study pauses and stops trials at."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from tests.conftest import hyperband_spec
from tunefleet import Experiment, SpecError
from tunefleet.schedulers import TIME_ATTR, Bracket, brackets, cut_epochs, make_scheduler


def _exp(epochs: int, **scheduler) -> Experiment:
    return Experiment.from_dict({"name": "x", "train": {"epochs": epochs},
                                 "scheduler": scheduler})


@pytest.mark.parametrize("epochs, grace, rf", [(12, 2, 3), (10, 1, 3), (27, 1, 3), (8, 1, 2),
                                               (20, 3, 2)])
def test_asha_cuts_match_rays_rungs(epochs, grace, rf):
    exp = _exp(epochs, name="asha", grace_period=grace, reduction_factor=rf)
    scheduler = make_scheduler(exp)
    rays = sorted(int(milestone) for milestone, _ in scheduler._brackets[0]._rungs
                  if milestone < epochs)
    assert cut_epochs(exp) == rays
    assert scheduler._time_attr == TIME_ATTR


def test_asha_max_t_12_rf_3_grace_1():
    assert cut_epochs(_exp(12, name="asha", grace_period=1, reduction_factor=3)) == [1, 3, 9]
    three = brackets(_exp(12, name="asha", grace_period=1, reduction_factor=3, brackets=3))
    assert [b.rungs for b in three] == [(1, 3, 9), (3, 9), (9,)]
    assert all(b.stop == 12 and b.size is None and b.trials is None for b in three)


def test_asha_fractional_rungs_act_at_the_next_whole_epoch():
    # Ray's rungs for rf 2.5 are 1, 2.5, 6.25; a trial reports whole epochs, so Ray compares it
    # at the first epoch >= the rung: 1, 3, 7 (a formula with int() said 1, 2, 6).
    exp = _exp(10, name="asha", grace_period=1, reduction_factor=2.5)
    assert sorted(m for m, _ in make_scheduler(exp)._brackets[0]._rungs) == [1, 2.5, 6.25]
    assert cut_epochs(exp) == [1, 3, 7]
    assert all(isinstance(c, int) for c in cut_epochs(exp))


def test_hyperband_max_t_12_eta_3_cuts_at_rays_rungs():
    # Ray's brackets: s=0 (3 trials, uncut), s=1 (5 trials, halved at 4), s=2 (9 trials, halved
    # at 1 and 3, then stopped at 9 though max_t is 12). The old formula said 1, 4.
    exp = _exp(12, name="hyperband", reduction_factor=3)
    assert cut_epochs(exp) == [1, 3, 4, 9]
    got = brackets(exp, trials=6)
    assert got == [
        Bracket(rungs=(), stop=12, budget=12, keep=(), size=3, trials=3),
        Bracket(rungs=(4,), stop=12, budget=12, keep=(2,), size=5, trials=3),
        Bracket(rungs=(1, 3), stop=9, budget=12, keep=(3, 1), size=9, trials=0),
    ]
    assert [b.cuts for b in got] == [(), (4,), (1, 3, 9)]
    assert all(isinstance(c, int) for b in got for c in (*b.rungs, b.stop, *b.keep))
    # Ray's own bracket for s=2, as on_trial_add creates it, starts at the same first rung.
    scheduler = make_scheduler(exp)
    assert scheduler._s_max_1 == 3 and scheduler._create_bracket(2)._cumul_r == 1


@pytest.mark.parametrize("epochs, eta, trials, fill", [
    (12, 3, 1, [1, 0, 0]), (12, 3, 8, [3, 5, 0]), (12, 3, 17, [3, 5, 9]), (12, 3, 40, [9, 13, 18]),
    (3, 2, 7, [4, 3]),  # Ray's third bracket (s=2) would start at epoch 0: skipped
])
def test_hyperband_fills_brackets_in_rays_order_round_after_round(epochs, eta, trials, fill):
    exp = _exp(epochs, name="hyperband", reduction_factor=eta)
    assert [b.trials for b in brackets(exp, trials)] == fill
    # Ray's own on_trial_add, given as many placeholder trials (it only uses them as keys).
    scheduler = make_scheduler(exp)
    scheduler.set_search_properties("val_accuracy", "max")
    for _ in range(trials):
        scheduler.on_trial_add(None, object())
    rays = [0] * scheduler._s_max_1
    for band in scheduler._hyperbands:
        for s, bracket in enumerate(band):
            rays[s] += len(bracket._all_trials) if bracket is not None else 0
    assert [n for s, n in enumerate(rays) if scheduler._get_r0(s) > 0] == fill


def _bohb(epochs: int, eta: float) -> Experiment:
    return Experiment.from_dict({
        "name": "x", "train": {"epochs": epochs}, "search": {"algorithm": "bohb"},
        "search_space": {"learning_rate": {"type": "loguniform", "low": 1e-3, "high": 1e-1}},
        "scheduler": {"name": "bohb", "reduction_factor": eta}})


def test_bohb_max_t_12_eta_3_cuts_at_rays_rungs_largest_bracket_first():
    # HyperBandForBOHB builds HyperBand's brackets but fills the one with the most rungs first.
    exp = _bohb(12, 3)
    assert type(make_scheduler(exp)).__name__ == "HyperBandForBOHB"
    assert cut_epochs(exp) == [1, 3, 4, 9]
    assert brackets(exp, trials=6) == [
        Bracket(rungs=(1, 3), stop=9, budget=12, keep=(3, 1), size=9, trials=6),
        Bracket(rungs=(4,), stop=12, budget=12, keep=(2,), size=5, trials=0),
        Bracket(rungs=(), stop=12, budget=12, keep=(), size=3, trials=0),
    ]


@pytest.mark.parametrize("epochs, eta, trials, fill", [
    (12, 3, 1, [1, 0, 0]), (12, 3, 17, [9, 5, 3]), (12, 3, 40, [24, 10, 6]), (9, 3, 20, [12, 5, 3]),
    (3, 2, 7, [4, 3]), (3, 2.5, 5, [3, 2]),
    (2, 3, 5, [5]),  # Ray's s=1 bracket would start at epoch int(2/3) = 0: skipped
])
def test_bohb_fills_brackets_in_rays_order_round_after_round(epochs, eta, trials, fill):
    exp = _bohb(epochs, eta)
    got = brackets(exp, trials)
    assert [b.trials for b in got] == fill
    # Ray's own on_trial_add, given as many placeholder trials (it only uses them as keys).
    scheduler = make_scheduler(exp)
    scheduler.set_search_properties("val_accuracy", "max")
    for _ in range(trials):
        scheduler.on_trial_add(None, object())
    rays: dict[tuple[int, int], int] = {}
    for band in scheduler._hyperbands:
        for bracket in filter(None, band):
            key = (int(bracket._cumul_r), int(bracket._n0))
            rays[key] = rays.get(key, 0) + len(bracket._all_trials)
    assert rays == {((b.rungs or (b.stop,))[0], b.size): b.trials for b in got if b.trials}


def test_preview_shows_bohbs_brackets_as_ray_fills_them(tmp_path):
    from tests.conftest import tiny_spec
    from tunefleet.study.preview import collect_plan, render_plan

    spec = tiny_spec(tmp_path, train={"epochs": 12, "batch_size": 64},
                     search={"algorithm": "bohb", "num_samples": 6, "seed": 1},
                     scheduler={"name": "bohb", "reduction_factor": 3})
    plan = collect_plan(Experiment.from_dict(spec))
    assert plan.cut_epochs == [1, 3, 4, 9] and len(plan.brackets) == 3
    out = render_plan(plan)
    assert "bohb: epoch budget 12; may pause or stop trials at epochs 1, 3, 4, 9" in out
    assert "filled in this order, 17 trials a round, then again; where this study's 6" in out
    assert re.search(r"bracket 1 +6 of 9 trials: at epoch 1 the best 3 go on, at epoch 3 the "
                     r"best 1; stopped at epoch 9, below the budget", out)
    assert re.search(r"bracket 3 +0 of 3 trials: no cut, trained to epoch 12", out)


def test_hyperband_with_a_reduction_factor_near_1_is_refused_naming_it():
    with pytest.raises(SpecError, match=r"^scheduler\.reduction_factor: HyperBand would make"):
        brackets(_exp(100, name="hyperband", reduction_factor=1.001))


def test_hyperband_skips_brackets_ray_finds_too_small():
    # max_t 2, eta 3: Ray's s=1 bracket would start at epoch int(2/3) = 0, so it never exists.
    exp = _exp(2, name="hyperband", reduction_factor=3)
    assert brackets(exp, 5) == [Bracket(rungs=(), stop=2, budget=2, size=2, trials=5)]
    assert cut_epochs(exp) == []


def test_max_t_defaults_to_the_most_epochs_a_trial_trains():
    exp = Experiment.from_dict({"name": "x", "train": {"epochs": 5},
                                "search_space": {"epochs": {"type": "choice", "values": [4, 9]}},
                                "scheduler": {"name": "asha"}})
    assert exp.epoch_budget == 9
    assert make_scheduler(exp)._max_t == 9


def test_fifo_cuts_nothing_and_median_from_grace():
    fifo = Experiment.from_dict({"name": "x", "train": {"epochs": 5}})
    median = _exp(5, name="median", grace_period=2)
    assert cut_epochs(fifo) == [] and brackets(fifo) == []
    assert cut_epochs(median) == [2, 3, 4] and brackets(median) == []


def _history(result, trial_id: str) -> pd.DataFrame:
    lines = (result.path / f"trial_{trial_id}" / "result.json").read_text().splitlines()
    return pd.DataFrame([json.loads(line) for line in lines if line.strip()])


@pytest.mark.slow
def test_a_hyperband_study_pauses_and_stops_trials_only_at_previewed_epochs(hyperband_study,
                                                                           tmp_path):
    """max_t 3, eta 2.5: Ray's first bracket trains 2 trials uncut; its second halves 3 trials
    at epoch 1 and stops the 2 survivors at int(2.5) = 2 (the old formula said only 1). The
    study is conftest's, shared with tests/study/test_studies.py."""
    exp = Experiment.from_dict(hyperband_spec(tmp_path))
    previewed = cut_epochs(exp)
    assert previewed == [1, 2]
    assert brackets(exp, 5) == [
        Bracket(rungs=(), stop=3, budget=3, size=2, trials=2),
        Bracket(rungs=(1,), stop=2, budget=3, keep=(2,), size=3, trials=3)]
    result = hyperband_study
    assert len(result.trials) == 5
    ended_early, paused = set(), set()
    for trial_id in result.trials["trial_id"]:
        history = _history(result, trial_id)
        if history["epoch"].max() < 3:
            ended_early.add(int(history["epoch"].max()))
        # The first result after a resume: the trial was paused at the epoch before it.
        resumed = (history["iterations_since_restore"] == 1) & (history["epoch"] > 1)
        paused.update(int(e) - 1 for e in history["epoch"][resumed])
    assert ended_early == set(previewed), "the study cut trials elsewhere than previewed"
    assert paused and paused <= set(previewed), "a trial was paused at an epoch not previewed"
