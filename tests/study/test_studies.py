"""Studies on a real local Ray with real Keras: early stopping by the scheduler, pause and
resume, seeding, training aids and tabular tasks (trials that fail without taking the study
down: test_failures.py). Most studies are conftest's, shared with tests/test_contract.py."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from tests.conftest import tiny_spec
from tunefleet import SpecError, run

pytestmark = pytest.mark.slow


def _history(result, trial_id: str) -> pd.DataFrame:
    lines = (result.path / f"trial_{trial_id}" / "result.json").read_text().splitlines()
    return pd.DataFrame([json.loads(line) for line in lines if line.strip()])


def test_asha_on_digits_learns_and_stops_weak_trials(asha_study):
    """conftest's grid of 4 learning rates under ASHA (shared with tests/test_contract.py)."""
    result = asha_study.result
    assert len(result.trials) == 4
    assert result.best_metrics["val_accuracy"] > 0.8
    stopped = result.trials[result.trials["status"] == "stopped_by_scheduler"]
    assert len(stopped) >= 1 and (stopped["epochs_trained"] < 6).all()
    assert result.summary["trials"]["stopped_by_scheduler"] == len(stopped)


def test_hyperband_pauses_and_resumes_from_checkpoints(hyperband_study):
    """Synchronous HyperBand pauses trials at its milestones; a paused trial resumes from its
    checkpoint (the study is conftest's, shared with tests/schedulers/test_cut_epochs.py)."""
    result = hyperband_study
    resumed = 0
    for trial_id in result.trials["trial_id"]:
        history = _history(result, trial_id)
        # Epochs continue across a pause: 1, 2, ... with no restart and no repeat.
        assert history["epoch"].tolist() == list(range(1, len(history) + 1))
        assert (history["epoch"] == history["training_iteration"]).all()
        assert history["epoch"].max() <= 3
        restored = history["iterations_since_restore"] < history["training_iteration"]
        resumed += bool(restored.any())
    assert resumed >= 1, "HyperBand paused no trial, so nothing was resumed"
    assert (result.trials["status"] == "stopped_by_scheduler").any(), "HyperBand cut no trial"


def _configs(result) -> list[tuple]:
    cols = sorted(c for c in result.trials.columns if c.startswith("config/"))
    return sorted(tuple(round(float(v), 12) for v in row) for row in result.trials[cols].values)


def test_same_seed_same_configs_other_seed_other_configs(seeded_studies):
    """End to end for random search; HyperOpt's seeding is checked on its searcher in
    tests/search_spaces/test_convert.py (the same guarantee without three more studies).
    conftest's seeded studies: 2 trials each, seeds 7, 7 again and 8."""
    first, again, other = seeded_studies.first, seeded_studies.again, seeded_studies.other.result
    assert _configs(first) == _configs(again)
    assert _configs(first) != _configs(other)
    # The trial seeds come from search.seed too.
    assert sorted(first.trials["config/trial_seed"]) == sorted(again.trials["config/trial_seed"])


@pytest.fixture(scope="module")
def serial_sgd_study(ray_local, tmp_path_factory):
    """Two trials one at a time (max_concurrent 1), SGD with momentum and a step schedule
    (halved every 2 epochs), and EarlyStopping that no epoch after the first can satisfy
    (patience 2): each trial stops at epoch 3 of 4."""
    spec = tiny_spec(tmp_path_factory.mktemp("serial"), name="serial",
                     search={"algorithm": "random", "num_samples": 2, "max_concurrent": 1},
                     search_space={"optimizer": {"type": "choice", "values": ["sgd"]}},
                     train={"epochs": 4, "batch_size": 64, "learning_rate": 0.05, "momentum": 0.9,
                            "lr_schedule": {"type": "step", "drop": 0.5, "every": 2},
                            "early_stopping": {"monitor": "val_loss", "patience": 2,
                                               "min_delta": 100.0}})
    return run(spec)


