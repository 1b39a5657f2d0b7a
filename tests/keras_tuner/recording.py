"""A HyperModel whose fit checks that what tuner.search was given reached it, and a callback
whose effect shows in the reported metrics (used by test_parity.py)."""

from __future__ import annotations

import keras
import keras_tuner as kt
from keras import layers


class Seen(keras.callbacks.Callback):
    """Adds ``user_callback_epochs`` to every epoch's logs: proof it ran inside the trial."""

    def __init__(self):
        super().__init__()
        self.epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1
        if logs is not None:
            logs["user_callback_epochs"] = float(self.epochs)


class Recording(kt.HyperModel):
    def build(self, hp):
        model = keras.Sequential([layers.Flatten(), layers.Dense(hp.Choice("units", [16, 32]),
                                                                 activation="relu"),
                                  layers.Dense(10, activation="softmax")])
        model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 3e-3, 3e-2,
                                                               sampling="log")),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, hp, model, x, y, callbacks=None, my_flag=None, **kwargs):
        weights = kwargs.get("sample_weight")
        if my_flag is not True or kwargs.get("class_weight") != {i: 1.0 for i in range(10)} \
                or weights is None or len(weights) != len(x) or kwargs.get("shuffle") is not False:
            raise AssertionError(f"search's arguments did not reach fit: {sorted(kwargs)}")
        names = {type(c).__name__ for c in callbacks}
        if not {"Seen", "ReduceLROnPlateau"} <= names:
            raise AssertionError(f"the user's callbacks did not reach fit: {names}")
        kwargs.pop("class_weight")  # Keras takes class_weight or sample_weight, not both
        return model.fit(x, y, callbacks=callbacks, **kwargs)
