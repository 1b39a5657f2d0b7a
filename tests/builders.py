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


def _with_callback(model, callback):
    """``model``, whose ``fit`` (as tunefleet calls it) also runs ``callback``, after
    tunefleet's own callbacks (its report and checkpoint come first)."""
    fit = model.fit

    def fit_with_callback(*args, callbacks=None, **kwargs):
        return fit(*args, callbacks=[*(callbacks or []), callback], **kwargs)

    model.fit = fit_with_callback
    return model


def flaky_mlp(info, units: int = 16, oom_on_units: int = -1, crash_on_units: int = -1,
              crash_after_epoch: int = 2, marker: str = ""):
    """Like small_mlp, but building raises MemoryError for ``oom_on_units``, and for
    ``crash_on_units`` the trial's process dies (SIGKILL, as on a lost node) at the end of epoch
    ``crash_after_epoch``, once: ``marker`` records that it happened."""
    import os
    import signal
    import time

    import keras

    if int(units) == int(oom_on_units):
        raise MemoryError(f"could not allocate the layers for units={units}")
    model = small_mlp(info, units=units)
    if int(units) != int(crash_on_units) or os.path.exists(marker):
        return model

    class CrashOnce(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 >= crash_after_epoch and not os.path.exists(marker):
                open(marker, "w").close()
                time.sleep(1.0)  # let the driver receive the epoch's result
                os.kill(os.getpid(), signal.SIGKILL)

    return _with_callback(model, CrashOnce())


def paced_mlp(info, units: int = 16, epoch_s: float = 0.75):
    """Like small_mlp, with every epoch taking at least ``epoch_s`` seconds: a test that acts
    mid-trial (kills a node) gets a trial that is still running when it acts."""
    import time

    import keras

    class Pace(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            time.sleep(max(0.0, epoch_s - (time.monotonic() - self.started)))

    return _with_callback(small_mlp(info, units=units), Pace())