def test_max_concurrent_limits_trials_running_at_once(serial_sgd_study):
    result = serial_sgd_study
    assert len(result.trials) == 2
    spans = []
    for trial_id in result.trials["trial_id"]:
        history = _history(result, trial_id)
        end = history["timestamp"].max()
        spans.append((end - history["time_total_s"].max(), end))
    spans.sort()
    assert all(later[0] >= earlier[1] - 1
               for earlier, later in zip(spans, spans[1:], strict=False))
    assert result.summary["cluster"]["max_concurrent_trials"] == 1


def test_early_stopping_ends_a_trial_and_says_so(serial_sgd_study):
    for _, row in serial_sgd_study.trials.iterrows():
        assert row["status"] == "early_stopped"
        # Epoch 1 sets the baseline, epochs 2 and 3 fail to improve by 100: patience 2 is spent.
        assert row["epochs_trained"] == 3


def test_training_aids_run_and_change_the_learning_rate(serial_sgd_study):
    result = serial_sgd_study
    for trial_id in result.trials["trial_id"]:
        history = _history(result, trial_id)
        assert history["lr"].round(6).tolist() == [0.05, 0.05, 0.025]


@pytest.mark.parametrize("dataset, metric, mode", [("diabetes", "val_mae", "min"),
                                                    ("breast_cancer", "val_auc", "max")])
def test_tabular_tasks(request, dataset, metric, mode):
    """conftest's tabular studies (shared with tests/test_contract.py)."""
    spec, result = request.getfixturevalue(f"{dataset}_study")
    assert spec["objective"] == {"metric": metric, "mode": mode}
    assert (result.trials["status"] == "completed").all()
    assert metric in result.best_metrics and result.best_metrics[metric] > 0

    # The report scores the best model on the held-out split with the task's metrics.
    from tunefleet.reports import build_study_report

    test = build_study_report(result.path).test
    if dataset == "diabetes":
        assert set(test.metrics) == {"mae", "mse", "rmse", "r2"}
        assert test.metrics["rmse"] == pytest.approx(test.metrics["mse"] ** 0.5)
        assert test.confusion is None
    else:
        assert 0.5 < test.metrics["roc_auc"] <= 1.0 and test.labels == ["malignant", "benign"]
        assert sum(map(sum, test.confusion)) == test.n_test


def test_gpu_trials_on_a_cluster_without_gpus_are_refused(ray_local, tmp_path):
    spec = tiny_spec(tmp_path, name="gpu", resources={"cpu": 1, "gpu": 0.5})
    with pytest.raises(SpecError, match=r"^resources\.gpu: the Ray cluster has no GPUs, got 0\.5"):
        run(spec)
    assert not (tmp_path / "results" / "gpu" / "summary.json").exists()


def test_existing_study_is_not_overwritten_unless_asked(seeded_studies):
    """A second run into a study's directory is refused; with overwrite it replaces it."""
    first_ids, refused, again = seeded_studies.first_ids, seeded_studies.refused, seeded_studies.again
    assert isinstance(refused, SpecError), "the second run was not refused"
    assert re.match(r"^output\.storage: .*twice already holds a study.*--overwrite", str(refused),
                    re.S), str(refused)
    assert again.trials["trial_id"].tolist() != first_ids
    assert again.path.name == "twice" and len(list(again.path.glob("trial_*"))) == 2


def test_overwrite_refuses_a_directory_that_is_not_a_study(tmp_path):
    # Nothing trains: the refusal comes before Ray starts.
    spec = tiny_spec(tmp_path, name="thesis")
    (tmp_path / "results" / "thesis").mkdir(parents=True)
    (tmp_path / "results" / "thesis" / "chapter1.tex").write_text("years of work")
    with pytest.raises(SpecError, match=r"^output\.storage: .*/results/thesis is not a tunefleet "
                                        r"study \(no spec\.yaml or Ray Tune state; it holds "
                                        r"chapter1\.tex\), so --overwrite will not delete it\. "
                                        r"Move or delete it yourself"):
        run(spec, overwrite=True)
    assert (tmp_path / "results" / "thesis" / "chapter1.tex").read_text() == "years of work"
