"""One contract, run over every scheduler and every searcher on a real local Ray.

Each combination's study is one the suite runs anyway for other tests (conftest's shared
studies), except median stopping's, which is this module's own: the contract checks what
every study must satisfy, whatever else a test asserts on it."""

from __future__ import annotations

import itertools
import json

import pandas as pd
import pytest

from tests.conftest import Study, hyperband_spec, tiny_spec
from tunefleet import Experiment
from tunefleet.schedulers import SCHEDULERS
from tunefleet.search_spaces import SEARCHERS
from tunefleet.spec import load_yaml

pytestmark = pytest.mark.slow

# (searcher, scheduler) -> the fixture that runs its study.
STUDIES = {
    ("grid", "fifo"): "breast_cancer_study",  # a 2 x 2 grid of a grid and a choice entry
    ("random", "fifo"): "seeded_other",
    ("hyperopt", "fifo"): "diabetes_study",  # and a minimised objective
    ("grid", "asha"): "asha_study",
    ("random", "hyperband"): "hyperband_contract",
    ("random", "median"): "median_study",
}
COMBOS = list(STUDIES)


@pytest.fixture(scope="module")
def median_study(ray_local, tmp_path_factory) -> Study:
    """Random search under median stopping: 4 trials of 3 epochs."""
    from tunefleet import run

    spec = tiny_spec(tmp_path_factory.mktemp("median"), name="random_median",
                     search={"algorithm": "random", "num_samples": 4, "seed": 3},
                     scheduler={"name": "median", "grace_period": 1, "min_samples_required": 2})
    return Study(spec, run(spec))


@pytest.fixture
def seeded_other(seeded_studies) -> Study:
    return seeded_studies.other


@pytest.fixture
def hyperband_contract(hyperband_study) -> Study:
    # tiny_spec stores a study at <tmp_path>/results/<name>.
    return Study(hyperband_spec(hyperband_study.path.parents[1]), hyperband_study)


def test_every_registered_name_is_covered():
    assert {s for s, _ in COMBOS} == set(SEARCHERS)
    assert {k for _, k in COMBOS} == set(SCHEDULERS)


def _grid_points(space: dict) -> set[tuple]:
    """Every combination of a grid search's ``grid`` and ``choice`` entries, in key order."""
    return set(itertools.product(*(space[k]["values"] for k in sorted(space))))


@pytest.mark.parametrize("searcher, scheduler", COMBOS, ids=[f"{a}-{b}" for a, b in COMBOS])
def test_study_contract(request, searcher, scheduler):
    spec, result = request.getfixturevalue(STUDIES[searcher, scheduler])
    experiment = Experiment.from_dict(spec)
    assert experiment.search.algorithm == searcher and experiment.scheduler.name == scheduler
    space, epochs = spec["search_space"], experiment.train.epochs
    metric, mode = experiment.objective.metric, experiment.objective.mode

    expected = experiment.search.num_samples * (len(_grid_points(space)) if searcher == "grid"
                                                else 1)
    assert len(result.trials) == expected
    assert set(result.trials["status"]) <= {"completed", "stopped_by_scheduler"}
    assert result.trials["epochs_trained"].between(1, epochs).all()
    completed = result.trials[result.trials["status"] == "completed"]
    assert (completed["epochs_trained"] == epochs).all() and len(completed) >= 1
    if scheduler == "fifo":
        assert len(completed) == expected

    # The best configuration is the trial with the best objective, and it is a sampled one.
    best = result.trials[f"best_{metric}"]
    best_value = best.max() if mode == "max" else best.min()
    assert result.best_metrics[metric] == pytest.approx(best_value)
    assert set(result.best_config) == set(space)

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
        keys = sorted(space)
        seen = {tuple(r[f"config/{k}"] for k in keys) for _, r in result.trials.iterrows()}
        assert seen == _grid_points(space)
