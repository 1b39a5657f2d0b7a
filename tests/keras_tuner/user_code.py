"""KerasTuner user code written as KerasTuner's guides write it (getting started, "Tune model
training", "custom training loop"), on 8x8 digits with tiny layers. The parity tests run it
under ``keras_tuner`` and under ``tunefleet.keras_tuner``: nothing here knows which."""

from __future__ import annotations

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf
from keras import layers


def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_val, y_val): 8x8x1 images in [0, 1], integer labels. 1,152 and 384
    rows: whole batches of every batch size below (and of 32 after validation_split=0.25), so
    no short last batch makes a tf.function trace again."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype("float32")[..., None]
    y = data.target.astype("int64")
    return x[:1152], y[:1152], x[1152:1536], y[1152:1536]


def build_model(hp):
    """KerasTuner's getting-started model: a layer loop, a Boolean dropout, a log-scale rate;
    one-hot labels with categorical cross-entropy."""
    model = keras.Sequential()
    model.add(layers.Flatten())
    for i in range(hp.Int("num_layers", 1, 3)):
        model.add(layers.Dense(units=hp.Int(f"units_{i}", min_value=8, max_value=32, step=8),
                               activation=hp.Choice("activation", ["relu", "tanh"])))
    if hp.Boolean("dropout"):
        model.add(layers.Dropout(rate=0.25))
    model.add(layers.Dense(10, activation="softmax"))
    learning_rate = hp.Float("lr", min_value=1e-3, max_value=3e-2, sampling="log")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


class MyHyperModel(kt.HyperModel):
    """"Tune model training": fit tunes a preprocessing switch, shuffle and the batch size."""

    def build(self, hp):
        model = keras.Sequential([
            layers.Flatten(),
            layers.Dense(hp.Int("units", 16, 64, step=16), activation="relu"),
            layers.Dense(10, activation="softmax"),
        ])
        model.compile(optimizer=keras.optimizers.Adam(0.01),
                      loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    def fit(self, hp, model, x, y, **kwargs):
        if hp.Boolean("normalize"):
            x = layers.Normalization()(x)
        return model.fit(x, y, shuffle=hp.Boolean("shuffle"),
                         batch_size=hp.Choice("batch_size", [16, 32]), **kwargs)


class CustomLoop(kt.HyperModel):
    """"Custom training loop": build returns an uncompiled model, fit trains with a
    GradientTape, reports through the callbacks' on_epoch_end and returns a dict. Two values
    each for units and batch_size (tunefleet's discovery runs this fit once per value) and a
    learning rate high enough that any one trial's two epochs land far above chance."""

    def build(self, hp):
        inputs = keras.Input(shape=(8, 8, 1))
        x = layers.Flatten()(inputs)
        x = layers.Dense(units=hp.Choice("units", [16, 32]), activation="relu")(x)
        outputs = layers.Dense(10)(x)
        return keras.Model(inputs=inputs, outputs=outputs)

    def fit(self, hp, model, x, y, validation_data, callbacks=None, **kwargs):
        batch_size = hp.Int("batch_size", 32, 64, step=32, default=64)
        train_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
        validation_data = tf.data.Dataset.from_tensor_slices(validation_data).batch(batch_size)
        optimizer = keras.optimizers.Adam(hp.Float("learning_rate", 1e-2, 3e-2, sampling="log"))
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        epoch_loss_metric = keras.metrics.Mean()

        @tf.function
        def run_train_step(images, labels):
            with tf.GradientTape() as tape:
                logits = model(images)
                loss = loss_fn(labels, logits)
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))  # noqa: B905

        @tf.function
        def run_val_step(images, labels):
            logits = model(images)
            epoch_loss_metric.update_state(loss_fn(labels, logits))

        for callback in callbacks:
            callback.set_model(model)
        best_epoch_loss = float("inf")
        for epoch in range(2):
            for images, labels in train_ds:
                run_train_step(images, labels)
            for images, labels in validation_data:
                run_val_step(images, labels)
            epoch_loss = float(epoch_loss_metric.result().numpy())
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs={"my_metric": epoch_loss})
            epoch_loss_metric.reset_state()
            best_epoch_loss = min(best_epoch_loss, epoch_loss)
        return {"my_metric": best_epoch_loss}
