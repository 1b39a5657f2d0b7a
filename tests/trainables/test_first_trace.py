"""A trial's model traces its train step once, not twice, and trains exactly as plain Keras
trains it (tunefleet/trainables/first_trace.py)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tunefleet.trainables.first_trace import build_on_first_fit

ROWS, FEATURES, CLASSES = 48, 6, 3


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, FEATURES))  # float64: fit casts it to float32
    y = rng.integers(0, CLASSES, size=ROWS)  # int64 labels: sparse accuracy
    return x, y


def _functional():
    inputs = keras.Input((FEATURES,))
    hidden = keras.layers.Dropout(0.3)(keras.layers.Dense(8, activation="relu")(inputs))
    return keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax")(hidden))


def _sequential_unbuilt():  # as KerasTuner's guides write build_model: no Input
    return keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.3),
                             keras.layers.Dense(CLASSES, activation="softmax")])


class TrainingOnly(keras.Model):
    """Keras builds a model before its trace by calling it with ``training=False``: this one
    raises there (so the build fails) and trains in the trace."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(CLASSES, activation="softmax")

    def call(self, x, training=None):
        if not training:
            raise ValueError("this model only trains")
        return self.dense(x)


def _train(make, first_trace: bool, dataset: bool = False, validation: bool = True,
           batch_size: int = 16):
    """Train a fresh model for 2 epochs: (train_step traces, weights, history, build config)."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(7)
    model = make()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    traces = []
    step = model.train_step

    def counted(data):
        traces.append(1)  # Python runs only while TensorFlow traces
        return step(data)

    model.train_step = counted
    if first_trace:
        build_on_first_fit(model)
        assert "fit" in vars(model)
    x, y = _data()
    if dataset:
        history = model.fit(tf.data.Dataset.from_tensor_slices((x.astype("float32"), y)).batch(16),
                            epochs=2, shuffle=False, verbose=0)
    else:
        history = model.fit(x, y, batch_size=batch_size, epochs=2, verbose=0,
                            validation_data=(x[:16], y[:16]) if validation else None)
    assert "fit" not in vars(model)  # the class's fit again after the first call
    return (len(traces), [w.copy() for w in model.get_weights()], history.history,
            model.get_build_config())


@pytest.mark.parametrize("make,dataset,batch_size", [
    (_functional, False, 16), (_sequential_unbuilt, False, 16),
    (_sequential_unbuilt, False, 20), (_functional, True, 16)],
    ids=["functional", "sequential-without-input", "rows-not-divisible", "tf-data"])
def test_one_trace_and_the_same_training(make, dataset, batch_size):
    plain_traces, plain_weights, plain_history, plain_build = _train(make, False, dataset,
                                                                     batch_size=batch_size)
    traces, weights, history, build = _train(make, True, dataset, batch_size=batch_size)
    assert plain_traces == 2  # what this module saves: Keras' variable-creating first trace
    assert traces == 1
    assert len(weights) == len(plain_weights) > 0
    for ours, theirs in zip(weights, plain_weights, strict=True):
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)  # bit for bit
    assert history == plain_history
    assert isinstance(history["accuracy"][0], float)
    # The input shape the model was built for (batch dimension included) is Keras' own too.
    assert build == plain_build


def _built_training_only():
    model = TrainingOnly()
    model(np.zeros((2, FEATURES), "float32"), training=True)  # every layer built
    return model


def test_a_model_that_cannot_be_built_symbolically_trains_as_before():
    plain_traces, plain_weights, plain_history, _ = _train(_built_training_only, False,
                                                           validation=False)
    traces, weights, history, _ = _train(_built_training_only, True, validation=False)
    assert traces == plain_traces == 2
    for ours, theirs in zip(weights, plain_weights, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert history == plain_history


def test_a_dataset_of_unknown_rank_is_left_to_keras():
    from tunefleet.trainables.first_trace import _batch_spec

    x, y = _data()

    def rows():
        yield from zip(x.astype("float32"), y, strict=True)

    def data():
        return tf.data.Dataset.from_generator(rows, output_signature=(
            tf.TensorSpec(None, tf.float32), tf.TensorSpec(None, tf.int64))).batch(16)

    assert _batch_spec((data(),), {}) is None

    def outcome(first_trace):
        """The weights after an epoch, or the error Keras raised."""
        keras.backend.clear_session()
        keras.utils.set_random_seed(7)
        model = _functional()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        if first_trace:
            build_on_first_fit(model)
        try:
            model.fit(data(), epochs=1, verbose=0)
        except Exception as exc:  # noqa: BLE001 - compared with plain Keras' own outcome
            return f"{type(exc).__name__}: {exc}"
        return [w.tolist() for w in model.get_weights()]

    assert outcome(True) == outcome(False)


def test_left_to_keras():
    class OwnFit(keras.Model):
        def fit(self, *args, **kwargs):
            return super().fit(*args, **kwargs)

    def compiled(model):
        model.compile(optimizer="adam", loss="mse")
        return model

    inputs = keras.Input((FEATURES,))
    own = compiled(OwnFit(inputs, keras.layers.Dense(1)(inputs)))
    uncompiled = _functional()
    eager = _functional()
    eager.compile(optimizer="adam", loss="mse", run_eagerly=True)
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():  # Keras builds it itself there
        distributed = compiled(_functional())
    unbuilt_subclass = compiled(TrainingOnly())  # a training-only layer would miss the optimizer
    instance_fit = compiled(_functional())
    fit = instance_fit.fit
    instance_fit.fit = lambda *args, **kwargs: fit(*args, **kwargs)  # a builder's own wrapper
    for model in (own, uncompiled, eager, distributed, unbuilt_subclass):
        build_on_first_fit(model)
        assert "fit" not in vars(model), type(model).__name__
    kept = instance_fit.fit
    build_on_first_fit(instance_fit)
    assert instance_fit.fit is kept  # the builder's fit stays the one fit calls


def test_inputs_keras_reshapes_itself_are_left_to_it():
    import pandas as pd

    from tunefleet.trainables.first_trace import _batch_spec

    x, y = _data()
    assert _batch_spec((pd.Series(x[:, 0]), y), {}) is None  # Keras makes a Series (n, 1)
    assert _batch_spec((x.tolist(), y.tolist()), {}) is None
    assert _batch_spec((tf.sparse.from_dense(x), y), {}) is None
    assert _batch_spec((tf.RaggedTensor.from_tensor(x), y), {}) is None
    # The batch dimension Keras' array dataset gives: static when batches divide the rows left
    # after validation_split (48 * 0.75 = 36: no; 48 * 0.5 = 24 with batches of 12: yes).
    x_spec, y_spec, weights = _batch_spec((x, y), {"batch_size": 16, "validation_split": 0.25})
    assert (x_spec.shape, x_spec.dtype, y_spec.shape, y_spec.dtype) == (
        (None, FEATURES), "float32", (None,), "int64")
    assert weights is None
    x_spec, _, _ = _batch_spec((x, y), {"batch_size": 12, "validation_split": 0.5})
    assert x_spec.shape == (12, FEATURES)
