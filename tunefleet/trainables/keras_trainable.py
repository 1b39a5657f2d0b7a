"""The Ray Tune function trainable: build the Keras model(s) from the trial's configuration,
train epoch by epoch, report every metric, checkpoint, and resume from a checkpoint.

A model comes from a builder (compiled here from the ``train`` section) or from a KerasTuner
hypermodel (which compiles its own). With ``search.executions_per_trial: N`` the trial trains
N models of the same configuration with derived seeds, one epoch at a time each, and reports
their aggregate after every epoch.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import shutil
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..cluster.devices import assigned_gpus, configure_trial_devices, make_strategy
from ..data import DataInfo, TrainingData
from ..spec import TRIAL_SEED_KEY, Experiment
from .builders import resolve_builder
from .checkpoint import (callback_states, execution_dir, load_state, restore_callbacks,
                         save_state)
from .compile import compile_model, make_callbacks
from .executions import aggregate_logs, execution_seed
from .settings import TrialSettings, resolve_settings
from .status import STOP_REASONS
from .watchdog import FailureRecord, Watchdog, is_out_of_memory

__all__ = ["train_trial", "derive_seed", "build_trial_model", "TrialModel", "STOP_REASONS"]

ACTIVE_KEY = "active_hyperparameters"


def derive_seed(master: int, config: dict[str, Any]) -> int:
    """A trial's seed from the master seed and its configuration (stable across runs).

    Grid and random search sample ``trial_seed`` with the configuration and it is used as is;
    HyperOpt's configurations are derived here.
    """
    if TRIAL_SEED_KEY in config:
        return int(config[TRIAL_SEED_KEY])
    text = json.dumps({k: repr(v) for k, v in sorted(config.items())})
    return zlib.crc32(f"{master}:{text}".encode()) & 0x7FFFFFFF


@dataclass
class TrialModel:
    """A compiled model, how to fit it, and (for hypermodels) the hyperparameters it used."""

    model: Any
    fit: Callable[..., Any]
    settings: TrialSettings
    hp: Any = None
    replicas: int = 1  # devices a distributed trial trains on (tf.distribute)

    @property
    def active(self) -> Optional[list[str]]:
        """Names of the hypermodel's hyperparameters this model used (None for builders)."""
        if self.hp is None:
            return None
        from .hypermodel import active_values

        return sorted(active_values(self.hp))


def build_trial_model(experiment: Experiment, info: DataInfo, config: dict[str, Any],
                      hypermodel: Any = None, seed: Optional[int] = None,
                      strategy: Any = None) -> TrialModel:
    """The model for ``config`` (seeded with ``seed``, by default the trial's own), built and
    compiled inside ``strategy``'s scope for a distributed trial."""
    import keras

    keras.utils.set_random_seed(derive_seed(experiment.search.seed, config) if seed is None
                                else seed)
    params = {k: v for k, v in config.items() if k != TRIAL_SEED_KEY}
    replicas = int(strategy.num_replicas_in_sync) if strategy is not None else 1
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        if hypermodel is not None:
            from .hypermodel import build_hypermodel

            model, hp = build_hypermodel(hypermodel, params)
            return TrialModel(model, functools.partial(hypermodel.fit, hp, model),
                              resolve_settings(experiment, {}), hp, replicas)
        settings = resolve_settings(experiment, params)
        if strategy is not None and settings.train.steps_per_execution > 1:
            # Keras' multi-step loop fails under MirroredStrategy (a placeholder inside the
            # distributed while loop): one step per call there.
            settings = TrialSettings(settings.train.model_copy(
                update={"steps_per_execution": 1}), settings.model_params)
        model = resolve_builder(experiment.model.builder)(info, **settings.model_params)
        compile_model(model, settings.train, info.task)
    return TrialModel(model, model.fit, settings, replicas=replicas)


def fit_arguments(experiment: Experiment, settings: TrialSettings, hypermodel: Any,
                  replicas: int = 1) -> dict:
    """Keyword arguments every ``fit`` call shares. A hypermodel gets ``batch_size`` only when
    the spec sets it, as KerasTuner passes only what ``search()`` was given (its ``fit`` may
    choose the batch size itself). A distributed trial's batch is per replica: Keras is given
    the global batch, batch_size × replicas."""
    args: dict[str, Any] = {"shuffle": settings.train.shuffle, "verbose": 0}
    if hypermodel is None or "batch_size" in experiment.train.model_fields_set:
        args["batch_size"] = settings.batch_size * replicas
    return args


