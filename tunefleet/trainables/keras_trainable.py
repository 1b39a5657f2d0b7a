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
import os
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..cluster.devices import (BackendMismatch, configure_trial_devices, make_strategy,
                               select_backend)
from ..cluster.connection import study_dir_unseen_here
from ..cluster.devices import replicas as replica_count
from ..data import DataInfo, TrainingData
from ..spec import TRIAL_SEED_KEY, Experiment
from ..storage import experiment_storage
from .builders import resolve_builder
from .checkpoint import (SAVED_BY, apply_new_config, callback_states, origin, restore_callbacks,
                         restore_trial)
from .compile import apply_jit_compile, compile_model, make_callbacks, precision_policy
from .epoch_data import EpochData
from .executions import execution_seed
from .reporter import ACTIVE_KEY, CLONED_FROM_KEY, ExecutionState, Reporter, report_failure
from .settings import TrialSettings, resolve_settings
from .status import STOP_REASONS
from .first_trace import build_on_first_fit
from .warm_models import WarmModels
from .watchdog import FailureRecord, Watchdog, is_out_of_memory

__all__ = ["train_trial", "derive_seed", "build_trial_model", "TrialModel", "STOP_REASONS",
           "ACTIVE_KEY", "Shipped", "ship"]


def derive_seed(master: int, config: dict[str, Any]) -> int:
    """A trial's seed: the ``trial_seed`` every searcher puts into the configuration (sampled
    from the master seed, or derived from it and the trial's index: see
    search_spaces/seeds.py). A configuration without one (a study from an older version) derives
    it from the master seed and the configuration.
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
    replicas: int = 1  # devices a distributed trial trains on (tf.distribute, DataParallel)

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
    compiled inside ``strategy``'s scope for a distributed trial (``tf.distribute`` or, on
    JAX, ``keras.distribution.DataParallel``)."""
    import keras

    keras.utils.set_random_seed(derive_seed(experiment.search.seed, config) if seed is None
                                else seed)
    params = {k: v for k, v in config.items() if k != TRIAL_SEED_KEY}
    devices = replica_count(strategy)
    with strategy.scope() if strategy is not None else contextlib.nullcontext(), \
            precision_policy(experiment.train):
        if hypermodel is not None:
            from .hypermodel import build_hypermodel

            model, hp = build_hypermodel(hypermodel, params)
            apply_jit_compile(model, experiment.train)
            build_on_first_fit(model)  # the fit the user's HyperModel.fit calls
            return TrialModel(model, functools.partial(hypermodel.fit, hp, model),
                              resolve_settings(experiment, {}), hp, devices)
        settings = resolve_settings(experiment, params)
        if (strategy is not None and settings.train.steps_per_execution > 1
                and keras.backend.backend() == "tensorflow"):
            # Keras' multi-step loop fails under MirroredStrategy (a placeholder inside the
            # distributed while loop): one step per call there. JAX's DataParallel runs it.
            settings = TrialSettings(settings.train.model_copy(
                update={"steps_per_execution": 1}), settings.model_params)
        model = resolve_builder(experiment.model.builder)(info, **settings.model_params)
        compile_model(model, settings.train, info.task)
    build_on_first_fit(model)
    return TrialModel(model, model.fit, settings, replicas=devices)


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


def _callback(**hooks: Callable[..., None]):
    import keras

    cb = keras.callbacks.Callback()
    for name, fn in hooks.items():
        setattr(cb, name, fn)
    return cb


def train_trial(config: dict[str, Any], data: TrainingData, experiment: Experiment,
                hypermodel: Any = None, fit_kwargs: Optional[dict[str, Any]] = None) -> None:
    """Ray Tune function trainable for one trial of ``experiment``.

    Wrapped with ``tune.with_parameters`` so ``data`` (and a hypermodel) travel once through
    the object store. A hypermodel with its own ``fit``, or any hypermodel given
    ``fit_kwargs`` (``tuner.search``'s arguments), trains in one-call mode
    (keras_tuner_fit.py). Exceptions propagate (Ray retries them, ``failure.max_retries``); running
    out of memory or past ``train.trial_timeout_s`` is recorded as a failure instead, and so,
    as in KerasTuner, is ``keras_tuner.errors.FailedTrialError`` (its message the reason) and
    ``FatalError`` (which the study's failure policy then stops the study for).

    The trial's Keras backend (``train.backend``) is chosen first, before anything here
    imports Keras; a hypermodel and ``fit_kwargs`` :func:`ship`-ped as bytes are unpickled
    only then. A backend that cannot be chosen (:func:`_backend_refusal`) fails the trial.
    """
    from ray import tune

    refused = _backend_refusal(experiment)
    if refused is not None:  # failed, not retried: a retry in this process would repeat it
        report_failure(experiment, STOP_REASONS[5], 0, refused)
        return
    hypermodel, fit_kwargs = _unship(hypermodel), _unship(fit_kwargs)

    storage = experiment_storage(experiment)
    unseen = None if storage.remote else study_dir_unseen_here(storage.local_dir)
    if unseen is not None:  # failed, not retried: no checkpoint of it could be read back
        report_failure(experiment, STOP_REASONS[7], 0, unseen)
        return
    record = FailureRecord(storage, tune.get_context().get_trial_id())
    earlier = record.read()
    if earlier is not None:  # an earlier attempt timed out: retrying would repeat it
        report_failure(experiment, earlier["kind"], earlier.get("epoch"))
        return
    watchdog = Watchdog(experiment.train.trial_timeout_s, record)  # started once TF is loaded
    warm = WarmModels()
    try:
        _train(config, data, experiment, hypermodel, watchdog, fit_kwargs, warm)
        warm.keep()
    except SystemExit:  # Ray ends a stopped trial inside tune.report, between two epochs
        warm.keep()
        raise
    except Exception as exc:
        kind, reason = _failure(exc)
        if kind is None:
            raise
        watchdog.cancel()
        record.write(kind, reason, watchdog.epoch)
        report_failure(experiment, kind, watchdog.epoch)
    finally:
        watchdog.cancel()


