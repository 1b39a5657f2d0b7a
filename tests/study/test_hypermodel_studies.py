"""KerasTuner hypermodels and repeated executions in real studies (real Ray, real Keras)."""

from __future__ import annotations

import json
import re

import keras_tuner as kt
import numpy as np
import pandas as pd
import pytest

from tests import hypermodels
from tests.conftest import one_trial_at_a_time
from tunefleet import best_hyperparameters, report, run, tune_hypermodel

pytestmark = pytest.mark.slow


def _results(path, trial_id):
    lines = (path / f"trial_{trial_id}" / "result.json").read_text().splitlines()
    return pd.DataFrame([json.loads(line) for line in lines if line.strip()])


def _hm_spec(tmp_path, **sections):
    spec = {
        "name": "hm",
        "data": {"dataset": "digits"},
        "model": {"hypermodel": "tests.hypermodels:layered_mlp_guide"},
        "train": {"epochs": 3, "batch_size": 64},
        "search": {"algorithm": "hyperopt", "num_samples": 4, "n_initial_points": 3, "seed": 3},
        "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
        "objective": {"metric": "val_accuracy"},
        "output": {"storage": str(tmp_path / "results")},
    }
    spec.update(sections)
    return one_trial_at_a_time(spec)


def test_keras_tuner_build_model_runs_unchanged_with_hyperopt_and_asha(ray_local, tmp_path):
    result = run(_hm_spec(tmp_path))
    trials = result.trials
    assert len(trials) == 4 and result.finished == 4
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
    for h in hp.space:  # values of the hyperparameters' own types, compared by type too
        if h.name in hp.values and type(h).__name__ in ("Int", "Float"):
            assert type(hp.values[h.name]) is {"Int": int, "Float": float}[type(h).__name__]
    model = hypermodels.layered_mlp_guide(hp)  # the user's own function builds the winner
    model.build((None, 8, 8, 1))  # (no Input: Keras would build it at its first batch)
    assert model.count_params() > 0


@pytest.fixture(scope="module")
def array_study(ray_local, tmp_path_factory):
    """One ``tune_hypermodel`` study on arrays, as ``tuner.search(x, y, ...)`` takes them: a
    HyperModel that tunes the batch size in fit() and compiles a metric object, its objective
    given as KerasTuner's list of one Objective."""
    from sklearn.datasets import load_digits

    from tests.study.merged_models import MetricObjectBatchSizeHyperModel

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target
    return tune_hypermodel(
        MetricObjectBatchSizeHyperModel(), x[:1200], y[:1200], validation_split=0.25,
        test_data=(x[1200:], y[1200:]),
        objective=[kt.Objective("val_sparse_categorical_accuracy", direction="max")],
        max_trials=2, search="random", scheduler="fifo", epochs=2,
        directory=tmp_path_factory.mktemp("arrays"), name="api",
        settings=["resources.cpu=1", "search.max_concurrent=1"])


def test_tune_hypermodel_takes_arrays_like_tuner_search(array_study):
    """Arrays, validation_split and test_data as ``tuner.search`` takes them; the batch size a
    HyperModel tunes in its fit() is tuned."""
    result, n = array_study, 1797  # digits
    assert len(result.trials) == 2
    assert set(result.trials["config/batch_size"]) <= {32, 64}
    assert isinstance(best_hyperparameters(result).values["batch_size"], int)
    metrics = json.loads((result.path / "report" / "test_metrics.json").read_text())
    assert metrics["n_test"] == n - 1200
    info = json.loads((result.path / "data" / "info.json").read_text())
    assert info["sizes"] == {"train": 900, "validation": 300, "test": n - 1200}


