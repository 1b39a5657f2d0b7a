"""One trial's settings: the spec's ``train`` section and builder params, overridden by the
trial's sampled configuration. Also what the trainable will report, for validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..spec import TUNABLE_TRAIN_FIELDS, Experiment
from ..spec.sections import TrainSpec

__all__ = ["TrialSettings", "resolve_settings", "default_metrics", "METRICS_BY_TASK",
           "reported_metrics"]

# Metric names the trainable can compile, per task (each is reported as NAME and val_NAME).
METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    "multiclass": ("accuracy",),
    "binary": ("accuracy", "precision", "recall", "auc"),
    "regression": ("mae", "mse", "rmse"),
}


def default_metrics(task: str) -> list[str]:
    """``accuracy`` for classification, ``mae`` for regression."""
    return ["mae"] if task == "regression" else ["accuracy"]


def reported_metrics(experiment: Experiment, task: str) -> list[str]:
    """Every metric name a trial reports each epoch (objective and monitors must be one)."""
    names = experiment.train.metrics or default_metrics(task)
    return ["loss", "val_loss", *names, *(f"val_{n}" for n in names), "lr", "epoch"]


def _plain(value: Any) -> Any:
    """numpy scalars from Ray's samplers as plain Python values."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value


@dataclass(frozen=True)
class TrialSettings:
    """Resolved training settings plus the keyword arguments for the model builder."""

    train: TrainSpec
    model_params: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return int(self.train.epochs)

    @property
    def batch_size(self) -> int:
        return int(self.train.batch_size)


def resolve_settings(experiment: Experiment, config: dict[str, Any]) -> TrialSettings:
    """Route each sampled value to ``train`` (if it names a training option) or to the builder."""
    train_updates: dict[str, Any] = {}
    model_params = dict(experiment.model.params)
    for key, value in config.items():
        value = _plain(value)
        if key in TUNABLE_TRAIN_FIELDS:
            train_updates[key] = value
        else:
            model_params[key] = value
    train = experiment.train
    if train_updates:
        if "epochs" in train_updates:
            train_updates["epochs"] = int(round(train_updates["epochs"]))
        if "batch_size" in train_updates:
            train_updates["batch_size"] = int(round(train_updates["batch_size"]))
        train = TrainSpec.model_validate({**train.model_dump(), **train_updates})
    return TrialSettings(train=train, model_params=model_params)