def _backend_refusal(experiment: Experiment) -> Optional[str]:
    """Choose the trial's Keras backend (:func:`select_backend`); None once chosen, else why
    it cannot be: its package is missing on this node, or Keras was already imported in this
    process with another backend. Either would repeat on every retry, so the trial fails
    (``failed_trial``) with this reason instead of erroring."""
    distribute = experiment.train.distribute
    try:
        select_backend(experiment.train.backend, experiment.resources.gpu,
                       experiment.resources.gpu_memory,
                       distribute.cpu_devices if distribute is not None else None)
    except (BackendMismatch, ModuleNotFoundError) as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class Shipped:
    """A trial argument pickled in the driver, unpickled in the trial once its backend is
    chosen: a hypermodel's module (or KerasTuner) imports Keras when unpickled, and Ray
    unpickles ``tune.with_parameters`` arguments before the trial body runs."""

    payload: bytes


def ship(value: Any, experiment: Experiment) -> Any:
    """``value`` as :class:`Shipped` bytes for a trial on another backend than TensorFlow
    (the backend a Ray worker's Keras imports with by default); as itself otherwise, and
    when None."""
    if value is None or experiment.train.backend == "tensorflow":
        return value
    from ray import cloudpickle

    return Shipped(cloudpickle.dumps(value))


def _unship(value: Any) -> Any:
    if not isinstance(value, Shipped):
        return value
    from ray import cloudpickle

    return cloudpickle.loads(value.payload)


def _failure(exc: BaseException) -> tuple[Optional[str], str]:
    """(stop reason, recorded reason) of an exception that ends a trial as failed, not
    retried; (None, "") for an error Ray retries."""
    from .fit_contract import failed_trial_error, fatal_error

    first = (str(exc).strip().splitlines() or [""])[0][:300]
    if isinstance(exc, fatal_error()):
        return STOP_REASONS[6], f"{type(exc).__name__}: {first}"
    if isinstance(exc, failed_trial_error()):
        return STOP_REASONS[5], first or type(exc).__name__
    if is_out_of_memory(exc):
        return STOP_REASONS[3], f"ran out of memory: {type(exc).__name__}: {first}"
    return None, ""


