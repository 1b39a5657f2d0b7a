"""The experiment trackers a study also logs to (``output.trackers``): TensorBoard with its
HParams dashboard, MLflow (one parent run per study, one child run per trial) and Weights &
Biases (offline unless configured). Each is a Ray Tune logger callback that runs in the driver,
built on Ray's own (``TBXLoggerCallback``, ``MLflowLoggerCallback``, ``WandbLoggerCallback``);
the trial's seed is bookkeeping, not a hyperparameter, and is logged by none of them."""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path
from typing import Any, Optional

from ...spec import TRIAL_SEED_KEY, Experiment, SpecError
from ...storage import StudyStorage
from ...trainables.status import STOP_REASONS

__all__ = ["check_trackers", "tracker_callbacks", "mlflow_store", "wandb_settings",
           "keras_metrics", "hyperparameters", "number", "BestEpochs", "UNMEASURED",
           "TRACKER_INSTALL", "MLFLOW_DB", "MLFLOW_ARTIFACTS", "BEST_MODEL_ARTIFACT"]

# What each tracker imports, and how to install it.
_MODULES = {"tensorboard": ("tensorboardX",), "mlflow": ("mlflow",), "wandb": ("wandb",)}
TRACKER_INSTALL = {"tensorboard": "pip install tensorboardX (it comes with ray[tune])",
                   "mlflow": "pip install 'tunefleet[mlflow]'",
                   "wandb": "pip install 'tunefleet[wandb]'"}
# MLflow's own default store is an SQLite file (its file store is in maintenance mode and
# refused by default since 3.7): tunefleet keeps it, and the artifacts, in the study directory.
MLFLOW_DB = "mlflow.db"
MLFLOW_ARTIFACTS = "mlartifacts"
BEST_MODEL_ARTIFACT = "best_model"
# Rows that measured nothing (a NaN loss, a failure): never a trial's best epoch.
UNMEASURED = set(STOP_REASONS[2:])


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_trackers(experiment: Experiment) -> None:
    """Every tracker's package is installed here (the driver logs to them), before any training."""
    for name in experiment.output.trackers:
        missing = [m for m in _MODULES[name] if not _installed(m)]
        if name == "mlflow" and not missing and _database_store():
            # MLflow's database stores need SQLAlchemy and Alembic, which mlflow-skinny lacks.
            missing = [m for m in ("sqlalchemy", "alembic") if not _installed(m)]
        if missing:
            raise SpecError("output.trackers", f"{name} needs the {' and '.join(missing)} "
                            f"package{'s' if len(missing) > 1 else ''}, which this Python "
                            f"environment ({sys.executable}) lacks",
                            experiment.output.trackers, fix=TRACKER_INSTALL[name])


def _database_store() -> bool:
    scheme = os.environ.get("MLFLOW_TRACKING_URI", "sqlite:").split(":")[0].split("+")[0]
    return scheme in ("sqlite", "postgresql", "mysql", "mssql")


def mlflow_store(storage: StudyStorage) -> tuple[Optional[str], Optional[str]]:
    """(tracking URI, artifact location) for MLflow: ``MLFLOW_TRACKING_URI`` when set (then
    (None, None): MLflow reads it), else an SQLite file in the study directory (for a study at a
    URI, in the current directory: MLflow's own default place)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None, None
    base = Path.cwd() if storage.remote else storage.local_dir
    base = base.resolve()
    return f"sqlite:///{base / MLFLOW_DB}", (base / MLFLOW_ARTIFACTS).as_uri()


def number(value: Any) -> Optional[float]:
    """A finite reported number as a float (numpy scalars too), else None (NaN, text, flags)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "item"):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def keras_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The Keras metrics of a reported epoch: ``loss``, every ``val_*``, and each metric that
    has a ``val_`` twin (Ray's and tunefleet's bookkeeping left out)."""
    names = [k for k in result
             if k == "loss" or k.startswith("val_") or f"val_{k}" in result]
    numbers = {k: number(result[k]) for k in names}
    return {k: v for k, v in numbers.items() if v is not None}


def hyperparameters(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's hyperparameters as trackers take them: scalars, without the trial's seed."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == TRIAL_SEED_KEY:
            continue
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            value = value.item()
        out[key] = value if isinstance(value, (str, bool, int, float)) else str(value)
    return out


class BestEpochs:
    """Each trial's best epoch by the objective, the rule the study's summary uses (the
    console's :func:`~tunefleet.study.console.best_epoch`: an epoch repeated after a retry
    counts with its latest value, the earliest of equal values wins)."""

    def __init__(self, experiment: Experiment):
        self.metric = experiment.objective.metric
        self.mode = experiment.objective.direction
        self.epochs: dict[str, dict[int, float]] = {}  # trial_id -> epoch -> latest value

    def update(self, trial_id: str, result: dict[str, Any]) -> None:
        value = number(result.get(self.metric))
        if value is None or result.get("stop_reason") in UNMEASURED:
            return
        self.epochs.setdefault(trial_id, {})[int(result.get("epoch", 0))] = value

    def record(self, trial_id: str, value: float, epoch: int) -> None:
        """A trial's best as recorded earlier (a resumed study's finished trial)."""
        self.epochs[trial_id] = {int(epoch): float(value)}

    def of(self, trial_id: str) -> Optional[tuple[float, int]]:
        """(best value, its epoch) of one trial; None before it measured a number."""
        from ..console import best_epoch

        value, epoch = best_epoch(self.epochs.get(trial_id, {}), self.mode)
        return None if value is None or epoch is None else (value, epoch)

    @property
    def best(self) -> dict[str, tuple[float, int]]:
        """trial_id -> (best value, its epoch), for every trial that measured a number."""
        found = {trial_id: self.of(trial_id) for trial_id in self.epochs}
        return {trial_id: best for trial_id, best in found.items() if best is not None}

    def winner(self) -> Optional[str]:
        best = self.best
        if not best:
            return None
        sign = 1.0 if self.mode == "max" else -1.0
        return max(best, key=lambda t: sign * best[t][0])


def wandb_settings() -> dict[str, Any]:
    """``wandb.init`` arguments: offline (nothing leaves this machine, ``wandb sync`` uploads
    later) unless ``WANDB_MODE`` or ``WANDB_API_KEY`` says otherwise; offline, no system
    metrics, machine information, git or code capture either."""
    mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY")
                                            else "offline")
    kwargs: dict[str, Any] = {"mode": mode}
    if mode in ("offline", "disabled"):
        kwargs["settings"] = {"x_disable_stats": True, "x_disable_meta": True,
                              "x_disable_machine_info": True, "x_disable_viewer": True,
                              "disable_git": True, "disable_code": True, "silent": True}
    return kwargs


def tracker_callbacks(experiment: Experiment, storage: StudyStorage) -> list[Any]:
    """The Ray Tune callbacks of ``output.trackers``, for a new or a resumed study."""
    callbacks: list[Any] = []
    for name in experiment.output.trackers:
        if name == "tensorboard":
            from .tensorboard_logger import HParamsLogger

            callbacks.append(HParamsLogger(experiment))
        elif name == "mlflow":
            from .mlflow_logger import MlflowLogger

            tracking_uri, artifacts = mlflow_store(storage)
            callbacks.append(MlflowLogger(experiment, storage.location, tracking_uri, artifacts))
        else:
            from .wandb_logger import WandbLogger

            callbacks.append(WandbLogger(experiment))
    return callbacks
