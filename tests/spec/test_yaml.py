"""YAML reading, overrides, and the spec written back into a results directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunefleet import Experiment
from tunefleet.spec import apply_overrides, dump_yaml, load_yaml

COMPARISONS = [p for p in sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
               if "variants" in p.read_text()]


def test_exponent_floats_read_as_numbers(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nsearch_space:\n  learning_rate: {type: loguniform, low: 1e-4, high: 1e-2}\n")
    entry = Experiment.from_yaml(path).search_space["learning_rate"]
    assert (entry.low, entry.high) == (1e-4, 1e-2)


def test_overrides_set_nested_fields_and_parse_values():
    data = apply_overrides({"name": "x", "search": {"algorithm": "random"}},
                           ["search.num_samples=8", "train.epochs=5", "objective.mode=max"])
    assert data["search"] == {"algorithm": "random", "num_samples": 8}
    assert data["train"] == {"epochs": 5}
    assert data["objective"]["mode"] == "max"


def test_fixed_values_round_trip(tmp_path):
    exp = Experiment.from_dict({"name": "x", "search_space": {"kernel_size": 3,
                                "batch_size": {"type": "choice", "values": [16, 32]}}})
    assert exp.search_space["kernel_size"].type == "fixed"
    dump_yaml(exp.to_dict(), tmp_path / "spec.yaml")
    again = Experiment.from_dict(load_yaml(tmp_path / "spec.yaml"))
    assert again == exp
    assert load_yaml(tmp_path / "spec.yaml")["search_space"]["kernel_size"] == 3


@pytest.mark.parametrize("path", COMPARISONS, ids=[p.name for p in COMPARISONS])
def test_comparison_examples_validate(path):
    """Comparison specs: one experiment per variant passes its checks (a variant's seeds
    differ only in name and search.seed; single-study examples are checked in
    tests/test_examples.py)."""
    from tunefleet.study.runner import prepare
    from tunefleet.study.comparison import load_comparison

    spec, experiments = load_comparison(path)
    assert len(experiments) == len(spec.variants) * len(spec.seeds)
    firsts = experiments[::len(spec.seeds)]  # ordered variant by variant, each over its seeds
    assert [e.search.seed for e in firsts] == [spec.seeds[0]] * len(spec.variants)
    for experiment in firsts:
        prepare(experiment)


@pytest.mark.parametrize("space", [
    {"conv_blocks": 4, "pooling": "none"},                       # nothing pools: any depth fits
    {"conv_blocks": {"type": "randint", "low": 1, "high": 4}},    # high is excluded: at most 3
])
def test_cnn_depths_that_fit_are_accepted(space):
    from tunefleet.study.runner import prepare

    prepare(Experiment.from_dict({"name": "x", "search_space": space}))


def test_objective_mode_defaults_to_the_metric_direction():
    assert Experiment.from_dict({"name": "x", "objective": {"metric": "val_accuracy"}}).objective.mode == "max"
    assert Experiment.from_dict({"name": "x", "objective": {"metric": "val_mae"}}).objective.mode == "min"
