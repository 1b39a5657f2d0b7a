"""A checkpoint restores weights, optimizer state and callback progress exactly."""

from __future__ import annotations

import numpy as np
import pytest

from tunefleet.data import load_dataset
from tunefleet.spec.sections import DataSpec
from tunefleet.spec.sections import TrainSpec
from tunefleet.trainables.builders import mlp
from tunefleet.trainables.checkpoint import load_state, restore_callbacks, save_state
from tunefleet.trainables.compile import compile_model, make_callbacks


def _model(train: TrainSpec, info):
    model = mlp(info, layers=1, units=8, dropout=0.3)  # dropout: its seed state is saved too
    compile_model(model, train, info.task)
    return model


def test_round_trip_continues_training_identically(tmp_path):
    import keras

    data = load_dataset(DataSpec(dataset="breast_cancer")).training
    train = TrainSpec(optimizer="adam", learning_rate=0.01,
                      early_stopping={"patience": 3}, reduce_lr_on_plateau={"patience": 1})
    keras.utils.set_random_seed(0)
    model = _model(train, data.info)
    callbacks = make_callbacks(train)
    model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=2,
              batch_size=32, callbacks=callbacks, verbose=0, shuffle=False)
    save_state(tmp_path, model, 2, callbacks)

    restored = _model(train, data.info)
    meta = load_state(tmp_path, restored)
    assert meta["epoch"] == 2
    for a, b in zip(model.get_weights(), restored.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.optimizer.variables, restored.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    fresh = make_callbacks(train)
    restore_callbacks(fresh, meta["callbacks"])
    assert fresh[0].best == callbacks[0].best and fresh[1].wait == callbacks[1].wait

    # One more epoch from either gives the same weights: nothing was lost in the checkpoint.
    for m in (model, restored):
        m.fit(data.x_train, data.y_train, epochs=1, batch_size=32, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), restored.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_epoch_order_depends_on_the_execution_seed_and_epoch_only():
    from tunefleet.trainables.executions import epoch_order

    first = epoch_order(7, 3, 100)
    assert np.array_equal(first, epoch_order(7, 3, 100))  # a resumed epoch 3 sees this order
    assert sorted(first.tolist()) == list(range(100))
    assert not np.array_equal(first, epoch_order(7, 0, 100))
    assert not np.array_equal(first, epoch_order(8, 3, 100))


def test_execution_state_travels_with_the_checkpoint(tmp_path):
    from tunefleet.trainables.reporter import ExecutionState

    data = load_dataset(DataSpec(dataset="breast_cancer")).training
    train = TrainSpec(early_stopping={"patience": 1})
    model = _model(train, data.info)
    state = ExecutionState(2)
    state.stopped[1], state.last[1] = True, {"loss": 0.25, "val_loss": 0.5}
    save_state(tmp_path, model, 4, make_callbacks(train), extra={**state.saved(1), "best": 0.5})

    restored = ExecutionState(2)
    meta = load_state(tmp_path, _model(train, data.info))
    restored.restore(1, meta)
    assert restored.stopped == [False, True] and restored.last[1] == {"loss": 0.25, "val_loss": 0.5}
    assert meta["best"] == 0.5 and isinstance(meta["epoch"], int)


@pytest.mark.parametrize("fed", ["as_given", "flattened_by_fit"])
def test_a_model_without_input_as_keras_tuners_guide_writes_it_restores_from_its_checkpoint(
        tmp_path, fed):
    """A Sequential without an Input has no weights until its first batch; a trial resumed
    from a checkpoint (HyperBand's pause, a retry) restores into a fresh, unbuilt one, built
    for the shape it was trained on: the data's, or what the user's own fit fed it."""
    import keras

    from tests.conftest import tiny_spec
    from tunefleet.study.runner import as_experiment
    from tunefleet.trainables.hypermodel import resolve_hypermodel
    from tunefleet.trainables.keras_trainable import build_trial_model

    data = load_dataset(DataSpec(dataset="digits")).training
    experiment = as_experiment(tiny_spec(tmp_path, model={
        "hypermodel": "tests.hypermodels:layered_mlp_guide"}, search_space={},
        train={"epochs": 1, "batch_size": 64}))
    config = {"num_layers": 2, "units_0": 16, "units_1": 8, "use_dropout": False,
              "optimizer": "adam", "lr": 0.01}
    hypermodel = resolve_hypermodel("tests.hypermodels:layered_mlp_guide")
    first = build_trial_model(experiment, data.info, config, hypermodel).model
    assert not first.built  # built by the user's fit, at its first batch, as in KerasTuner
    x = data.x_train if fed == "as_given" else data.x_train.reshape(len(data.x_train), -1)
    first.fit(x, data.y_train, epochs=1, verbose=0)
    save_state(tmp_path, first, 1, [])
    again = build_trial_model(experiment, data.info, config, hypermodel).model
    assert load_state(tmp_path, again, data.info.input_shape)["epoch"] == 1
    assert again.input_shape == first.input_shape == (None, *x.shape[1:])
    for a, b in zip(first.variables, again.variables, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
