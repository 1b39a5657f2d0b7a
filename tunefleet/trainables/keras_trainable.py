"""The Ray Tune function trainable: build the Keras model from the trial's configuration,
train epoch by epoch, report every metric, checkpoint, and resume from a checkpoint."""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from ..cluster.devices import configure_trial_devices
from ..data import TrainingData
from ..spec import TRIAL_SEED_KEY, Experiment
from .builders import resolve_builder
from .checkpoint import load_state, restore_callbacks, save_state
from .compile import compile_model, make_callbacks
from .settings import resolve_settings
from .status import STOP_REASONS

__all__ = ["train_trial", "derive_seed", "STOP_REASONS"]



def derive_seed(master: int, config: dict[str, Any]) -> int:
    """A trial's seed from the master seed and its configuration (stable across runs).

    Grid and random search sample ``trial_seed`` with the configuration and it is used as is;
    HyperOpt's configurations are derived here.
    """
    if TRIAL_SEED_KEY in config:
        return int(config[TRIAL_SEED_KEY])
    text = json.dumps({k: repr(v) for k, v in sorted(config.items())})
    return zlib.crc32(f"{master}:{text}".encode()) & 0x7FFFFFFF


def _reporter(experiment: Experiment, epochs: int, extra_callbacks: list[Any]):
    """A Keras callback that reports each epoch to Ray Tune, with a checkpoint."""
    import keras
    from ray import tune

    every = experiment.output.checkpoint_every

    class ReportToTune(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            done = epoch + 1
            metrics = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
            metrics["epoch"] = done
            metrics["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            metrics["epoch_time_s"] = time.perf_counter() - self._started
            reason = ""
            if not math.isfinite(metrics.get("loss", 0.0)):
                reason = STOP_REASONS[2]
                self.model.stop_training = True
            elif self.model.stop_training:  # set by EarlyStopping, which runs before us
                reason = STOP_REASONS[1]
            elif done >= epochs:
                reason = STOP_REASONS[0]
            metrics["stop_reason"] = reason
            if reason == STOP_REASONS[2] or (done % every and not reason):
                tune.report(metrics)
                return
            directory = Path(tempfile.mkdtemp(prefix="tunefleet-ckpt-"))
            try:
                save_state(directory, self.model, done, extra_callbacks)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(directory)))
            finally:
                shutil.rmtree(directory, ignore_errors=True)

    return ReportToTune()


class _RestoreCallbacks:
    """Sets saved callback progress after Keras' on_train_begin has reset it."""

    def __new__(cls, callbacks: list[Any], states: list[dict[str, Any]]):
        import keras

        class Restore(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                restore_callbacks(callbacks, states)

        return Restore()


def train_trial(config: dict[str, Any], data: TrainingData, experiment: Experiment) -> None:
    """Ray Tune function trainable for one trial of ``experiment``.

    Wrapped with ``tune.with_parameters`` so ``data`` travels once through the object store.
    """
    from ray import tune

    configure_trial_devices(experiment.resources.cpu, experiment.resources.gpu)
    # Ray logs every checkpoint it stores; with one per epoch that drowns the progress table.
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    import keras

    keras.backend.clear_session()  # a reused trial process starts each trial clean
    keras.utils.set_random_seed(derive_seed(experiment.search.seed, config))
    settings = resolve_settings(
        experiment, {k: v for k, v in config.items() if k != TRIAL_SEED_KEY})
    info = data.info
    model = resolve_builder(experiment.model.builder)(info, **settings.model_params)
    compile_model(model, settings.train, info.task)
    stateful = make_callbacks(settings.train)  # their progress goes into every checkpoint
    restore: list[Any] = []

    start_epoch = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            meta = load_state(Path(directory), model)
        start_epoch = int(meta["epoch"])
        restore.append(_RestoreCallbacks(stateful, meta["callbacks"]))
    # The scheduler ends every trial at its budget (max_t); training to it is completing.
    epochs = min(settings.epochs, experiment.epoch_budget)
    if start_epoch >= epochs:
        return

    model.fit(
        data.x_train, data.y_train,
        validation_data=(data.x_val, data.y_val),
        epochs=epochs, initial_epoch=start_epoch,
        batch_size=settings.batch_size, shuffle=settings.train.shuffle,
        callbacks=[*stateful, *restore, _reporter(experiment, epochs, stateful)],
        verbose=0,
    )