class _Reporter:
    """Reports each epoch (the aggregate over executions) to Ray Tune, with a checkpoint."""

    def __init__(self, experiment: Experiment, epochs: int, active: Optional[list[str]],
                 watchdog: Optional[Watchdog] = None):
        self.experiment, self.epochs, self.active = experiment, epochs, active
        self.watchdog = watchdog
        self.node_id = _node_id()  # a trial stays on its node until a retry moves it

    def report(self, done: int, logs: list[dict[str, Any]], trials: list[TrialModel],
               callbacks: list[list[Any]], all_stopped: bool, epoch_time: float) -> str:
        """Report epoch ``done``; return the stop reason ("" to go on)."""
        import keras
        from ray import tune

        exp = self.experiment
        if self.watchdog is not None:
            self.watchdog.epoch = done
        plain = [{k: float(v) for k, v in entry.items() if k != "learning_rate"} for entry in logs]
        metrics: dict[str, Any] = aggregate_logs(plain, exp.search.aggregate,
                                                 exp.objective.metric, exp.objective.mode)
        metrics["epoch"] = done
        metrics["lr"] = float(keras.ops.convert_to_numpy(trials[0].model.optimizer.learning_rate))
        metrics["epoch_time_s"] = epoch_time
        if self.active is not None:
            metrics[ACTIVE_KEY] = ",".join(self.active)
        if trials[0].replicas > 1:
            metrics["replicas"] = trials[0].replicas
            metrics["global_batch_size"] = trials[0].settings.batch_size * trials[0].replicas
        if exp.resources.gpu > 0:
            metrics["gpu_ids"] = assigned_gpus()
        metrics["node_id"] = self.node_id
        reason = ""
        if not math.isfinite(metrics.get("loss", 0.0)):
            reason = STOP_REASONS[2]
        elif all_stopped:  # EarlyStopping ended every execution
            reason = STOP_REASONS[1]
        elif done >= self.epochs:
            reason = STOP_REASONS[0]
        metrics["stop_reason"] = reason
        if reason == STOP_REASONS[2] or (done % exp.output.checkpoint_every and not reason):
            tune.report(metrics)
            return reason
        directory = Path(tempfile.mkdtemp(prefix="tunefleet-ckpt-"))
        try:
            n = len(trials)
            for k, (trial, cbs) in enumerate(zip(trials, callbacks)):
                target = execution_dir(directory, k, n)
                target.mkdir(exist_ok=True)
                save_state(target, trial.model, done, cbs)
            if n > 1:
                (directory / "meta.json").write_text(json.dumps({"epoch": done, "executions": n}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(directory)))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return reason


def _node_id() -> str:
    """The Ray node this trial runs on (where it lands, and where it moved after a retry)."""
    import ray

    try:
        return ray.get_runtime_context().get_node_id()[:12]
    except Exception:  # outside Ray (a driver-side check): no node
        return ""


