"""What the same spec and seed reproduce: the configurations of grid and random search, the
first n_initial_points of HyperOpt whatever order trials finish in, and every trial's seed;
two trials given the same configuration still get different seeds."""

from __future__ import annotations

import pytest

from tunefleet import Experiment
from tunefleet.search_spaces import make_searcher, to_ray_space
from tunefleet.search_spaces.seeds import indexed_seed

SPACE = {"units": {"type": "choice", "values": [8, 16]},
         "learning_rate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}


def _experiment(algorithm: str, seed: int, **search) -> Experiment:
    space = dict(SPACE)
    if algorithm == "grid":
        space = {"units": {"type": "grid", "values": [8, 16]}}
    return Experiment.from_dict({"name": "x", "objective": {"metric": "val_accuracy"},
                                 "search": {"algorithm": algorithm, "seed": seed, **search},
                                 "search_space": space})


def _basic_configs(algorithm: str, seed: int, num_samples: int) -> list[dict]:
    """What Ray's BasicVariantGenerator hands the trials, in order."""
    from ray.tune.search.variant_generator import generate_variants

    exp = _experiment(algorithm, seed, num_samples=num_samples)
    searcher = make_searcher(exp, max_concurrent=0)
    rng = searcher._random_state  # the generator seeded from search.seed
    return [spec["config"] for _ in range(num_samples)
            for _, spec in generate_variants({"config": to_ray_space(exp)}, random_state=rng)]


@pytest.mark.parametrize("algorithm", ["grid", "random"])
def test_grid_and_random_reproduce_configurations_and_seeds(algorithm):
    first, again, other = (_basic_configs(algorithm, 1, 3), _basic_configs(algorithm, 1, 3),
                           _basic_configs(algorithm, 2, 3))
    assert first == again and first != other
    seeds = [c["trial_seed"] for c in first]
    assert all(isinstance(s, int) for s in seeds) and len(set(seeds)) == len(seeds)


def _hyperopt_run(seed: int, finish_order: list[int], n: int = 6, initial: int = 4) -> list[dict]:
    """Suggest ``n`` HyperOpt trials two at a time (max_concurrent 2), finishing the running
    ones in ``finish_order`` (0: first started first) with made-up objectives."""
    exp = _experiment("hyperopt", seed, num_samples=n, n_initial_points=initial)
    searcher = make_searcher(exp, max_concurrent=2)
    searcher.set_search_properties("val_accuracy", "max", to_ray_space(exp))
    configs, running = [], []
    while len(configs) < n:
        config = searcher.suggest(f"t{len(configs)}")
        if config is not None:
            running.append(f"t{len(configs)}")
            configs.append(config)
            continue
        pair = [running[i] for i in finish_order]
        for k, trial_id in enumerate(pair):
            searcher.on_trial_complete(trial_id, {"val_accuracy": 0.5 + 0.1 * k})
        running = []
    return configs


def test_hyperopt_reproduces_its_random_phase_whatever_order_trials_finish():
    first, again, reversed_finish = (_hyperopt_run(7, [0, 1]), _hyperopt_run(7, [0, 1]),
                                     _hyperopt_run(7, [1, 0]))
    assert first == again  # the same finish order: everything is the same
    # Another finish order: the first n_initial_points (random) configurations are the same.
    assert first[:4] == reversed_finish[:4]
    assert first[:4] != _hyperopt_run(8, [0, 1])[:4]


def test_the_same_configuration_twice_gets_different_seeds():
    configs = _hyperopt_run(7, [0, 1])
    seeds = [c["trial_seed"] for c in configs]
    assert seeds == [indexed_seed(7, k) for k in range(len(configs))]
    assert len(set(seeds)) == len(seeds) and all(isinstance(s, int) for s in seeds)
    # `units` has two values: among six trials some share their whole configuration with
    # another, and still train with another seed.
    keys = [tuple(sorted((k, v) for k, v in c.items() if k != "trial_seed")) for c in configs]
    units = [c["units"] for c in configs]
    assert len(set(units)) < len(units)
    assert len(set(zip(keys, seeds, strict=True))) == len(configs)
