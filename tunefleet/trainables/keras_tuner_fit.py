"""One-call mode: a trial calls ``HyperModel.fit`` once per execution, as KerasTuner's tuners
do, and reports each epoch from a callback's ``on_epoch_end`` alone.

What ``fit`` returns counts, as in KerasTuner (``convert_to_metrics_dict``): an epoch is
reported live only when its logs hold the objective (Ray needs it in every result) and it is not
the last; the rest are held, and after ``fit`` returns, a returned float or dict is merged into
the last epoch's logs and reported, with a checkpoint of the model it describes, as the final
row (repeating that epoch, with no training counted, when it was already reported live).

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
from typing import Any, Optional

from ..cluster.devices import make_strategy
from ..data import TrainingData
from ..spec import Experiment
from .checkpoint import restore_callbacks, restore_trial
from .compile import make_callbacks
from .executions import execution_seed
from .fit_contract import (EpochRecorder, UserCodeError, copy_callbacks, fit_call,
                           merge_result, recorder_callback)
from .reporter import ExecutionState, Reporter
from .watchdog import Watchdog

__all__ = ["one_call_mode", "train_one_call", "base_arguments", "whole_replicas"]

# The ``fit`` arguments that hold examples, cut to whole replicas under JAX's DataParallel.
_EXAMPLES = ("x", "y", "sample_weight", "validation_data")


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


def whole_replicas(args: tuple[Any, ...], kwargs: dict[str, Any],
                   devices: int) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``fit``'s positional ``args`` (x, y) and the example-holding ``kwargs`` (x, y,
    ``sample_weight``, ``validation_data``) cut to a multiple of ``devices`` examples where
    they are arrays (a dict, tuple or list of them), as the per-epoch path cuts its own: JAX's
    DataParallel splits every batch evenly over its devices, the last one too. A dataset or
    generator, and everything with one device, are passed as they are."""
    from .keras_trainable import _divisible

    if devices <= 1:
        return args, kwargs
    return (tuple(_divisible(a, devices) for a in args),
            {k: _divisible(v, devices) if k in _EXAMPLES else v for k, v in kwargs.items()})


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
    trial_id = tune.get_context().get_trial_id() or "trial"
    stateful = [[*copy_callbacks((fit_kwargs or {}).get("callbacks"), trial_id, k),
                 *make_callbacks(settings.train)] for k in range(n)]
    state = _Executions(n)
    saved, start_epoch, best = restore_trial(tune.get_checkpoint(), [t.model for t in trials],
                                             state)
    epochs = min(settings.epochs, experiment.epoch_budget)
    if start_epoch >= epochs:
        return
    reporter = Reporter(experiment, epochs, trials[0].active, watchdog, best)
    base = base_arguments(experiment, hypermodel, trials[0].replicas)
    split = trials[0].replicas if keras.backend.backend() == "jax" else 1
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
        args, kwargs = whole_replicas(*fit_call(data, fit_kwargs, base, epochs, callbacks,
                                                initial_epoch=start_epoch if last else 0), split)
        result = trials[k].fit(*args, **kwargs)
        state.finished[k] = True
        if run is not None:
            run.finish(result)
            continue
        logs = merge_result(recorder.logs, result, experiment.objective.metric)
        state.history[k] = logs
        state.last[k] = logs[-1] if logs else {}
        # Ended before the budget by itself (a float or dict alone describes the whole run).
        state.stopped[k] = bool(getattr(trials[k].model, "stop_training", False)) or (
            0 < len(recorder.logs) < epochs)