def _report_callback(reporter: _Reporter, trial: TrialModel, stateful: list[Any]):
    """One execution: report from inside ``fit`` at each epoch's end."""
    import keras

    class ReportToTune(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            # EarlyStopping runs before us and sets stop_training when it gives up.
            reason = reporter.report(epoch + 1, [logs or {}], [trial], [stateful],
                                     self.model.stop_training,
                                     time.perf_counter() - self._started)
            if reason:
                self.model.stop_training = True

    return ReportToTune()


def _callback(**hooks: Callable[..., None]):
    import keras

    cb = keras.callbacks.Callback()
    for name, fn in hooks.items():
        setattr(cb, name, fn)
    return cb


def train_trial(config: dict[str, Any], data: TrainingData, experiment: Experiment,
                hypermodel: Any = None) -> None:
    """Ray Tune function trainable for one trial of ``experiment``.

    Wrapped with ``tune.with_parameters`` so ``data`` (and a hypermodel) travel once through
    the object store. Exceptions propagate (Ray retries them, ``failure.max_retries``); running
    out of memory or past ``train.trial_timeout_s`` is recorded as a failure instead.
    """
    from ray import tune

    record = FailureRecord(experiment.storage, tune.get_context().get_trial_id())
    earlier = record.read()
    if earlier is not None:  # an earlier attempt timed out: retrying would repeat it
        _report_failure(experiment, earlier["kind"], earlier.get("epoch"))
        return
    watchdog = Watchdog(experiment.train.trial_timeout_s, record).start()
    try:
        _train(config, data, experiment, hypermodel, watchdog)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        watchdog.cancel()
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        record.write("out_of_memory", f"ran out of memory: {type(exc).__name__}: {first}",
                     watchdog.epoch)
        _report_failure(experiment, "out_of_memory", watchdog.epoch)
    finally:
        watchdog.cancel()


def _report_failure(experiment: Experiment, kind: str, epoch: Optional[int]) -> None:
    """End a failed trial with a result the searcher and scheduler can read: the objective is
    NaN (unknown), at the last epoch the trial finished."""
    from ray import tune

    tune.report({"epoch": int(epoch or 0), experiment.objective.metric: math.nan,
                 "stop_reason": kind})


def _train(config: dict[str, Any], data: TrainingData, experiment: Experiment,
           hypermodel: Any, watchdog: Watchdog) -> None:
    from ray import tune

    # A reused trial process waits this long for the previous trial's thread to end. Ray's
    # default (2 s) is shorter than one epoch on real data, and a stopped trial whose thread
    # was still in its epoch then made the next trial fail ("reset_config() ... return True").
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", "120")
    distribute = experiment.train.distribute
    configure_trial_devices(experiment.resources.cpu, experiment.resources.gpu,
                            experiment.resources.gpu_memory,
                            distribute.cpu_devices if distribute is not None else None)
    # Ray logs every checkpoint it stores; with one per epoch that drowns the progress table.
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    import keras

    keras.backend.clear_session()  # a reused trial process starts each trial clean
    n = experiment.search.executions_per_trial
    trial_seed = derive_seed(experiment.search.seed, config)
    strategy = make_strategy(experiment.train.distribute)
    trials = [build_trial_model(experiment, data.info, config, hypermodel,
                                execution_seed(trial_seed, k), strategy) for k in range(n)]
    settings = trials[0].settings
    stateful = [make_callbacks(settings.train) for _ in trials]  # saved with each checkpoint
    states: list[Optional[list[dict]]] = [None] * n

    start_epoch = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            for k, trial in enumerate(trials):
                meta = load_state(execution_dir(Path(directory), k, n), trial.model)
                states[k] = meta["callbacks"]
                start_epoch = int(meta["epoch"])
    # The scheduler ends every trial at its budget (max_t); training to it is completing.
    epochs = min(settings.epochs, experiment.epoch_budget)
    if start_epoch >= epochs:
        return
    reporter = _Reporter(experiment, epochs, trials[0].active, watchdog)
    shared = dict(x=data.x_train, y=data.y_train, validation_data=(data.x_val, data.y_val),
                  **fit_arguments(experiment, settings, hypermodel, trials[0].replicas))

    def restore(k: int) -> list[Any]:
        saved = states[k]
        if saved is None:
            return []
        # Set saved progress after Keras' on_train_begin has reset it.
        return [_callback(on_train_begin=lambda logs=None: restore_callbacks(stateful[k], saved))]

    if n == 1:
        trials[0].fit(epochs=epochs, initial_epoch=start_epoch, **shared,
                      callbacks=[*stateful[0], *restore(0),
                                 _report_callback(reporter, trials[0], stateful[0])])
        return
    stopped = [False] * n
    last: list[dict[str, Any]] = [{} for _ in range(n)]
    for epoch in range(start_epoch, epochs):
        started = time.perf_counter()
        for k, trial in enumerate(trials):
            if stopped[k]:
                continue  # an execution EarlyStopping ended keeps its last values
            logs: dict[str, Any] = {}
            capture = _callback(on_epoch_end=lambda e, l=None, out=logs: out.update(l or {}))
            trial.fit(epochs=epoch + 1, initial_epoch=epoch, **shared,
                      callbacks=[*stateful[k], *restore(k), capture])
            states[k] = callback_states(stateful[k])
            last[k] = logs
            stopped[k] = bool(trial.model.stop_training)
        if reporter.report(epoch + 1, last, trials, stateful, all(stopped),
                           time.perf_counter() - started):
            return
