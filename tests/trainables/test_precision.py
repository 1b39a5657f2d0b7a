"""train.mixed_precision and train.jit_compile: the trial's model is built under Keras' mixed
policy (float32 output head, loss scaling for float16), XLA as the spec says, the driver's
global policy untouched; a mixed-precision study trains, checkpoints and restores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import tiny_spec
from tunefleet.data import load_dataset
from tunefleet.spec.sections import DataSpec
from tunefleet.study.runner import as_experiment
from tunefleet.trainables.keras_trainable import build_trial_model


def _auto_xla() -> bool:
    """Keras' "auto": XLA when the machine has a GPU, and never in a driver that hid its GPUs
    (this test process may be one: other tests ran prepare() in it)."""
    import tensorflow as tf

    from tunefleet.cluster.devices import driver_gpus_hidden

    return bool(tf.config.list_physical_devices("GPU")) and not driver_gpus_hidden()


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataSpec(dataset="digits")).training


@pytest.mark.parametrize("policy, jit, scaled", [
    ("mixed_float16", False, True), ("mixed_bfloat16", True, False), (None, "auto", False)])
def test_a_builders_model_is_built_under_the_policy_and_the_driver_keeps_its_own(
        digits, tmp_path, policy, jit, scaled):
    import keras

    experiment = as_experiment(tiny_spec(tmp_path, train={
        "epochs": 1, "batch_size": 64, "mixed_precision": policy, "jit_compile": jit}))
    before = keras.config.dtype_policy().name
    trial = build_trial_model(experiment, digits.info, {"learning_rate": 0.01, "dropout": 0.1})
    model = trial.model
    assert keras.config.dtype_policy().name == before == "float32"  # put back
    assert model.dtype_policy.name == (policy or "float32")
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert conv.compute_dtype == {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16",
                                  None: "float32"}[policy]
    assert conv.variable_dtype == "float32"  # mixed: the weights stay float32
    assert model.get_layer("output").compute_dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) is scaled
    assert model.jit_compile is (jit if isinstance(jit, bool) else _auto_xla())
    probs = model.predict(digits.x_val[:4], verbose=0)
    assert probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_a_hypermodel_is_built_under_the_policy_and_keeps_its_own_xla_on_auto(digits, tmp_path):
    import keras

    for jit, expected in (("auto", _auto_xla()), (True, True)):
        experiment = as_experiment(tiny_spec(
            tmp_path, model={"hypermodel": "tests.hypermodels:layered_mlp"}, search_space={},
            train={"epochs": 1, "mixed_precision": "mixed_bfloat16", "jit_compile": jit}))
        trial = build_trial_model(experiment, digits.info, {})
        assert trial.model.dtype_policy.name == "mixed_bfloat16"
        assert trial.model.jit_compile is expected
        assert keras.config.dtype_policy().name == "float32"


@pytest.mark.slow
def test_a_mixed_float16_study_trains_checkpoints_and_its_best_model_restores(ray_local, tmp_path):
    """Loss scaling adds optimizer variables: the checkpoint holds them and the report's
    restore (a model built under the same policy) reads them back."""
    from tunefleet import report, run

    result = run(tiny_spec(tmp_path, name="mixed", search={"algorithm": "random",
                                                           "num_samples": 1, "seed": 4},
                           train={"epochs": 2, "batch_size": 64, "learning_rate": 0.01,
                                  "mixed_precision": "mixed_float16"}))
    assert result.finished == 1
    history = result.trials
    assert (history["status"] == "completed").all()
    built = report(result.path)
    assert built.test.metrics["accuracy"] > 0.3  # it learned, in float16, and restored
    assert isinstance(built.test.metrics["accuracy"], float)
    assert Path(result.path, "report", "report.html").exists()


def test_preview_prints_steps_per_execution_precision_and_xla(tmp_path):
    from tunefleet.study.preview import collect_plan, render_plan

    plan = render_plan(collect_plan(as_experiment(tiny_spec(tmp_path, train={
        "epochs": 1, "mixed_precision": "mixed_bfloat16", "jit_compile": False,
        "steps_per_execution": 4}))))
    line = next(x for x in plan.splitlines() if x.startswith("Training"))
    assert line.split(None, 1)[1] == ("4 steps per execution; mixed_bfloat16; XLA off; "
                                      "Keras backend tensorflow")
    default = render_plan(collect_plan(as_experiment(tiny_spec(tmp_path))))
    assert "8 steps per execution; float32; XLA Keras' choice (on with a GPU)" in default
