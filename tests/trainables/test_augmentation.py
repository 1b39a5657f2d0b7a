"""Data augmentation in the cnn builder changes training batches and leaves evaluation alone."""

from __future__ import annotations

import numpy as np
import pytest

from tunefleet.data import DataInfo
from tunefleet.trainables.builders import augmentation, cnn

INFO = DataInfo(name="t", task="multiclass", input_shape=(12, 12, 1), num_classes=3)


def _batch():
    rng = np.random.default_rng(0)
    return rng.random((8, 12, 12, 1)).astype("float32")


@pytest.mark.parametrize("kwargs", [
    {"flip": "horizontal"}, {"rotation": 0.2}, {"translation": 0.2}, {"zoom": 0.3},
])
def test_each_augmentation_changes_training_batches_only(kwargs):
    import keras

    keras.utils.set_random_seed(0)
    layers = augmentation(**kwargs)
    assert len(layers) == 1
    pipeline = keras.Sequential([keras.Input((12, 12, 1)), *layers])
    x = _batch()
    trained = keras.ops.convert_to_numpy(pipeline(x, training=True))
    assert trained.shape == x.shape
    assert not np.allclose(trained, x)
    assert np.array_equal(keras.ops.convert_to_numpy(pipeline(x, training=False)), x)


def test_cnn_with_augmentation_predicts_deterministically_and_trains_on_changed_images():
    import keras

    keras.utils.set_random_seed(0)
    model = cnn(INFO, conv_blocks=1, filters=4, dense_units=8, augment_flip="horizontal",
                augment_rotation=0.1, augment_zoom=0.2)
    names = [type(layer).__name__ for layer in model.layers]
    assert names[1:4] == ["RandomFlip", "RandomRotation", "RandomZoom"]
    x = _batch()
    first = model.predict(x, verbose=0)
    assert np.array_equal(first, model.predict(x, verbose=0))  # evaluation untouched
    a = keras.ops.convert_to_numpy(model(x, training=True))
    b = keras.ops.convert_to_numpy(model(x, training=True))
    assert not np.allclose(a, b)  # each training pass sees differently augmented images


def test_no_augmentation_by_default():
    model = cnn(INFO, conv_blocks=1, filters=4, dense_units=8)
    assert not any(type(layer).__name__.startswith("Random") for layer in model.layers)
