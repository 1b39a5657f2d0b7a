"""One contract, run over every scheduler and every searcher on a real local Ray.

Each combination's study is one the suite runs anyway for other tests (conftest's shared
studies), except those of median stopping, Optuna and BOHB, which are this module's own: the
contract checks what every study must satisfy, whatever else a test asserts on it."""

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
from tunefleet.spec.methods import PAUSING_SCHEDULERS
from tunefleet.spec.population import POPULATION_SCHEDULERS

pytestmark = pytest.mark.slow

# (searcher, scheduler) -> the fixture that runs its study.
STUDIES = {
    ("grid", "fifo"): "breast_cancer_study",  # a 2 x 2 grid of a grid and a choice entry
    ("random", "fifo"): "seeded_other",
    ("hyperopt", "fifo"): "diabetes_study",  # and a minimised objective
    ("grid", "asha"): "asha_study",
    ("random", "hyperband"): "hyperband_contract",
    ("random", "median"): "median_study",
    ("optuna", "asha"): "optuna_asha_study",  # multivariate TPE; trials cut by ASHA end early
    ("bohb", "bohb"): "bohb_study",  # TuneBOHB with HyperBandForBOHB, which pauses trials
    ("random", "pbt"): "pbt_study",  # synchronous: pauses, and copies trials into others
    ("random", "pb2"): "pb2_study",
}
COMBOS = list(STUDIES)
# A known good configuration the model-based studies start from (search.points_to_evaluate).
POINT = {"learning_rate": 0.01, "dropout": 0.1}


@pytest.fixture(scope="module")
def median_study(ray_local, tmp_path_factory) -> Study:
    """Random search under median stopping: 4 trials of 3 epochs."""
    from tunefleet import run

    spec = tiny_spec(tmp_path_factory.mktemp("median"), name="random_median",
                     search={"algorithm": "random", "num_samples": 4, "seed": 3},
                     scheduler={"name": "median", "grace_period": 1, "min_samples_required": 2})
    return Study(spec, run(spec))


@pytest.fixture(scope="module")
def optuna_asha_study(ray_local, tmp_path_factory) -> Study:
    """Optuna's multivariate TPE under ASHA: 4 trials of 3 epochs, 2 of them random first."""
    from tunefleet import run

    spec = tiny_spec(tmp_path_factory.mktemp("optuna"), name="optuna_asha",
                     search={"algorithm": "optuna", "num_samples": 4, "seed": 3,
                             "n_startup_trials": 2, "points_to_evaluate": [POINT]},
                     scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2})
    return Study(spec, run(spec))


def bohb_spec(tmp_path) -> dict:
    """BOHB, 4 trials of 3 epochs, η 3: its HyperBand's first bracket takes 3 trials and keeps
    the best 1 at epoch 1 (pausing the others there until the third arrives); the second
    trains the 4th trial uncut."""
    return tiny_spec(tmp_path, name="bohb",
                     search={"algorithm": "bohb", "num_samples": 4, "seed": 3,
                             "points_to_evaluate": [POINT]},
                     scheduler={"name": "bohb", "reduction_factor": 3})


@pytest.fixture(scope="module")
def bohb_study(ray_local, tmp_path_factory) -> Study:
    from tunefleet import run

    spec = bohb_spec(tmp_path_factory.mktemp("bohb"))
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


def _decision_epochs(experiment: Experiment) -> set[int]:
    """The epochs after which PBT/PB2 decide (and may pause or copy a trial) as Ray counts
    them: from max(interval, burn-in) every ``perturbation_interval``; none otherwise."""
    s = experiment.scheduler
    if s.name not in POPULATION_SCHEDULERS:
        return set()
    start = max(s.perturbation_interval, getattr(s, "burn_in_period", 0))
    return set(range(start, experiment.epoch_budget, s.perturbation_interval))


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
    # Only HyperBand's and BOHB's pauses (at rungs: their own tests) and PBT's and PB2's
    # (pauses and copies, at their decision epochs) restore a trial from a checkpoint.
    if scheduler not in PAUSING_SCHEDULERS:
        decisions = _decision_epochs(experiment)
        for trial_id in result.trials["trial_id"]:
            lines = (study / f"trial_{trial_id}" / "result.json").read_text().splitlines()
            history = pd.DataFrame([json.loads(line) for line in lines if line.strip()])
            restored = history["iterations_since_restore"] != history["training_iteration"]
            # The first row after a restore trains the epoch after the one it restored.
            resumed = (history["iterations_since_restore"] == 1) & (history["epoch"] > 1)
            assert (history["epoch"][resumed] - 1).isin(decisions).all()
            if scheduler not in POPULATION_SCHEDULERS:
                assert not restored.any()
    # Every point to evaluate ran as written (values and types, as Ray recorded the config).
    params = [json.loads((study / f"trial_{t}" / "params.json").read_text())
              for t in result.trials["trial_id"]]
    for point in spec["search"].get("points_to_evaluate", []):
        ran = [{k: p[k] for k in point} for p in params]
        assert point in ran
        assert all(type(ran[ran.index(point)][k]) is type(v) for k, v in point.items())
    if searcher == "grid":
        keys = sorted(space)
        seen = {tuple(r[f"config/{k}"] for k in keys) for _, r in result.trials.iterrows()}
        assert seen == _grid_points(space)


def test_bohb_study_cuts_and_pauses_only_at_previewed_epochs(bohb_study):
    """What `tunefleet preview` says BOHB's HyperBand does (tunefleet/schedulers/cuts.py, read
    from Ray's HyperBandForBOHB) is what the study did: 3 trials in the first bracket, the best
    1 going on from epoch 1 (paused there until the bracket's third trial arrived, then resumed
    from its checkpoint), the others stopped at epoch 1; the 4th trial uncut."""
    from tunefleet.schedulers import Bracket, brackets, cut_epochs

    spec, result = bohb_study
    experiment = Experiment.from_dict(spec)
    previewed = cut_epochs(experiment)
    assert previewed == [1]
    assert brackets(experiment, 4) == [
        Bracket(rungs=(1,), stop=3, budget=3, keep=(1,), size=3, trials=3),
        Bracket(rungs=(), stop=3, budget=3, keep=(), size=2, trials=1)]
    ended_early, paused = [], set()
    for trial_id in result.trials["trial_id"]:
        lines = (result.path / f"trial_{trial_id}" / "result.json").read_text().splitlines()
        history = pd.DataFrame([json.loads(line) for line in lines if line.strip()])
        if history["epoch"].max() < experiment.train.epochs:
            ended_early.append(int(history["epoch"].max()))
        # The first result after a resume: the trial was paused at the epoch before it.
        resumed = (history["iterations_since_restore"] == 1) & (history["epoch"] > 1)
        paused.update(int(e) - 1 for e in history["epoch"][resumed])
    assert sorted(ended_early) == [1, 1], "the study cut trials elsewhere than previewed"
    assert paused <= set(previewed), "a trial was paused at an epoch not previewed"
    status = result.trials.set_index("trial_id")["status"]
    assert sorted(status) == ["completed", "completed", "stopped_by_scheduler",
                              "stopped_by_scheduler"]
