"""Builders for the trial-result tests (imported by trial processes by name): a small MLP that
can forget what it learnt, die once mid-trial, or run out of memory at a given epoch."""

from __future__ import annotations


def fault_mlp(info, units: int = 16, forget_on: tuple = (), crash_on: tuple = (),
              crash_in_epoch: int = 3, marker: str = "", oom_on: tuple = (),
              oom_in_epoch: int = 3):
    """small_mlp, and by ``units``: ``forget_on`` zeroes the weights during every epoch
    after the first (so epoch 1 stays the best, deterministically); ``crash_on`` kills the
    trial's process (as a lost node would) at the start of epoch ``crash_in_epoch``, once
    (``marker_<units>`` records it); ``oom_on`` raises MemoryError at the start of epoch
    ``oom_in_epoch``."""
    import os
    import signal
    import time

    import keras

    from tests.builders import _with_callback, small_mlp

    model = small_mlp(info, units=units)
    units = int(units)
    done = f"{marker}_{units}"

    class Faults(keras.callbacks.Callback):
        forgetting = False

        def _forget(self):
            for var in self.model.trainable_variables:
                var.assign(keras.ops.zeros_like(var))

        def on_epoch_begin(self, epoch, logs=None):
            self.forgetting = units in forget_on and epoch >= 1
            if self.forgetting:
                self._forget()
            if units in crash_on and epoch + 1 >= crash_in_epoch and not os.path.exists(done):
                open(done, "w").close()
                time.sleep(1.0)  # let the driver receive the last epoch's result
                os.kill(os.getpid(), signal.SIGKILL)
            if units in oom_on and epoch + 1 >= oom_in_epoch:
                raise MemoryError(f"could not allocate the batch for units={units}")

        def on_train_batch_end(self, batch, logs=None):
            # Zeroed after every step (the last one included), so the epoch's validation sees
            # a model that predicts one class: no later epoch can beat epoch 1, whatever the
            # order of the batches.
            if self.forgetting:
                self._forget()

    return _with_callback(model, Faults())
