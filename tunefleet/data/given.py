"""Arrays passed to the model exactly as the user gave them (the KerasTuner drop-in's data):
no scaling, standardizing or label encoding, and no rows held out beyond the user's own
validation (and, if given, test) split — a hypermodel then sees what ``tuner.search`` gave it."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..spec import SpecError
from .datasets import DataInfo, Dataset, TrainingData
from .labels import infer_task
from .preprocessing import Preprocessing

__all__ = ["given_dataset"]


def _task(y: np.ndarray) -> tuple[str, int]:
    """The task and class count of labels as given: one-hot rows are classes; otherwise as
    the spec path infers it, and a regression target when that cannot tell."""
    if y.ndim > 1 and y.shape[-1] > 1:
        return "multiclass", int(y.shape[-1])
    flat = y.reshape(len(y), -1)[:, 0] if y.ndim > 1 else y
    try:
        task = infer_task(flat)
    except SpecError:  # ambiguous integer labels: the user's model decides, not us
        task = "regression"
    if task == "regression":
        return task, 0
    return task, int(len(np.unique(flat)))


def given_dataset(x: np.ndarray, y: np.ndarray, validation: tuple[np.ndarray, np.ndarray],
                  test: Optional[tuple[np.ndarray, np.ndarray]] = None) -> Dataset:
    """A :class:`Dataset` holding the arrays unchanged; without ``test`` the test split is
    empty (the report then has no test metrics)."""
    task, classes = _task(np.asarray(y))
    info = DataInfo(name="arrays", task=task, input_shape=tuple(x.shape[1:]),  # type: ignore[arg-type]
                    num_classes=classes)
    x_test, y_test = test if test is not None else (x[:0], y[:0])
    prep = Preprocessing("none", tuple(x.shape[1:]), task)
    raw: Any = x_test
    return Dataset(TrainingData(info, x, y, validation[0], validation[1]), x_test, y_test, prep,
                   raw)
