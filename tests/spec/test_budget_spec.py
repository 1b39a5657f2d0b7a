"""search.budget and the comparison spec's budget: one unit, checked with the rest of the search
section; a comparison gives every variant the same budget and cannot be given another."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunefleet import Experiment, SpecError
from tunefleet.spec import dump_yaml, load_yaml
from tunefleet.spec.budget import BudgetSpec
from tunefleet.study.comparison import load_comparison

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "compare_grid_random.yaml"


def _spec(search: dict, **sections) -> dict:
    return {"name": "x", "search_space": {"learning_rate": {"type": "choice",
                                                            "values": [0.01, 0.1]}},
            "search": search, **sections}


@pytest.mark.parametrize("budget, unit, amount, text", [
    ({"epochs": 96}, "epochs", 96.0, "96 epochs"),
    ({"trials": 12}, "trials", 12.0, "12 trials"),
    ({"wall_s": 90.5}, "wall_s", 90.5, "90.5 s"),
])
def test_a_budget_has_one_unit_and_round_trips(tmp_path, budget, unit, amount, text):
    exp = Experiment.from_dict(_spec({"algorithm": "random", "budget": budget}))
    assert isinstance(exp.search.budget, BudgetSpec)
    assert (exp.search.budget.unit, exp.search.budget.amount) == (unit, amount)
    assert exp.search.budget.describe() == text
    # Written into the study as given (one unit, no num_samples), read back the same.
    dump_yaml(exp.to_dict(), tmp_path / "spec.yaml")
    written = load_yaml(tmp_path / "spec.yaml")["search"]
    assert written["budget"] == budget and "num_samples" not in written
    assert Experiment.from_dict(load_yaml(tmp_path / "spec.yaml")) == exp


@pytest.mark.parametrize("search, sections, pattern", [
    ({"algorithm": "random", "budget": {}},
     {}, r"^search\.budget: give exactly one of epochs, trials, wall_s, got none"),
    ({"algorithm": "random", "budget": {"epochs": 10, "trials": 3}},
     {}, r"^search\.budget: give exactly one of epochs, trials, wall_s, got epochs, trials"),
    ({"algorithm": "random", "budget": {"epoch": 10}},
     {}, r"^search\.budget\.epoch: unknown key; did you mean 'epochs'"),
    ({"algorithm": "random", "budget": {"epochs": 0}},
     {}, r"^search\.budget\.epochs: .*greater than or equal to 1, got 0"),
    ({"algorithm": "random", "budget": {"wall_s": -1}},
     {}, r"^search\.budget\.wall_s: .*greater than 0, got -1"),
    ({"algorithm": "random", "budget": {"epochs": 10}, "num_samples": 4},
     {}, (r"^search\.num_samples: the study runs until search\.budget \(10 epochs\) is spent.*"
         r"got num_samples=4; remove num_samples")),
    ({"algorithm": "grid", "budget": {"epochs": 10}, "num_samples": 1},
     {}, r"^search\.num_samples: .*remove num_samples"),
    ({"algorithm": "random", "budget": {"epochs": 2}, "executions_per_trial": 3},
     {}, (r"^search\.budget\.epochs: 2 is less than one epoch of one trial "
         r"\(search\.executions_per_trial=3 .*give at least 3")),
])
def test_bad_budgets_name_the_field_and_the_fix(search, sections, pattern):
    with pytest.raises(SpecError, match=pattern):
        Experiment.from_dict(_spec(search, **sections))


def test_a_hypermodel_grid_cannot_take_a_budget():
    with pytest.raises(SpecError, match=r"^search\.budget: a hypermodel's grid runs in the "
                                        r"hypermodel's own order.*use search\.algorithm: random"):
        Experiment.from_dict({"name": "x", "model": {"hypermodel": "tests.hypermodels:tiny"},
                              "search": {"algorithm": "grid", "budget": {"trials": 3}}})


def test_the_comparison_gives_every_variant_its_budget_and_three_seeds():
    spec, experiments = load_comparison(EXAMPLE)
    assert spec.seeds == [0, 1, 2] and spec.seed_warning is None
    assert isinstance(spec.budget, BudgetSpec) and spec.budget.epochs == 96
    assert len(experiments) == 6
    assert {e.search.budget for e in experiments} == {spec.budget}
    assert [e.search.algorithm for e in experiments] == ["grid"] * 3 + ["random"] * 3
    assert [e.search.seed for e in experiments] == [0, 1, 2] * 2


def test_comparison_overrides_change_the_comparison_or_every_experiment():
    spec, experiments = load_comparison(EXAMPLE, ["budget={trials: 5}", "seeds=[4]",
                                                  "search_space.filters=8",
                                                  "search.executions_per_trial=2"])
    assert spec.budget.trials == 5 and spec.seeds == [4]
    assert "1 seed per variant (fewer than 3)" in spec.seed_warning
    for experiment in experiments:
        assert experiment.search.budget.trials == 5 and experiment.search.seed == 4
        assert experiment.search_space["filters"].value == 8
        # Options every algorithm has survive a variant that changes the algorithm.
        assert experiment.search.executions_per_trial == 2


@pytest.mark.parametrize("change, pattern", [
    (lambda d: d.pop("budget"), (r"^budget: a comparison gives every variant the same budget.*"
                                r"budget: \{epochs: N\}")),
    (lambda d: d["variants"][1]["set"]["search"].update(num_samples=12),
     (r"^variants\[random\]\.set\.search\.num_samples: the comparison's budget applies to "
     r"every variant")),
    (lambda d: d["variants"][0]["set"]["search"].update(budget={"epochs": 500}),
     r"^variants\[grid\]\.set\.search\.budget: the comparison's budget applies to every variant"),
    (lambda d: d["base"].update(search={"num_samples": 4}),
     r"^base\.search\.num_samples: the comparison's budget applies to every variant"),
    (lambda d: d.update(seeds=[1, 1]), r"^seeds: seeds need at least one entry and no repeats"),
    (lambda d: d.update(alpha=1.5), r"^alpha: .*less than 1"),
])
def test_comparison_spec_errors(tmp_path, change, pattern):
    data = load_yaml(EXAMPLE)
    change(data)
    path = tmp_path / "cmp.yaml"
    dump_yaml(data, path)
    with pytest.raises(SpecError, match=pattern):
        load_comparison(path)
