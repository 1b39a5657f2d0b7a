"""The hypermodel bridge's search space: discovered by building real KerasTuner hypermodels,
then sampled, enumerated and translated to HyperOpt with every condition respected."""

from __future__ import annotations

import numpy as np
import pytest

from tests import hypermodels
from tunefleet.search_spaces.conditional import flatten_choice, hyperopt_space
from tunefleet.search_spaces.hypermodel_space import UnsupportedHypermodel, discover_space
from tunefleet.trainables.hypermodel import (HypermodelError, active_values, build_hypermodel,
                                             probe_hypermodel, resolve_hypermodel)


def _discover(fn):
    hm = resolve_hypermodel(fn)
    return hm, discover_space(lambda values: probe_hypermodel(hm, values))


@pytest.fixture(scope="module")
def layered():
    # layered_mlp's space, written without an Input: no build makes weights (seconds, not 30).
    return _discover(hypermodels.layered_mlp_guide)


def test_conditional_loop_space_has_every_parameter_and_condition(layered):
    _, space = layered
    conditions = {p.name: dict(p.conditions) for p in space.params}
    assert set(conditions) == {"num_layers", "units_0", "units_1", "units_2", "use_dropout",
                               "dropout_0", "dropout_1", "dropout_2", "optimizer", "lr",
                               "momentum"}
    assert conditions["units_0"] == {}
    assert conditions["units_1"] == {"num_layers": (2, 3)}
    assert conditions["units_2"] == {"num_layers": (3,)}
    assert conditions["dropout_0"] == {"use_dropout": (True,)}
    assert conditions["dropout_2"] == {"num_layers": (3,), "use_dropout": (True,)}
    assert conditions["momentum"] == {"optimizer": ("sgd",)}  # declared by conditional_scope
    assert space["lr"].hp.sampling == "log"
    names = space.names
    assert names.index("num_layers") < names.index("units_2")  # parents first


def _check_consistent(hm, space, config):
    """The values a searcher produced are exactly the ones the hypermodel then uses."""
    model, hp = build_hypermodel(hm, config)
    used = active_values(hp)
    assert set(used) == set(config), (config, used)
    assert all(used[k] == config[k] for k in config)
    for p in space.params:
        if p.name in config and p.kind in ("int", "float"):
            assert p.hp.min_value <= config[p.name] <= p.hp.max_value * (1 + 1e-9)


def test_random_samples_respect_conditions(layered):
    hm, space = layered
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(12)]
    for config in samples:
        _check_consistent(hm, space, config)
    assert {c["num_layers"] for c in samples} == {1, 2, 3}
    lrs = np.array([c["lr"] for c in samples])
    assert (lrs < 5.5e-3).sum() >= 3  # log sampling reaches the low decade


def test_hyperopt_nested_space_samples_respect_conditions(layered):
    from hyperopt.pyll import stochastic

    hm, space = layered
    nested = hyperopt_space(space)
    assert set(nested) == {"num_layers", "units_0", "use_dropout", "optimizer", "lr"}
    seen_layers = set()
    for seed in range(12):
        config = flatten_choice(space, stochastic.sample(nested, rng=np.random.default_rng(seed)))
        _check_consistent(hm, space, config)
        seen_layers.add(config["num_layers"])
    assert seen_layers == {1, 2, 3}


def test_grid_enumerates_each_conditional_branch_once():
    hm, space = _discover(hypermodels.grid_mlp_guide)
    grid = list(space.grid())
    # one layer: 2 unit choices; two layers: 2 × 2 (lr is Fixed)
    assert len(grid) == 6 == space.grid_size()
    assert len({tuple(sorted(c.items())) for c in grid}) == 6
    for config in grid:
        _check_consistent(hm, space, config)


def test_fit_hyperparameters_are_discovered():
    _, space = _discover(hypermodels.BatchSizeHyperModel)
    assert set(space.names) == {"units", "batch_size"}


@pytest.mark.parametrize("fn, error, match", [
    (hypermodels.continuous_parent, UnsupportedHypermodel, "depends on the value of 'width'"),
    (hypermodels.uncompiled, HypermodelError, "uncompiled model"),
])
def test_unsupported_hypermodels_say_why(fn, error, match):
    with pytest.raises(error, match=match):
        _discover(fn)


def test_grid_refuses_continuous_floats(layered):
    _, space = layered
    with pytest.raises(UnsupportedHypermodel, match="Float 'lr'.*has no step"):
        space.grid_size()