def _train(config: dict[str, Any], data: TrainingData, experiment: Experiment,
           hypermodel: Any, watchdog: Watchdog,
           fit_kwargs: Optional[dict[str, Any]] = None,
           warm: Optional[WarmModels] = None) -> None:
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

    _clear_session()  # a reused trial process starts each trial clean
    # The limit is the trial's own time: a fresh process's TensorFlow import (seconds, more
    # on a busy machine) is not the user's training and does not count.
    watchdog.start()
    from .keras_tuner_fit import one_call_mode, train_one_call

    if one_call_mode(hypermodel, fit_kwargs):
        train_one_call(config, data, experiment, hypermodel, fit_kwargs, watchdog)
        return
    n = experiment.search.executions_per_trial
    trial_seed = derive_seed(experiment.search.seed, config)
    strategy = make_strategy(experiment.train.distribute)
    trials = [build_trial_model(experiment, data.info, config, hypermodel,
                                execution_seed(trial_seed, k), strategy) for k in range(n)]
    if warm is not None:  # a warm process's compiled models, if one has this architecture
        trials = warm.adopt(experiment, data.info, trials, hypermodel, strategy)
    settings = trials[0].settings
    stateful = [make_callbacks(settings.train) for _ in trials]  # saved with each checkpoint
    state = ExecutionState(n)
    metas: list[dict[str, Any]] = []
    states, start_epoch, best = restore_trial(tune.get_checkpoint(),
                                              [t.model for t in trials], state, metas)
    trial_id = tune.get_context().get_trial_id() or ""
    # PBT/PB2 restore a trial from another's checkpoint with a mutated configuration: the
    # optimizer then trains at the new learning rate, not the one the checkpoint restored.
    if hypermodel is None:
        apply_new_config([t.model for t in trials], metas, settings.train.learning_rate)
    source = metas[0].get(SAVED_BY) if metas else None
    copied = {CLONED_FROM_KEY: source} if source and source != trial_id else {}
    # The scheduler ends every trial at its budget (max_t); training to it is completing.
    epochs = min(settings.epochs, experiment.epoch_budget)
    if start_epoch >= epochs:
        return
    reporter = Reporter(experiment, epochs, trials[0].active, watchdog, best,
                        origin=origin(trial_id, settings.train.learning_rate), first_row=copied)
    # tunefleet shuffles, not Keras: each epoch's order is then a function of the execution's
    # seed and the epoch, and a resumed trial trains exactly as an uninterrupted one.
    arguments = {**fit_arguments(experiment, settings, hypermodel, trials[0].replicas),
                 "shuffle": False}
    feed = EpochData(data, settings.batch_size * trials[0].replicas, settings.train.shuffle,
                     pipeline=hypermodel is None)
    if feed.pipeline:
        arguments.pop("batch_size", None)  # the pipeline batches
    # JAX's DataParallel splits every batch evenly over the devices, the last one too.
    split = trials[0].replicas if keras.backend.backend() == "jax" else 1
    shared = dict(validation_data=_divisible(feed.validation(), split), **arguments)
    seeds = [execution_seed(trial_seed, k) for k in range(n)]

    def restore(k: int) -> list[Any]:
        saved = states[k]
        if saved is None:
            return []
        # Set saved progress after Keras' on_train_begin has reset it.
        return [_callback(on_train_begin=lambda logs=None: restore_callbacks(stateful[k], saved))]

    for epoch in range(start_epoch, epochs):
        started = time.perf_counter()
        rates: list[float] = []
        for k, trial in enumerate(trials):
            if state.stopped[k]:
                continue  # an execution EarlyStopping ended keeps its last values
            logs: dict[str, Any] = {}
            # Last in the list: the rate the epoch trains with, after any schedule has set it
            # (ReduceLROnPlateau changes it at an epoch's end, for the next epoch).
            capture = _callback(
                on_epoch_begin=lambda e, logs=None, model=trial.model, out=rates: out.append(
                    _rate(model)),
                on_epoch_end=lambda e, epoch_logs=None, out=logs: out.update(epoch_logs or {}))
            trial.fit(**_divisible(feed.epoch(seeds[k], epoch), split), epochs=epoch + 1,
                      initial_epoch=epoch, **shared,
                      callbacks=[*stateful[k], *restore(k), capture])
            states[k] = callback_states(stateful[k])
            state.last[k] = logs
            state.stopped[k] = bool(trial.model.stop_training)
        lr = rates[0] if rates else _rate(trials[0].model)
        if reporter.report(epoch + 1, state, trials, stateful, lr, len(rates),
                           time.perf_counter() - started):
            return


_GC_EVERY = 10  # trials between full garbage collections in a reused process
_cleared = [0]


def _clear_session() -> None:
    """Keras' global state reset, with Python's full garbage collection only every
    ``_GC_EVERY`` trials of a process: that collection took 0.35-0.8 s of every short trial
    (2 busy cores), and Python's own collector frees the rest in between."""
    import gc

    import keras

    keras.backend.clear_session(free_memory=False)
    _cleared[0] += 1
    if _cleared[0] % _GC_EVERY == 0:
        gc.collect()


def _divisible(data: Any, devices: int) -> Any:
    """Arrays (a dict, tuple or list of them) cut to a multiple of ``devices`` examples, so
    that every batch, the last included, splits evenly over a JAX DataParallel's devices (its
    batches are multiples of ``devices``): at most ``devices - 1`` examples are left out,
    the last of the epoch's shuffled order. Anything else (a ``tf.data`` pipeline, a
    generator, one device) is returned as it is."""
    if devices <= 1:
        return data
    if isinstance(data, dict):
        return {k: _divisible(v, devices) for k, v in data.items()}
    if isinstance(data, tuple):
        return tuple(_divisible(v, devices) for v in data)
    if isinstance(data, list):
        return [_divisible(v, devices) for v in data]
    if not getattr(data, "shape", ()):  # not an array of examples (a 0-d one neither)
        return data
    return data[: len(data) - len(data) % devices]


def _rate(model: Any) -> float:
    import keras

    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
