"""Optuna (TPE, CMA-ES) and BOHB as tunefleet builds them from a spec, driven the way Ray drives
a searcher (set_search_properties, suggest, on_trial_result, on_trial_complete) on a synthetic
objective: no Ray cluster, no training.

The same spec and seed give the same configurations, the model-guided ones included; the
configurations are the spec's values (plain Python, quantized entries on their step, fixed
entries left to Ray); and each model does learn."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tunefleet import Experiment
from tunefleet.search_spaces import make_searcher, to_ray_space
from tunefleet.search_spaces.bohb_space import config_space, from_config_space, to_config_space

SPACE = {
    "learning_rate": {"type": "loguniform", "low": 1e-3, "high": 1e-1},
    "dropout": {"type": "quniform", "low": 0.0, "high": 0.5, "q": 0.1},
    "units": {"type": "choice", "values": [16, 32, None]},
    "batch_size": {"type": "qrandint", "low": 16, "high": 128, "q": 16},
    "filters": {"type": "randint", "low": 4, "high": 9},
    "layers": 2,
}
METHODS = {
    "optuna-tpe": ({"algorithm": "optuna"}, "fifo"),
    "optuna-cmaes": ({"algorithm": "optuna", "sampler": "cmaes"}, "fifo"),
    "bohb": ({"algorithm": "bohb"}, "bohb"),
}


def _experiment(method: str, seed: int = 1, **search: Any) -> Experiment:
    base, scheduler = METHODS.get(method) or ({"algorithm": method}, "fifo")
    return Experiment.from_dict({
        "name": "x", "train": {"epochs": 9}, "search_space": SPACE,
        "search": {**base, "seed": seed, **search}, "scheduler": {"name": scheduler},
        "objective": {"metric": "val_accuracy", "mode": "max"}})


def _score(config: dict) -> float:
    """Best at learning_rate 0.01, whatever the rest."""
    return -abs(math.log10(config["learning_rate"]) + 2)


def _drive(experiment: Experiment, n: int = 30) -> list[dict]:
    """``n`` trials one after the other, each reporting epochs 1, 3 and 9 (with BOHB's budget,
    as HyperBandForBOHB adds it) and then completing."""
    searcher = make_searcher(experiment, max_concurrent=1)
    searcher.set_search_properties("val_accuracy", "max", to_ray_space(experiment))
    configs = []
    for i in range(n):
        config = searcher.suggest(str(i))
        configs.append(config)
        for iteration, epoch in enumerate((1, 3, 9), 1):
            searcher.on_trial_result(str(i), {
                "val_accuracy": _score(config) + 0.01 * epoch, "epoch": epoch,
                "training_iteration": iteration, "hyperband_info": {"budget": epoch}})
        searcher.on_trial_complete(str(i), {"val_accuracy": _score(config) + 0.09,
                                            "training_iteration": 3})
    return configs


@pytest.mark.parametrize("method", list(METHODS))
def test_same_seed_same_configurations_model_guided_ones_included(method):
    first, again, other = (_drive(_experiment(method, 1)), _drive(_experiment(method, 1)),
                           _drive(_experiment(method, 2)))
    assert first == again
    assert first != other
    seeds = [c["trial_seed"] for c in first]
    assert len(set(seeds)) == len(seeds) and all(isinstance(s, int) for s in seeds)


@pytest.mark.parametrize("method", list(METHODS))
def test_configurations_are_the_specs_values(method):
    configs = _drive(_experiment(method), n=20)
    for config in configs:
        assert set(config) == {"learning_rate", "dropout", "units", "batch_size", "filters",
                               "trial_seed"}  # layers is fixed: Ray sets it
        assert isinstance(config["learning_rate"], float) and 1e-3 <= config["learning_rate"] <= 0.1
        assert isinstance(config["dropout"], float) and 0 <= config["dropout"] <= 0.5
        assert config["dropout"] * 10 == pytest.approx(round(config["dropout"] * 10))
        assert config["units"] in (16, 32, None) and type(config["units"]) in (int, type(None))
        assert type(config["batch_size"]) is int and config["batch_size"] % 16 == 0
        assert 16 <= config["batch_size"] <= 128
        assert type(config["filters"]) is int and 4 <= config["filters"] <= 8


@pytest.mark.parametrize("method", list(METHODS))
def test_the_model_moves_towards_the_better_learning_rates(method):
    configs = _drive(_experiment(method), n=30)
    error = [-_score(c) for c in configs]
    assert sum(error[-10:]) / 10 < 0.8 * sum(error[:10]) / 10


@pytest.mark.parametrize("method", ["hyperopt", *METHODS])
def test_points_to_evaluate_come_first_as_written(method):
    points = [{"learning_rate": 0.01, "dropout": 0.2, "units": None, "batch_size": 64,
               "filters": 5, "layers": 2},
              {"learning_rate": 0.002, "dropout": 0.0, "units": 32, "batch_size": 128,
               "filters": 8, "layers": 2}]
    configs = _drive(_experiment(method, points_to_evaluate=points), n=4)
    tuned = [{k: v for k, v in p.items() if k != "layers"} for p in points]
    assert [{k: c[k] for k in tuned[0]} for c in configs[:2]] == tuned
    assert [type(c["batch_size"]) for c in configs[:2]] == [int, int]
    assert {k: configs[2][k] for k in tuned[0]} not in tuned


def test_optuna_models_the_tuned_entries_only():
    """Not the trial seed Ray's param space carries, nor the fixed entries."""
    searcher = make_searcher(_experiment("optuna-tpe"), max_concurrent=0)
    searcher.set_search_properties("val_accuracy", "max", to_ray_space(_experiment("optuna-tpe")))
    optuna_search = searcher.searcher
    assert set(optuna_search._space) == {"learning_rate", "dropout", "units", "batch_size",
                                         "filters"}
    sampler = optuna_search._ot_study.sampler
    assert type(sampler).__name__ == "TPESampler" and sampler._multivariate


