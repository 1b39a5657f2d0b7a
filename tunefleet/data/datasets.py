"""Datasets by name, loaded once in the driver and split with a fixed seed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np

__all__ = ["DataInfo", "TrainingData", "Dataset", "load_dataset", "save_test_split",
           "load_test_split", "DATASET_LOADERS", "DATASET_TASKS"]

Task = Literal["multiclass", "binary", "regression"]


@dataclass(frozen=True)
class DataInfo:
    """What a model builder needs to know about the data."""

    name: str
    task: Task
    input_shape: tuple[int, ...]
    num_classes: int  # 0 for regression
    class_names: list[str] = field(default_factory=list)

    @property
    def num_outputs(self) -> int:
        """Units of the output layer: classes for multiclass, 1 otherwise."""
        return self.num_classes if self.task == "multiclass" else 1


@dataclass(frozen=True)
class TrainingData:
    """The train and validation splits: what trials see (shared via Ray's object store)."""

    info: DataInfo
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


@dataclass(frozen=True)
class Dataset:
    """All three splits; the test split stays in the driver and goes to disk for the report."""

    training: TrainingData
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def info(self) -> DataInfo:
        return self.training.info


def _digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype("float32")[..., None]  # 8x8 grey images in [0, 1]
    return x, bunch.target.astype("int32"), "multiclass", [str(c) for c in bunch.target_names]


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    return (bunch.data.astype("float32"), bunch.target.astype("float32"), "binary",
            [str(c) for c in bunch.target_names])


def _diabetes():
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    return bunch.data.astype("float32"), bunch.target.astype("float32"), "regression", []


DATASET_TASKS: dict[str, Task] = {
    "digits": "multiclass", "breast_cancer": "binary", "diabetes": "regression",
}

DATASET_LOADERS: dict[str, Callable[[], tuple]] = {
    "digits": _digits,
    "breast_cancer": _breast_cancer,
    "diabetes": _diabetes,
}


def load_dataset(name: str, validation_fraction: float, test_fraction: float,
                 seed: int) -> Dataset:
    """Load ``name`` and split it train/validation/test (stratified for classification).

    Tabular features are standardized with statistics of the training split only.
    """
    from sklearn.model_selection import train_test_split

    if name not in DATASET_LOADERS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASET_LOADERS)}")
    x, y, task, class_names = DATASET_LOADERS[name]()
    stratify = y if task != "regression" else None
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=stratify)
    val_share = validation_fraction / (1.0 - test_fraction)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_share, random_state=seed,
        stratify=y_rest if stratify is not None else None)
    if x.ndim == 2:
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0) + 1e-8
        x_train, x_val, x_test = ((a - mean) / std for a in (x_train, x_val, x_test))
    num_classes = int(len(np.unique(y))) if task != "regression" else 0
    info = DataInfo(name=name, task=task, input_shape=tuple(x.shape[1:]),
                    num_classes=num_classes, class_names=class_names)
    training = TrainingData(info, x_train.astype("float32"), y_train, x_val.astype("float32"),
                            y_val)
    return Dataset(training, x_test.astype("float32"), y_test)


def save_test_split(dataset: Dataset, directory: Path) -> Path:
    """Write the held-out test split and the data description for the report."""
    directory.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(directory / "test.npz", x=dataset.x_test, y=dataset.y_test)
    info = dataset.info
    meta = {"name": info.name, "task": info.task, "input_shape": list(info.input_shape),
            "num_classes": info.num_classes, "class_names": info.class_names,
            "sizes": {"train": len(dataset.training.y_train), "validation": len(dataset.training.y_val),
                      "test": len(dataset.y_test)}}
    (directory / "info.json").write_text(json.dumps(meta, indent=2))
    return directory / "test.npz"


def load_test_split(directory: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read back what :func:`save_test_split` wrote."""
    arrays = np.load(directory / "test.npz")
    return arrays["x"], arrays["y"], json.loads((directory / "info.json").read_text())
