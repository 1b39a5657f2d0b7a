"""A checkpoint restores weights, optimizer state and callback progress exactly."""

from __future__ import annotations

import numpy as np

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
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    fresh = make_callbacks(train)
    restore_callbacks(fresh, meta["callbacks"])
    assert fresh[0].best == callbacks[0].best and fresh[1].wait == callbacks[1].wait

    # One more epoch from either gives the same weights: nothing was lost in the checkpoint.
    for m in (model, restored):
        m.fit(data.x_train, data.y_train, epochs=1, batch_size=32, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
