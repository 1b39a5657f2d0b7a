"""KerasTuner hypermodels written as users write them (imported by trial processes by name)."""

from __future__ import annotations

import keras
import keras_tuner as kt


def layered_mlp(hp):
    """Layers in a loop (units_i exists only for some num_layers), a flag that adds a dropout
    per layer, an optimizer with a conditional_scope'd momentum, a log-scale learning rate."""
    return _layers_on(hp, keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()]))


def _layers_on(hp, model):
    """layered_mlp's layers, optimizer and compile, added to ``model``."""
    for i in range(hp.Int("num_layers", 1, 3)):
        model.add(keras.layers.Dense(hp.Int(f"units_{i}", 8, 32, step=8), activation="relu"))
        if hp.Boolean("use_dropout"):
            model.add(keras.layers.Dropout(hp.Float(f"dropout_{i}", 0.0, 0.4, step=0.2)))
    model.add(keras.layers.Dense(10, activation="softmax"))
    name = hp.Choice("optimizer", ["adam", "sgd"])
    lr = hp.Float("lr", 1e-3, 3e-2, sampling="log")
    if name == "sgd":
        with hp.conditional_scope("optimizer", ["sgd"]):
            optimizer = keras.optimizers.SGD(lr, momentum=hp.Float("momentum", 0.0, 0.9))
    else:
        optimizer = keras.optimizers.Adam(lr)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def grid_mlp(hp):
    """A small fully discrete space: 2 layer counts, units per layer from {8, 16}."""
    return _grid_layers_on(hp, keras.Sequential([keras.Input((8, 8, 1)),
                                                  keras.layers.Flatten()]))


def _grid_layers_on(hp, model):
    """grid_mlp's layers, optimizer and compile, added to ``model``."""
    for i in range(hp.Int("num_layers", 1, 2)):
        model.add(keras.layers.Dense(hp.Choice(f"units_{i}", [8, 16]), activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(optimizer=keras.optimizers.Adam(hp.Fixed("lr", 0.01)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class BatchSizeHyperModel(kt.HyperModel):
    """Tunes the batch size in fit(), as KerasTuner's documentation shows."""

    def build(self, hp):
        model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(hp.Int("units", 8, 16, step=8),
                                                     activation="relu"),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    def fit(self, hp, model, *args, **kwargs):
        return model.fit(*args, batch_size=hp.Choice("batch_size", [32, 64]), **kwargs)


def continuous_parent(hp):
    """Which layers exist depends on a continuous Float: not searchable."""
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
    if hp.Float("width", 0.0, 1.0) > 0.5:
        model.add(keras.layers.Dense(hp.Int("units", 8, 16, step=8)))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def uncompiled(hp):
    """Forgets to compile."""
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(hp.Int("units", 8, 16, step=8)),
                             keras.layers.Dense(10, activation="softmax")])


def one_float(hp):
    """A single continuous Float: the smallest space grid search cannot enumerate."""
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-2)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def gated_hidden_layer(hp):
    """A hidden layer only when ``hidden`` is on, its width an Int and its activation's slope a
    Choice of ints, both used only then; without it the model barely learns (lr 1e-5), so the
    best trial is always one whose conditional Int other trials did not use."""
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
    learning_rate = 1e-5
    if hp.Boolean("hidden"):
        with hp.conditional_scope("hidden", [True]):
            model.add(keras.layers.Dense(hp.Int("units", 16, 32, step=16), activation="relu"))
            model.add(keras.layers.Dense(hp.Choice("width", [24, 32]), activation="relu"))
        learning_rate = 0.02
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def metric_object_mlp(hp):
    """Compiled with a metric object, as KerasTuner's guides show: Keras reports it as
    ``sparse_categorical_accuracy`` (``val_sparse_categorical_accuracy`` on validation data)."""
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(hp.Int("units", 8, 16, step=8), activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(hp.Choice("lr", [0.01, 0.02])),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy()])
    return model


# -- HyperModel.fit written the ways KerasTuner's guides write it (tests/trainables/test_hypermodel_fit.py)