def _restore_after_begin(callbacks: list[Any], states: list[dict]) -> Any:
    import keras

    class _Restore(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            restore_callbacks(callbacks, states)

    return _Restore()


class _Run:
    """The last execution's ``fit``: an epoch whose logs hold the objective is reported (the
    aggregate over the executions) as it ends; the last one waits for what ``fit`` returns."""

    def __init__(self, state: _Executions, k: int, trials: list[Any], callbacks: list[list[Any]],
                 reporter: Reporter, start_epoch: int):
        self.state, self.k, self.trials, self.callbacks = state, k, trials, callbacks
        self.reporter, self.done, self.start = reporter, start_epoch, start_epoch
        self.objective = reporter.experiment.objective.metric
        self.reported = 0  # epochs reported live
        self.pending = False  # the last epoch seen is not reported yet
        self.model = trials[k].model  # held here: a hand-written loop never calls set_model
        self.reason = ""
        self.rate = learning_rate(self.model)
        self.started = time.perf_counter()

    def epoch_begin(self, epoch: int) -> None:
        self.rate = learning_rate(self.model)  # after a schedule has set this epoch's rate

    def epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.reason:
            return  # already ended (NaN): a loop that ignores stop_training
        self.done += 1
        state, k = self.state, self.k
        state.history[k] = [*state.history[k][:self.done - 1], logs]
        state.last[k] = logs
        state.stopped[k] = bool(getattr(self.model, "stop_training", False))
        # Held: an epoch without the objective (Ray needs it in every result; fit may return
        # it), and the last one (what fit returns may still change it).
        self.pending = (self.objective not in logs or self.done >= self.reporter.epochs
                        or state.stopped[k])
        if not self.pending:
            self.reported += 1
            self._report(trained=True)
            # The rate the next epoch trains with, after ReduceLROnPlateau (earlier in the
            # list). A held epoch keeps its own: it is reported with it once fit returns.
            self.rate = learning_rate(self.model)

    def _report(self, trained: bool) -> None:
        state, k, done = self.state, self.k, self.done
        logs = state.last[k]
        for j in range(len(self.trials)):
            if j != k:
                state.last[j] = state.at(j, done, logs)
        missing = [j for j, entry in enumerate(state.last) if self.objective not in entry]
        if missing:  # Ray would end the whole study on a result without the objective
            raise UserCodeError(f"HyperModel.fit handed back no '{self.objective}' (the "
                                f"objective) for epoch {done} of execution {missing[0]}: not in "
                                f"its epoch's logs ({', '.join(logs) or 'none'}) nor in what "
                                "fit returned; return it (a float or a dict) or log it")
        others = sum(len(state.history[j]) >= done for j in range(len(self.trials)) if j != k)
        now = time.perf_counter()
        self.reason = self.reporter.report(done, state, self.trials, self.callbacks, self.rate,
                                           int(trained) + (others if trained else 0),
                                           now - self.started)
        self.started = now
        if self.reason or state.stopped[k]:
            self.model.stop_training = True

    def finish(self, result: Any) -> None:
        """After ``fit`` returned: report its end as KerasTuner scores it (what it returned
        merged into its last epoch, see :func:`merge_result`); a ``fit`` that returned before
        its last epoch ends the trial as early-stopped."""
        if self.reason:
            return
        state, k = self.state, self.k
        seen = state.history[k][self.start:self.done]  # the epochs its callbacks saw
        final = merge_result(seen, result, self.objective)
        if not final:
            raise UserCodeError("HyperModel.fit returned nothing KerasTuner can read (a History, "
                                "a dict of metrics or a float) and never called on_epoch_end "
                                "of the callbacks it was given: the trial has no result")
        if not seen:  # what fit returned is the whole run: one entry per epoch of a History
            alone = len(final) == 1  # a float or dict describes the model trained to the end
            for i, entry in enumerate(final):
                self.done = self.reporter.epochs if alone else self.done + 1
                state.history[k] = [*state.history[k][:self.done - 1], entry]
                state.last[k] = entry
                if i == len(final) - 1:
                    self._end()
                else:
                    self._report(trained=True)
                if self.reason:
                    return
            return
        repeat = not self.pending  # its last epoch was reported live already
        state.history[k] = [*state.history[k][:self.done - 1], final[-1]]
        state.last[k] = final[-1]
        self._end(repeat)

    def _end(self, repeat: bool = False) -> None:
        if self.done < self.reporter.epochs:
            # Ended by itself before the budget (EarlyStopping, a loop's own rule): say so.
            self.state.stopped = [True] * len(self.trials)
        self._report(trained=not repeat)
