"""One-call mode: a trial calls ``HyperModel.fit`` once per execution, as KerasTuner's tuners
do, and reports each epoch from a callback's ``on_epoch_end`` alone.

Used for a hypermodel that overrides ``fit`` (its own data handling or training loop) and
whenever the caller passes ``fit_kwargs`` (the drop-in Tuner's ``search`` arguments: the user's
callbacks, ``class_weight``, ``sample_weight``, ...). Builders and build-only hypermodels keep
the per-epoch path of keras_trainable.py (tunefleet's own data order, resumable exactly).

With ``executions_per_trial: N`` the executions run one after another; the first N-1 train
unreported and the last reports, after each of its epochs, the aggregate of that epoch over all
N (an execution that ended earlier keeps its last values), so the scheduler still sees every
epoch and can stop the trial while its last execution trains. A checkpoint then holds the
earlier executions' final weights beside the last one's current weights.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Optional

from ..cluster.devices import make_strategy
from ..data import TrainingData
from ..spec import Experiment
from .checkpoint import execution_dir, load_state, restore_callbacks
from .compile import make_callbacks
from .executions import execution_seed
from .fit_contract import (EpochRecorder, UserCodeError, convert_result, copy_callbacks, fit_call,
                           recorder_callback)
from .reporter import ExecutionState, Reporter
from .watchdog import Watchdog

__all__ = ["one_call_mode", "train_one_call", "base_arguments"]


def one_call_mode(hypermodel: Any, fit_kwargs: Optional[dict[str, Any]]) -> bool:
    """Whether trials call ``hypermodel.fit`` once per execution (KerasTuner's contract)."""
    if hypermodel is None:
        return False
    from .hypermodel import overrides_fit

    return fit_kwargs is not None or overrides_fit(hypermodel)


def base_arguments(experiment: Experiment, hypermodel: Any, replicas: int = 1) -> dict[str, Any]:
    """tunefleet's own ``fit`` keywords, which the caller's ``fit_kwargs`` override. For
    KerasTuner's own ``HyperModel.fit`` (which calls ``model.fit``): ``verbose=0``, the spec's
    ``shuffle`` and, when set, ``batch_size``. A ``fit`` override gets only what the spec sets
    explicitly, as KerasTuner passes only what ``search`` was given: its ``model.fit(...,
    shuffle=hp.Boolean("shuffle"), **kwargs)`` must not receive a second ``shuffle``. But
    ``verbose=0`` unless the caller says otherwise: one progress bar per trial is noise."""
    from .hypermodel import overrides_fit
    from .keras_trainable import fit_arguments
    from .settings import resolve_settings

    args = fit_arguments(experiment, resolve_settings(experiment, {}), hypermodel, replicas)
    if hypermodel is not None and overrides_fit(hypermodel):
        given = experiment.train.model_fields_set
        args = {k: v for k, v in args.items()
                if k == "verbose" or (k in ("batch_size", "shuffle") and k in given)}
    return args


def learning_rate(model: Any) -> float:
    """The model's optimizer's rate; NaN for a model a custom loop trains (no optimizer)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        return math.nan
    import keras

    try:
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except (TypeError, ValueError):
        return math.nan


class _Executions(ExecutionState):
    """Per execution, besides the Reporter's state: every epoch's logs (what the last
    execution's reports aggregate over) and whether it has run; saved with each checkpoint."""

    def __init__(self, n: int):
        super().__init__(n)
        self.history: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        self.finished = [False] * n

    def restore(self, k: int, meta: dict[str, Any]) -> None:
        super().restore(k, meta)
        self.history[k] = [dict(e) for e in meta.get("history") or []]
        self.finished[k] = bool(meta.get("finished", False))

    def saved(self, k: int) -> dict[str, Any]:
        return {**super().saved(k), "history": self.history[k], "finished": self.finished[k]}

    def at(self, k: int, done: int, current: dict[str, Any]) -> dict[str, Any]:
        """Execution ``k``'s logs for epoch ``done`` (1-based), else its last ones."""
        logs = self.history[k]
        if not logs:
            return current  # it reported nothing: do not empty the aggregate
        return logs[done - 1] if len(logs) >= done else logs[-1]


def train_one_call(config: dict[str, Any], data: TrainingData, experiment: Experiment,
                   hypermodel: Any, fit_kwargs: Optional[dict[str, Any]],
                   watchdog: Watchdog) -> None:
    """Train and report one trial in one-call mode (see the module's docstring)."""
    import keras
    from ray import tune

    from .keras_trainable import build_trial_model, derive_seed

    n = experiment.search.executions_per_trial
    seeds = [execution_seed(derive_seed(experiment.search.seed, config), k) for k in range(n)]
    strategy = make_strategy(experiment.train.distribute)
    trials = [build_trial_model(experiment, data.info, config, hypermodel, seeds[k], strategy)
              for k in range(n)]
    settings = trials[0].settings
    # Each execution's own copies of the user's callbacks, then the spec's; saved with each
    # checkpoint so that a resumed trial's EarlyStopping keeps its patience.
    stateful = [[*copy_callbacks((fit_kwargs or {}).get("callbacks")),
                 *make_callbacks(settings.train)] for _ in trials]
    saved: list[Optional[list[dict]]] = [None] * n
    state = _Executions(n)
    best: Optional[float] = None
    start_epoch = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            for k, trial in enumerate(trials):
                meta = load_state(execution_dir(Path(directory), k, n), trial.model)
                saved[k] = meta["callbacks"]
                state.restore(k, meta)
                start_epoch, best = int(meta["epoch"]), meta.get("best")
    epochs = min(settings.epochs, experiment.epoch_budget)
    if start_epoch >= epochs:
        return
    reporter = Reporter(experiment, epochs, trials[0].active, watchdog, best)
    base = base_arguments(experiment, hypermodel, trials[0].replicas)
    for k in range(n):
        if state.finished[k]:
            continue
        last = k == n - 1
        keras.utils.set_random_seed(seeds[k])
        run = _Run(state, k, trials, stateful, reporter, start_epoch if last else 0) if last \
            else None
        recorder = EpochRecorder(run.epoch_end if run else None)
        callbacks = [*stateful[k]]
        progress = saved[k]
        if progress is not None:
            restore_callbacks(stateful[k], progress)  # a loop that never calls on_train_begin
            callbacks.append(_restore_after_begin(stateful[k], progress))
        callbacks.append(recorder_callback(recorder, run.epoch_begin if run else None))
        args, kwargs = fit_call(data, fit_kwargs, base, epochs, callbacks,
                                initial_epoch=start_epoch if last else 0)
        result = trials[k].fit(*args, **kwargs)
        if not recorder.logs:  # a custom loop that never called its callbacks
            recorder.logs = convert_result(result, experiment.objective.metric)
        if run is None:
            state.history[k] = recorder.logs
            state.last[k] = recorder.logs[-1] if recorder.logs else {}
            state.stopped[k] = len(recorder.logs) < epochs
        state.finished[k] = True
        if run is not None:
            run.finish(recorder.logs, epochs)


def _restore_after_begin(callbacks: list[Any], states: list[dict]) -> Any:
    import keras

    class _Restore(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            restore_callbacks(callbacks, states)

    return _Restore()


class _Run:
    """The last execution's ``fit``: each ``on_epoch_end`` reports the epoch's aggregate."""

    def __init__(self, state: _Executions, k: int, trials: list[Any], callbacks: list[list[Any]],
                 reporter: Reporter, start_epoch: int):
        self.state, self.k, self.trials, self.callbacks = state, k, trials, callbacks
        self.reporter, self.done, self.reported = reporter, start_epoch, 0
        self.model = trials[k].model  # held here: a hand-written loop never calls set_model
        self.reason = ""
        self.rate = learning_rate(self.model)
        self.started = time.perf_counter()

    def epoch_begin(self, epoch: int) -> None:
        self.rate = learning_rate(self.model)  # after a schedule has set this epoch's rate

    def epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.reason:
            return  # already ended (completed, NaN): a loop that ignores stop_training
        self.done += 1
        self.reported += 1
        state, k = self.state, self.k
        state.history[k] = [*state.history[k][:self.done - 1], logs]
        state.last[k] = logs
        state.stopped[k] = bool(getattr(self.model, "stop_training", False))
        self._report(logs, state.stopped[k])
        # The rate the next epoch trains with, after ReduceLROnPlateau (earlier in the list).
        self.rate = learning_rate(self.model)

    def _report(self, logs: dict[str, Any], stopped: bool) -> None:
        state, k, done = self.state, self.k, self.done
        for j in range(len(self.trials)):
            if j != k:
                state.last[j] = state.at(j, done, logs)
        trained = 1 + sum(len(state.history[j]) >= done for j in range(len(self.trials))
                          if j != k)
        now = time.perf_counter()
        self.reason = self.reporter.report(done, state, self.trials, self.callbacks, self.rate,
                                           trained, now - self.started)
        self.started = now
        if self.reason or stopped:
            self.model.stop_training = True

    def finish(self, logs: list[dict[str, Any]], epochs: int) -> None:
        """After ``fit`` returned: report what a loop without callbacks returned; end a trial
        whose ``fit`` returned before its last epoch as early-stopped."""
        if self.reason:
            return
        if not self.reported and not logs:
            raise UserCodeError("HyperModel.fit returned nothing KerasTuner can read (a History, "
                                "a dict of metrics or a float) and never called on_epoch_end "
                                "of the callbacks it was given: the trial has no result")
        if not self.reported:
            final = len(logs) == 1  # a float or dict describes the trained model at the end
            for i, entry in enumerate(logs):
                self.done = epochs if final else self.done + 1
                self.state.history[self.k].append(entry)
                self.state.last[self.k] = entry
                self.state.stopped[self.k] = not final and i == len(logs) - 1 and \
                    self.done < epochs
                self._report(entry, False)
                if self.reason:
                    return
        if not self.reason:
            # Ended by itself before the budget (EarlyStopping, a loop's own rule): say so.
            self.state.stopped = [True] * len(self.trials)
            self.reporter.report(self.done, self.state, self.trials, self.callbacks, self.rate,
                                 0, 0.0)