@pytest.fixture(scope="module")
def executions_study(ray_local, tmp_path_factory):
    """A builder study under HyperOpt with three executions per trial, tuning an int choice
    (batch_size) and a randint (dense_units)."""
    from tests.conftest import tiny_spec

    spec = tiny_spec(tmp_path_factory.mktemp("executions"), name="executions",
                     model={"builder": "cnn", "params": {"filters": 8}},
                     search_space={"batch_size": {"type": "choice", "values": [32, 64]},
                                   "dense_units": {"type": "randint", "low": 8, "high": 17}},
                     search={"algorithm": "hyperopt", "num_samples": 2, "seed": 4,
                             "executions_per_trial": 3},
                     train={"epochs": 2, "learning_rate": 0.01})
    return run(spec)


def test_repeated_executions_report_their_mean_and_keep_every_curve(executions_study):
    result = executions_study
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


def test_a_conditional_int_keeps_its_type_from_study_to_best_hyperparameters(ray_local, tmp_path):
    """``units`` (an Int) and ``width`` (a Choice of ints) exist only when ``hidden`` is on; the
    trial without them makes their trials-table columns gappy, which pandas would make float.
    A grid of 2 configurations: without the hidden layers, and with them."""
    spec = _hm_spec(tmp_path, name="typed",
                    model={"hypermodel": "tests.hypermodels:gated_hidden_layer_guide"},
                    train={"epochs": 1, "batch_size": 64},
                    search={"algorithm": "grid", "num_samples": 1, "seed": 0},
                    scheduler={"name": "fifo"})
    result = run(spec)
    assert len(result.trials) == 2 and result.finished == 2
    assert result.trials["config/units"].isna().sum() == 1  # hidden=False used neither
    assert str(result.trials["config/units"].dtype) == "Int64"
    summary = json.loads((result.path / "summary.json").read_text())
    assert summary["best"]["config"]["hidden"] is True  # without the layer it barely learns
    for config in (summary["best"]["config"], result.best_config):
        for name in ("units", "width"):
            assert isinstance(config[name], int) and not isinstance(config[name], bool), config
    # trials.csv: ints as ints, never 16.0 / 24.0 / 32.0.
    assert not re.search(r"\b(16|24|32)\.0\b", (result.path / "trials.csv").read_text())

    hp = best_hyperparameters(result)
    ints = [h.name for h in hp.space if isinstance(h, kt.engine.hyperparameters.Int)]
    assert ints == ["units"]
    assert all(isinstance(hp.values[n], int) for n in (*ints, "width"))
    model = hypermodels.gated_hidden_layer_guide(hp)  # Keras refuses Dense(units=32.0)
    assert [layer.units for layer in model.layers[1:3]] == [hp.values["units"], hp.values["width"]]


def test_builder_best_config_keeps_tuned_ints(executions_study):
    """HyperOpt's choice and randint values come back as ints in the best configuration."""
    result = executions_study
    summary = json.loads((result.path / "summary.json").read_text())
    for config in (result.best_config, summary["best"]["config"]):
        for name in ("batch_size", "dense_units"):
            assert isinstance(config[name], int) and not isinstance(config[name], bool), config
    assert config["batch_size"] in (32, 64) and 8 <= config["dense_units"] <= 16


def test_metric_object_objective_end_to_end(array_study):
    """A compiled ``SparseCategoricalAccuracy()`` reports ``val_sparse_categorical_accuracy``;
    given as KerasTuner's list of one Objective, it is the study's objective, maximised."""
    result = array_study
    assert result.summary["objective"] == {"metric": "val_sparse_categorical_accuracy",
                                           "mode": "max"}
    scores = result.trials["best_val_sparse_categorical_accuracy"]
    assert result.best_metrics["val_sparse_categorical_accuracy"] == scores.max() > 0.5
    metrics = json.loads((result.path / "report" / "test_metrics.json").read_text())
    assert 0.5 < metrics["metrics"]["accuracy"] <= 1  # the report scored the best model
    hp = best_hyperparameters(result)
    assert isinstance(hp.values["units"], int) and isinstance(hp.values["lr"], float)