def _small_mlp(units=16, compiled=True):
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(10, activation=None if not compiled else "softmax")])
    if compiled:
        model.compile(optimizer=keras.optimizers.Adam(0.01),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class FitXY(kt.HyperModel):
    """``fit(self, hp, model, x, y, **kwargs)`` with a preprocessing switch and ``shuffle``
    declared only in fit (KerasTuner's "Tune model training" guide)."""

    def build(self, hp):
        return _small_mlp()

    def fit(self, hp, model, x, y, **kwargs):
        if hp.Boolean("normalize"):
            x = (x - x.mean()) / (x.std() + 1e-6)
        return model.fit(x, y, shuffle=hp.Boolean("shuffle"), **kwargs)


class FitNamedValidation(kt.HyperModel):
    """``validation_data=None, callbacks=None`` as named parameters; the batch size in fit; a
    constructor argument (so only an instance of it can be tuned)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, hp):
        return _small_mlp(self.units)

    def fit(self, hp, model, x, y, validation_data=None, callbacks=None, **kwargs):
        return model.fit(x, y, validation_data=validation_data, callbacks=callbacks,
                         batch_size=hp.Choice("batch_size", [16, 64]), **kwargs)


fit_instance = FitNamedValidation(units=12)


class CustomLoop(kt.HyperModel):
    """KerasTuner's custom-training-loop guide: build returns an uncompiled model, fit makes its
    own optimizer and trains by hand. ``contract``, declared in fit, picks what it
    hands back: the objective as a float, a dict of metrics, or only
    ``callback.on_epoch_end(epoch, logs)`` calls (never set_model or on_epoch_begin). Three more
    hand a value back the way KerasTuner's guides do besides calling callbacks: ``fit_float``
    (the getting-started HyperRegressor: ``model.fit(x, y, **kwargs)``, whose logs lack the
    objective, then ``return float(...)``), ``fit_dict`` (the same returning a dict) and
    ``hard_coded`` (a loop that runs 3 epochs whatever ``epochs`` says, logs its training loss
    as the objective each epoch and returns its best validation loss: the trial's score)."""

    contracts = ("float", "dict", "callbacks", "fit_float", "fit_dict", "hard_coded")

    def build(self, hp):
        return _small_mlp(16, compiled=False)

    def fit(self, hp, model, x, y, validation_data, callbacks=None, **kwargs):
        import tensorflow as tf

        contract = hp.Choice("contract", list(self.contracts))
        optimizer = keras.optimizers.Adam(0.01)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        x_val, y_val = validation_data
        if contract in ("fit_float", "fit_dict"):
            model.compile(optimizer=optimizer, loss=loss_fn)
            model.fit(x, y, callbacks=callbacks, **kwargs)
            val = float(loss_fn(y_val, model(x_val)))
            return val if contract == "fit_float" else {"my_metric": val}
        best = float("inf")
        epochs = range(3) if contract == "hard_coded" else range(kwargs.get("initial_epoch", 0),
                                                                  kwargs.get("epochs", 2))
        for epoch in epochs:
            for start in range(0, len(x), 256):
                with tf.GradientTape() as tape:
                    loss = loss_fn(y[start:start + 256], model(x[start:start + 256], training=True))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            val = float(loss_fn(y_val, model(x_val)))
            best = min(best, val)
            if contract in ("callbacks", "hard_coded"):
                logs = ({"my_metric": val} if contract == "callbacks" else
                        {"my_metric": float(loss) + 1.0, "best_val": min(best, val)})
                for callback in callbacks or []:
                    callback.on_epoch_end(epoch, logs=logs)
        if contract in ("float", "hard_coded"):
            return best
        if contract == "dict":
            return {"my_metric": best, "final_val_loss": val}
        return None


def broken_build(hp):
    """Fails in build, after declaring a hyperparameter."""
    hp.Int("units", 8, 16, step=8)
    raise ValueError("no model for this configuration")


class FitRaises(kt.HyperModel):
    """Fails in fit, after declaring a hyperparameter there."""

    def build(self, hp):
        return _small_mlp()

    def fit(self, hp, model, x, y, **kwargs):
        scale = hp.Choice("scale", [2, 3])
        return model.fit(x.reshape(-1, 7 * scale), y, **kwargs)


class FitWithoutHp(kt.HyperModel):
    """Forgets ``hp`` in fit's signature."""

    def build(self, hp):
        return _small_mlp()

    def fit(self, model, x, y):
        return model.fit(x, y)


class FitReturnsNothing(kt.HyperModel):
    """A custom loop that neither returns its metrics nor calls its callbacks."""

    def build(self, hp):
        return _small_mlp()

    def fit(self, hp, model, x, y, **kwargs):
        model.train_on_batch(x[:8], y[:8])


class TooLarge(kt.HyperModel):
    """KerasTuner's "handle failed trials" guide: build raises FailedTrialError when the model
    is too large (units 64, the default). fit raises FatalError for units 16, but only on the
    full data (as a trial trains), not on the few rows discovery and the driver's check use."""

    def build(self, hp):
        model = _small_mlp(hp.Choice("units", [64, 8, 16]))
        if model.count_params() > 2000:
            raise kt.errors.FailedTrialError(
                f"Model too large! It contains {model.count_params()} params.")
        return model

    def fit(self, hp, model, x, y, **kwargs):
        if hp.get("units") == 16 and len(x) > 64:
            raise kt.errors.FatalError("units=16 needs a licence this machine lacks")
        return model.fit(x, y, **kwargs)


class OneCallCases(CustomLoop):
    """One study's worth of KerasTuner's one-call ``fit`` contract: CustomLoop's ways of handing
    a result back, then ``too_large`` first (build raises FailedTrialError, as TooLarge does for
    units 64), and last ``bystander`` (on the full data it waits, never reporting, until the
    study stops it) and ``fatal`` (fit raises FatalError on the full data, as TooLarge does for
    units 16), which stops the study while the bystander still runs."""

    contracts = ("too_large", *CustomLoop.contracts, "bystander", "fatal")

    def build(self, hp):
        if hp.Choice("contract", list(self.contracts)) == "too_large":
            model = _small_mlp(64)
            raise kt.errors.FailedTrialError(
                f"Model too large! It contains {model.count_params()} params.")
        return super().build(hp)

    def fit(self, hp, model, x, y, validation_data, callbacks=None, **kwargs):
        contract = hp.get("contract")
        if contract == "fatal" and len(x) > 64:  # a trial, not discovery or the driver's check
            raise kt.errors.FatalError("contract=fatal needs a licence this machine lacks")
        if contract == "bystander" and len(x) > 64:
            import time

            deadline = time.monotonic() + 180  # the FatalError beside it stops it long before
            while time.monotonic() < deadline:
                time.sleep(0.2)
        return super().fit(hp, model, x, y, validation_data, callbacks, **kwargs)


def always_too_large(hp):
    """Every configuration is marked failed."""
    hp.Int("units", 8, 16, step=8)
    raise kt.errors.FailedTrialError("Model too large!")


def lr_choice(hp):
    """A good learning rate, then one so small the model barely learns (ASHA cuts it)."""
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(hp.Choice("lr", [0.02, 1e-7])),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# -- Written as KerasTuner's getting-started guide writes them: a Sequential without an Input,
# which Keras builds (weights and all) at its first batch. Discovering a space builds the model
# dozens of times; without an Input no build creates weights, while every add() to a Sequential
# that starts with one rebuilds the whole model: seconds instead of half a minute.


def layered_mlp_guide(hp):
    """layered_mlp's space (the same hyperparameters, ranges and conditions), written the
    guide's way: layers in a loop (units_i exists only for some num_layers), a flag that adds
    a dropout per layer, an optimizer with a conditional_scope'd momentum, a log-scale
    learning rate."""
    return _layers_on(hp, keras.Sequential([keras.layers.Flatten()]))


def grid_mlp_guide(hp):
    """grid_mlp's fully discrete space (2 layer counts, units per layer from {8, 16}, a Fixed
    learning rate), written the guide's way."""
    return _grid_layers_on(hp, keras.Sequential([keras.layers.Flatten()]))


def gated_hidden_layer_guide(hp):
    """gated_hidden_layer written the guide's way, its grid only ``hidden`` off or on (2 trials):
    hidden layers only when ``hidden`` is on, the first one's width an Int and the second one's
    a Choice of ints (one value each here), both used only then; without them the model barely
    learns (lr 1e-5), so the best trial is always one whose conditional Int other trials did
    not use."""
    model = keras.Sequential([keras.layers.Flatten()])
    learning_rate = 1e-5
    if hp.Boolean("hidden"):
        with hp.conditional_scope("hidden", [True]):
            model.add(keras.layers.Dense(hp.Int("units", 32, 32), activation="relu"))
            model.add(keras.layers.Dense(hp.Choice("width", [24]), activation="relu"))
        learning_rate = 0.02
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
