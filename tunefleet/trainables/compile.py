"""Optimizer, loss, metrics and callbacks for one trial, from its resolved settings."""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

from ..spec.sections import LRScheduleSpec, TrainSpec
from .settings import default_metrics

__all__ = ["make_optimizer", "make_loss", "make_metrics", "make_callbacks", "compile_model",
           "precision_policy", "apply_jit_compile"]


def make_optimizer(train: TrainSpec) -> Any:
    """adam, sgd (momentum, nesterov), rmsprop (momentum) or adamw (weight_decay)."""
    import keras

    lr = float(train.learning_rate)
    if train.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if train.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=float(train.momentum),
                                    nesterov=bool(train.nesterov))
    if train.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr, momentum=float(train.momentum))
    return keras.optimizers.AdamW(learning_rate=lr, weight_decay=float(train.weight_decay))


def make_loss(task: str) -> str:
    """The loss that matches the output layer of the task."""
    return {"multiclass": "sparse_categorical_crossentropy", "binary": "binary_crossentropy",
            "regression": "mse"}[task]


def make_metrics(names: list[str] | None, task: str) -> list[Any]:
    """Metric objects with fixed names, so reported keys are exactly NAME and val_NAME."""
    import keras

    factories = {
        "accuracy": (lambda: keras.metrics.SparseCategoricalAccuracy(name="accuracy"))
        if task == "multiclass" else (lambda: keras.metrics.BinaryAccuracy(name="accuracy")),
        "precision": lambda: keras.metrics.Precision(name="precision"),
        "recall": lambda: keras.metrics.Recall(name="recall"),
        "auc": lambda: keras.metrics.AUC(name="auc"),
        "mae": lambda: keras.metrics.MeanAbsoluteError(name="mae"),
        "mse": lambda: keras.metrics.MeanSquaredError(name="mse"),
        "rmse": lambda: keras.metrics.RootMeanSquaredError(name="rmse"),
    }
    return [factories[n]() for n in (names or default_metrics(task))]


def compile_model(model: Any, train: TrainSpec, task: str) -> None:
    """Compile with keyword arguments only (Keras 3 takes positional ones differently). Under
    ``mixed_float16`` Keras wraps the optimizer in its LossScaleOptimizer itself."""
    model.compile(optimizer=make_optimizer(train), loss=make_loss(task),
                  metrics=make_metrics(train.metrics, task),
                  steps_per_execution=int(train.steps_per_execution),
                  jit_compile=_jit(train))


def _jit(train: TrainSpec) -> Any:
    """The spec's XLA choice; ``auto`` in a driver whose GPUs are hidden is off (Keras' auto
    sees the machine's GPUs and would compile XLA for a model that runs on the CPU)."""
    from ..cluster.devices import driver_gpus_hidden

    return False if train.jit_compile == "auto" and driver_gpus_hidden() else train.jit_compile


def apply_jit_compile(model: Any, train: TrainSpec) -> None:
    """``train.jit_compile`` on a model the user compiled (a hypermodel's ``build``): set only
    when the spec chose (or in a driver without GPUs), so ``auto`` leaves the user's own
    choice alone."""
    jit = _jit(train)
    if jit != "auto" and getattr(model, "compiled", False):
        model.jit_compile = bool(jit)


@contextlib.contextmanager
def precision_policy(train: TrainSpec) -> Iterator[None]:
    """Keras' global dtype policy set to ``train.mixed_precision`` while models are built
    (layers keep the policy they were made under), then put back as it was."""
    if train.mixed_precision is None:
        yield
        return
    import keras

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(train.mixed_precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def _schedule(train: TrainSpec, spec: LRScheduleSpec):
    base = float(train.learning_rate)
    epochs = int(train.epochs)

    def step(epoch: int, lr: float) -> float:
        if spec.type == "step":
            return base * spec.drop ** (epoch // spec.every)
        if spec.type == "exponential":
            return base * spec.drop ** epoch
        cosine = 0.5 * (1 + math.cos(math.pi * min(epoch, epochs) / epochs))
        return base * (spec.min_factor + (1 - spec.min_factor) * cosine)

    return step


def make_callbacks(train: TrainSpec) -> list[Any]:
    """EarlyStopping, ReduceLROnPlateau and the learning-rate schedule, as the spec asks."""
    import keras

    callbacks: list[Any] = []
    if train.early_stopping is not None:
        es = train.early_stopping
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=es.monitor, patience=es.patience, min_delta=es.min_delta, mode=es.mode))
    if train.reduce_lr_on_plateau is not None:
        rl = train.reduce_lr_on_plateau
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=rl.monitor, factor=rl.factor, patience=rl.patience, min_lr=rl.min_lr,
            mode=rl.mode))
    if train.lr_schedule is not None:
        callbacks.append(keras.callbacks.LearningRateScheduler(
            _schedule(train, train.lr_schedule)))
    return callbacks
