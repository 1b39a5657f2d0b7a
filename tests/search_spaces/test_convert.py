"""Spec entries become the matching Ray Tune domains."""

from __future__ import annotations

import numpy as np
import pytest
from ray.tune.search.sample import Categorical, Float, Integer

from tunefleet import Experiment
from tunefleet.search_spaces import grid_size, to_ray_space, total_trials

SPACE = {
    "learning_rate": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
    "dropout": {"type": "uniform", "low": 0.0, "high": 0.5},
    "l2": {"type": "quniform", "low": 0.0, "high": 0.01, "q": 0.001},
    "dense_units": {"type": "randint", "low": 16, "high": 64},
    "filters": {"type": "qrandint", "low": 8, "high": 32, "q": 8},
    "batch_size": {"type": "choice", "values": [16, 32]},
    "kernel_size": 3,
}


def test_random_search_domains_sample_inside_their_bounds():
    space = to_ray_space(Experiment.from_dict({"name": "x", "search_space": SPACE}))
    assert isinstance(space["learning_rate"], Float) and isinstance(space["dropout"], Float)
    assert isinstance(space["dense_units"], Integer) and isinstance(space["batch_size"], Categorical)
    assert space["kernel_size"] == 3 and "trial_seed" in space
    rng = np.random.default_rng(0)
    lrs = np.array(space["learning_rate"].sample(size=500, random_state=rng))
    assert lrs.min() >= 1e-4 and lrs.max() <= 1e-2
    assert np.median(lrs) < 2e-3  # log-uniform: the median is near 1e-3, not 5e-3
    units = np.array(space["dense_units"].sample(size=500, random_state=rng))
    assert units.min() >= 16 and units.max() <= 63  # randint excludes high
    filters = set(space["filters"].sample(size=200, random_state=rng))
    assert filters <= {8, 16, 24, 32}
    l2 = np.array(space["l2"].sample(size=200, random_state=rng))
    assert np.allclose(l2 / 0.001, np.round(l2 / 0.001))


def test_grid_search_enumerates_choice_and_grid_entries():
    exp = Experiment.from_dict({"name": "x", "search": {"algorithm": "grid", "num_samples": 2},
                                "search_space": {"batch_size": {"type": "choice", "values": [16, 32, 64]},
                                                 "learning_rate": {"type": "grid", "values": [0.1, 0.01]},
                                                 "kernel_size": 3}})
    space = to_ray_space(exp)
    assert space["batch_size"] == {"grid_search": [16, 32, 64]}
    assert grid_size(exp) == 6 and total_trials(exp) == 12


def test_hyperopt_space_has_no_trial_seed():
    exp = Experiment.from_dict({"name": "x", "search": {"algorithm": "hyperopt"},
                                "search_space": {"dropout": {"type": "uniform", "low": 0, "high": 1}}})
    assert "trial_seed" not in to_ray_space(exp)


@pytest.mark.parametrize("entry", [{"type": "quniform", "low": 0, "high": 1, "q": 0},
                                   {"type": "qrandint", "low": 1, "high": 5, "q": -1}])
def test_step_must_be_positive(entry):
    from tunefleet import SpecError

    with pytest.raises(SpecError, match=r"search_space\.x: q\w+ needs q > 0"):
        Experiment.from_dict({"name": "n", "search_space": {"x": entry}})


def _hyperopt_suggestions(seed: int, n: int = 4) -> list[dict]:
    from tunefleet.search_spaces import make_searcher

    exp = Experiment.from_dict({"name": "x", "objective": {"metric": "val_accuracy"},
                                "search": {"algorithm": "hyperopt", "seed": seed,
                                           "n_initial_points": n}, "search_space": SPACE})
    searcher = make_searcher(exp, max_concurrent=0)
    searcher.set_search_properties("val_accuracy", "max", to_ray_space(exp))
    return [searcher.suggest(f"t{i}") for i in range(n)]


def test_hyperopt_same_seed_same_configs_other_seed_other_configs():
    first, again, other = _hyperopt_suggestions(7), _hyperopt_suggestions(7), _hyperopt_suggestions(8)
    assert first == again
    assert first != other
    assert len({c["learning_rate"] for c in first}) == 4  # four different draws
