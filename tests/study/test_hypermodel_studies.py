"""KerasTuner hypermodels and repeated executions in real studies (real Ray, real Keras)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests import hypermodels
from tunefleet import best_hyperparameters, report, run, tune_hypermodel

pytestmark = pytest.mark.slow


def _results(path, trial_id):
    lines = (path / f"trial_{trial_id}" / "result.json").read_text().splitlines()
    return pd.DataFrame([json.loads(line) for line in lines if line.strip()])


def _hm_spec(tmp_path, **sections):
    spec = {
        "name": "hm",
        "data": {"dataset": "digits"},
        "model": {"hypermodel": "tests.hypermodels:layered_mlp"},
        "train": {"epochs": 3, "batch_size": 64},
        "search": {"algorithm": "hyperopt", "num_samples": 5, "n_initial_points": 3, "seed": 3},
        "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
        "objective": {"metric": "val_accuracy"},
        "output": {"storage": str(tmp_path / "results")},
    }
    spec.update(sections)
    return spec


def test_keras_tuner_build_model_runs_unchanged_with_hyperopt_and_asha(ray_local, tmp_path):
    result = run(_hm_spec(tmp_path))
    trials = result.trials
    assert len(trials) == 5 and result.finished == 5
    assert result.best_metrics["val_accuracy"] > 0.5
    space = json.loads((result.path / "search_space.json").read_text())
    conditions = {p["name"]: p["conditions"] for p in space["params"]}
    for _, row in trials.iterrows():
        active = set(row["active_hyperparameters"].split(","))
        config = json.loads((result.path / f"trial_{row['trial_id']}" / "params.json").read_text())
        # The trial recorded exactly the hyperparameters its configuration made active ...
        assert active == set(config) - {"trial_seed"}  # every trial's seed is in its config
        # ... and every one of them satisfies its conditions.
        for name in active:
            for cond in conditions[name]:
                assert config[cond["parent"]] in cond["values"], (name, config)
        absent = {"units_1", "units_2"} - active
        assert all(pd.isna(row[f"config/{n}"]) for n in absent)

    built = report(result.path)
    assert built.test is not None and built.test.metrics["accuracy"] > 0.5
    hp = best_hyperparameters(result)
    import keras_tuner as kt

    assert isinstance(hp, kt.HyperParameters)
    assert hp.values == result.best_config
    model = hypermodels.layered_mlp(hp)  # the user's own function builds the winner
    assert model.count_params() > 0


def test_tune_hypermodel_takes_arrays_like_tuner_search(ray_local, tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target
    result = tune_hypermodel(
        hypermodels.BatchSizeHyperModel(), x[:1200], y[:1200], validation_split=0.25,
        test_data=(x[1200:], y[1200:]), objective="val_accuracy", max_trials=3,
        search="random", scheduler="fifo", epochs=2, directory=tmp_path, name="api",
        settings=["resources.cpu=1"])
    assert len(result.trials) == 3
    assert set(result.trials["config/batch_size"]) <= {32, 64}
    metrics = json.loads((result.path / "report" / "test_metrics.json").read_text())
    assert metrics["n_test"] == len(y) - 1200
    info = json.loads((result.path / "data" / "info.json").read_text())
    assert info["sizes"] == {"train": 900, "validation": 300, "test": len(y) - 1200}


def test_repeated_executions_report_their_mean_and_keep_every_curve(ray_local, tmp_path):
    from tests.conftest import tiny_spec

    spec = tiny_spec(tmp_path, name="executions",
                     search={"algorithm": "random", "num_samples": 2, "seed": 4,
                             "executions_per_trial": 3},
                     train={"epochs": 2, "batch_size": 64, "learning_rate": 0.01})
    result = run(spec)
    assert result.finished == 2
    for trial_id in result.trials["trial_id"]:
        history = _results(result.path, trial_id)
        assert history["epoch"].tolist() == [1, 2]
        for metric in ("val_accuracy", "loss"):
            runs = history[[f"execution_{k}/{metric}" for k in range(3)]].to_numpy()
            assert np.allclose(history[metric], runs.mean(axis=1))
            assert np.allclose(history[f"std/{metric}"], runs.std(axis=1))
        # Three executions with different seeds do not train identically.
        assert history[[f"execution_{k}/loss" for k in range(3)]].iloc[0].nunique() == 3
        checkpoints = sorted((result.path / f"trial_{trial_id}").glob("checkpoint_*"))
        assert all((c / f"execution_{k}").is_dir() for c in checkpoints for k in range(3))
    built = report(result.path)
    assert built.test.metrics_std is not None and len(built.test.executions) == 3
    assert np.isclose(built.test.metrics["accuracy"],
                      np.mean([e["accuracy"] for e in built.test.executions]))
    assert "std_val_accuracy" in built.study.trials
    assert "±" in (result.path / "report" / "report.md").read_text()
