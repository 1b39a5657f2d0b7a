"""User-style `module:function` builders for tests (imported by trial processes by name)."""

from __future__ import annotations


def small_mlp(info, units: int = 16, explode: bool = False, fail_on_units: int = -1):
    """A one-layer MLP; ``explode`` makes the loss NaN, ``fail_on_units`` raises for that value."""
    import keras

    if int(units) == int(fail_on_units):
        raise RuntimeError(f"deliberate failure for units={units}")
    inputs = keras.Input(shape=info.input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(int(units), activation="relu")(x)
    if explode:
        x = keras.layers.Lambda(lambda t: t * float("nan"))(x)
    activation = "softmax" if info.task == "multiclass" else "sigmoid"
    return keras.Model(inputs, keras.layers.Dense(info.num_outputs, activation=activation)(x))


def accepts_anything(info, **hyperparameters):
    """A builder taking **kwargs: any search-space name is accepted."""
    return small_mlp(info, units=int(hyperparameters.get("units", 16)))


def troubled_mlp(info, units: int = 16, hang_on_units: int = -1, oom_on_units: int = -1):
    """Like small_mlp, but the trial hangs (sleeps for an hour) for ``hang_on_units``, and
    building raises MemoryError (as an allocation failure would) for ``oom_on_units``."""
    import time

    if int(units) == int(hang_on_units):
        time.sleep(3600)
    if int(units) == int(oom_on_units):
        raise MemoryError(f"could not allocate the layers for units={units}")
    return small_mlp(info, units=units)
