"""What a trial reports after each epoch (the aggregate over its executions, with bookkeeping),
and when it checkpoints: at every epoch that improves on its best objective so far (so the best
epoch can be restored), at its last epoch, and every epoch where the scheduler pauses and
resumes trials (``output.checkpoint_every: auto``, see :func:`checkpoint_interval`), or every N
epochs as the spec says. A FIFO/ASHA/median trial of 2 epochs that improves each epoch still
writes 2 checkpoints; one of 20 writes those of its improvements and its last."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from ..cluster.devices import assigned_gpus
from ..spec import Experiment
from .checkpoint import execution_dir, save_state
from .executions import aggregate_logs
from .status import FAILURE_REASON_KEY, STOP_REASONS
from .watchdog import Watchdog

__all__ = ["Reporter", "ExecutionState", "ACTIVE_KEY", "TRAINED_KEY", "REPORTED_AT_KEY",
           "FAILURE_ROW_REASONS", "report_failure", "checkpoint_interval",
           "EVERY_EPOCH_SCHEDULERS", "CLONED_FROM_KEY"]

ACTIVE_KEY = "active_hyperparameters"
# Executions that trained this epoch: summed over every reported row (repeats after a retry or
# a pause included), it is what the trial actually trained.
TRAINED_KEY = "executions_trained"
# Wall-clock time of the report as a float Unix time (Ray's ``timestamp`` is whole seconds).
REPORTED_AT_KEY = "reported_at"
# In the first row a trial reports after PBT/PB2 restored it from another trial's checkpoint:
# that trial's id (the row's epoch is the first one trained from its weights).
CLONED_FROM_KEY = "cloned_from"
# Stop reasons of a row that records a failure rather than a measured epoch.
FAILURE_ROW_REASONS = STOP_REASONS[3:]
# Schedulers that pause trials and resume them from their latest checkpoint (synchronous
# HyperBand and BOHB's, PBT and PB2, which also copy a trial's checkpoint of the epoch they
# decide at): a paused trial must lose no epoch, so every epoch is checkpointed. The others
# only stop trials, which never resume.
EVERY_EPOCH_SCHEDULERS = ("hyperband", "bohb", "pbt", "pb2")


def checkpoint_interval(experiment: Experiment) -> Optional[int]:
    """Epochs between routine checkpoints: ``output.checkpoint_every`` when a number; for
    ``auto``, 1 under a scheduler that pauses trials, else None (only improvements of the
    objective and the last epoch are checkpointed)."""
    every = experiment.output.checkpoint_every
    if every != "auto":
        return int(every)
    return 1 if experiment.scheduler.name in EVERY_EPOCH_SCHEDULERS else None


class ExecutionState:
    """Per execution: whether EarlyStopping ended it and its last epoch's logs (what the
    aggregate keeps using), saved with each checkpoint so a resumed trial does not train an
    ended execution again."""

    def __init__(self, n: int):
        self.stopped = [False] * n
        self.last: list[dict[str, Any]] = [{} for _ in range(n)]

    def restore(self, k: int, meta: dict[str, Any]) -> None:
        self.stopped[k] = bool(meta.get("stopped", False))
        self.last[k] = dict(meta.get("last") or {})

    def saved(self, k: int) -> dict[str, Any]:
        return {"stopped": self.stopped[k], "last": self.last[k]}


def _plain_logs(entry: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in entry.items() if k != "learning_rate"}


class Reporter:
    """Reports each epoch to Ray Tune, with a checkpoint when one is due."""

    def __init__(self, experiment: Experiment, epochs: int, active: Optional[list[str]],
                 watchdog: Optional[Watchdog] = None, best: Optional[float] = None,
                 origin: Optional[dict[str, Any]] = None,
                 first_row: Optional[dict[str, Any]] = None):
        self.experiment, self.epochs, self.active = experiment, epochs, active
        self.watchdog = watchdog
        self.best = best  # the best objective so far (restored from a checkpoint)
        # Written into every checkpoint's metadata (checkpoint.origin: who saved it, how).
        self.origin = dict(origin or {})
        # Added to the first row only (where a PBT copy's weights came from).
        self.first_row = dict(first_row or {})
        self.every = checkpoint_interval(experiment)
        self.node_id = _node_id()  # a trial stays on its node until a retry moves it

    def _improves(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.experiment.objective.mode == "max" else value < self.best

    def report(self, done: int, state: ExecutionState, trials: list[Any], callbacks: list[Any],
               lr: float, trained: int, epoch_time: float) -> str:
        """Report epoch ``done`` (``trained`` executions trained it, at rate ``lr``); return the
        stop reason ("" to go on)."""
        from ray import tune

        exp = self.experiment
        if self.watchdog is not None:
            self.watchdog.epoch = done
        metrics: dict[str, Any] = aggregate_logs([_plain_logs(e) for e in state.last],
                                                 exp.search.aggregate, exp.objective.metric,
                                                 exp.objective.direction)
        metrics.update({"epoch": done, "lr": float(lr), "epoch_time_s": epoch_time,
                        TRAINED_KEY: int(trained), REPORTED_AT_KEY: time.time()})
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
        elif all(state.stopped):  # EarlyStopping ended every execution
            reason = STOP_REASONS[1]
        elif done >= self.epochs:
            reason = STOP_REASONS[0]
        metrics["stop_reason"] = reason
        metrics.update(self.first_row)
        self.first_row = {}
        # A NaN-loss epoch is never the best so far: its weights are lost and it has no checkpoint.
        improved = reason != STOP_REASONS[2] and self._improves(
            float(metrics.get(exp.objective.metric, math.nan)))
        if improved:
            self.best = float(metrics[exp.objective.metric])
        due = improved or bool(reason) or (self.every is not None and done % self.every == 0)
        if reason == STOP_REASONS[2] or not due:
            tune.report(metrics)
            return reason
        directory = Path(tempfile.mkdtemp(prefix="tunefleet-ckpt-"))
        try:
            n = len(trials)
            for k, (trial, cbs) in enumerate(zip(trials, callbacks, strict=True)):
                target = execution_dir(directory, k, n)
                target.mkdir(exist_ok=True)
                save_state(target, trial.model, done, cbs,
                           extra={**state.saved(k), "best": self.best, **self.origin})
            if n > 1:
                (directory / "meta.json").write_text(json.dumps({"epoch": done, "executions": n}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(directory)))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return reason


def report_failure(experiment: Experiment, kind: str, epoch: Optional[int],
                   reason: Optional[str] = None) -> None:
    """End a failed trial with a result the searcher and scheduler can read: the objective is
    NaN (unknown), at the last epoch the trial finished. Readers tell this row from a measured
    epoch by its ``stop_reason`` (:data:`FAILURE_ROW_REASONS`) and never let it replace one.
    ``reason``: why, in the row itself (for a failure with no ``failure.json``)."""
    from ray import tune

    row = {"epoch": int(epoch or 0), experiment.objective.metric: math.nan,
           "stop_reason": kind, TRAINED_KEY: 0, REPORTED_AT_KEY: time.time()}
    if reason:
        row[FAILURE_REASON_KEY] = reason
    tune.report(row)


def _node_id() -> str:
    """The Ray node this trial runs on (where it lands, and where it moved after a retry)."""
    import ray

    try:
        return ray.get_runtime_context().get_node_id()[:12]
    except Exception:  # noqa: BLE001 - outside Ray (a driver-side check): no node
        return ""
