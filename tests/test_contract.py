"""One contract, run over every scheduler and every searcher on a real local Ray."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import tiny_spec
from tunefleet import Experiment, run
from tunefleet.schedulers import SCHEDULERS
from tunefleet.search_spaces import SEARCHERS
from tunefleet.spec import load_yaml

pytestmark = pytest.mark.slow

SEARCH = {
    "grid": ({"algorithm": "grid"}, {"learning_rate": {"type": "grid", "values": [0.003, 0.01]},
                                      "dropout": {"type": "choice", "values": [0.0, 0.2]}}),
    "random": ({"algorithm": "random", "num_samples": 4, "seed": 3}, None),
    "hyperopt": ({"algorithm": "hyperopt", "num_samples": 4, "n_initial_points": 2, "seed": 3},
                 None),
}
SCHEDULER = {
    "fifo": {"name": "fifo"},
    "asha": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
    "hyperband": {"name": "hyperband", "reduction_factor": 2},
    "median": {"name": "median", "grace_period": 1, "min_samples_required": 2},
}
COMBOS = [(s, "fifo") for s in SEARCH] + [("random", k) for k in SCHEDULER if k != "fifo"]


def test_every_registered_name_is_covered():
    assert {s for s, _ in COMBOS} == set(SEARCHERS)
    assert {k for _, k in COMBOS} == set(SCHEDULERS)


@pytest.mark.parametrize("searcher, scheduler", COMBOS, ids=[f"{a}-{b}" for a, b in COMBOS])
def test_study_contract(ray_local, tmp_path, searcher, scheduler):
    search, space = SEARCH[searcher]
    spec = tiny_spec(tmp_path, name=f"{searcher}_{scheduler}", search=search,
                     scheduler=SCHEDULER[scheduler], train={"epochs": 4, "batch_size": 64})
    if space:
        spec["search_space"] = space
    experiment = Experiment.from_dict(spec)
    result = run(experiment)

    expected = 4
    assert len(result.trials) == expected
    assert set(result.trials["status"]) <= {"completed", "stopped_by_scheduler"}
    assert result.trials["epochs_trained"].between(1, 4).all()
    completed = result.trials[result.trials["status"] == "completed"]
    assert (completed["epochs_trained"] == 4).all() and len(completed) >= 1
    if scheduler == "fifo":
        assert len(completed) == expected

    # The best configuration is the trial with the best objective, and it is a sampled one.
    best_value = result.trials["best_val_accuracy"].max()
    assert result.best_metrics["val_accuracy"] == pytest.approx(best_value)
    assert set(result.best_config) == set(spec["search_space"])

    # The results directory holds the validated spec, the summary and the test split.
    study = result.path
    assert Experiment.from_dict(load_yaml(study / "spec.yaml")) == experiment
    summary = json.loads((study / "summary.json").read_text())
    assert summary["trials"]["total"] == expected
    # No retries here: what was trained is every epoch reached, once.
    assert (result.trials["epochs_run"] == result.trials["epochs_trained"]).all()
    assert summary["epochs_total"] == int(result.trials["epochs_run"].sum())
    # Every searcher gives every trial its own seed (HyperOpt derives it from the trial's index).
    seeds = result.trials["config/trial_seed"]
    assert seeds.notna().all() and seeds.nunique() == expected
    assert summary["best"]["checkpoint"] and (study / "data" / "test.npz").exists()
    if scheduler != "hyperband":  # only synchronous HyperBand pauses; nothing else restores
        for trial_id in result.trials["trial_id"]:
            lines = (study / f"trial_{trial_id}" / "result.json").read_text().splitlines()
            history = pd.DataFrame([json.loads(line) for line in lines if line.strip()])
            assert (history["iterations_since_restore"] == history["training_iteration"]).all()
    if searcher == "grid":
        seen = {(r["config/learning_rate"], r["config/dropout"]) for _, r in result.trials.iterrows()}
        assert seen == {(lr, d) for lr in (0.003, 0.01) for d in (0.0, 0.2)}