def test_bohb_pauses_free_a_concurrency_slot():
    """HyperBandForBOHB tells the searcher (through tunefleet's seeding wrapper) which trials it
    pauses; TuneBOHB then counts them as not running, so new trials can fill the bracket."""
    experiment = _experiment("bohb")
    searcher = make_searcher(experiment, max_concurrent=2)
    searcher.set_search_properties("val_accuracy", "max", to_ray_space(experiment))
    assert searcher.suggest("a") and searcher.suggest("b")
    assert searcher.suggest("c") is None  # two running
    searcher.on_pause("a")
    assert isinstance(searcher.suggest("c"), dict)
    searcher.on_unpause("a")
    assert searcher.suggest("d") is None


def test_bohb_space_round_trip_keeps_every_value_type():
    experiment = _experiment("bohb")
    tuned = {k: e for k, e in experiment.search_space.items() if e.type != "fixed"}
    space = config_space(tuned)
    assert sorted(space) == ["batch_size", "dropout", "filters", "learning_rate", "units"]
    point = {"learning_rate": 0.01, "dropout": 0.3, "units": None, "batch_size": 48, "filters": 4}
    as_bohb = to_config_space(tuned, point)
    assert as_bohb["units"] == 2  # the index of None in the choice
    dict(space.sample_configuration())  # ConfigSpace accepts the space
    assert from_config_space(tuned, as_bohb) == point
    # An entry with one possible value is not modelled (a one-level kernel divides by zero).
    single = {"units": Experiment.from_dict({"name": "x", "search_space": {
        "units": {"type": "choice", "values": [8]}}}).search_space["units"]}
    assert len(list(config_space(single))) == 0
    assert from_config_space(single, {}) == {"units": 8}


@pytest.mark.parametrize("method", list(METHODS))
def test_a_restored_searcher_goes_on_as_if_never_stopped(method, tmp_path):
    """Ray saves a study's searcher (SearchGenerator.save_to_dir) and restores it into the one a
    resume builds from the spec: the model, its random state and the trial-seed index go on."""
    from ray.tune.search import SearchGenerator

    experiment = _experiment(method)

    def generator() -> SearchGenerator:
        searcher = make_searcher(experiment, max_concurrent=1)
        searcher.set_search_properties("val_accuracy", "max", to_ray_space(experiment))
        return SearchGenerator(searcher)

    def drive(gen: SearchGenerator, first: int, n: int) -> list[dict]:
        configs = []
        for i in range(first, first + n):
            config = gen.searcher.suggest(str(i))
            configs.append(config)
            gen.searcher.on_trial_result(str(i), {
                "val_accuracy": _score(config), "epoch": 1, "training_iteration": 1,
                "hyperband_info": {"budget": 1}})
            gen.searcher.on_trial_complete(str(i), {"val_accuracy": _score(config),
                                                    "training_iteration": 1})
        return configs

    original = generator()
    drive(original, 0, 12)
    original.save_to_dir(str(tmp_path), "s")
    uninterrupted = drive(original, 12, 6)
    restored = generator()
    restored.restore_from_dir(str(tmp_path))
    assert drive(restored, 12, 6) == uninterrupted
