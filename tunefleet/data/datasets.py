"""Datasets by name, loaded once in the driver and split with a fixed seed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import numpy as np

from .sources import (DataNotFoundError, IMAGE_DATASETS, RawData, find_image_dataset, read_csv,
                      read_idx_dir, read_npz)

__all__ = ["DataInfo", "TrainingData", "Dataset", "load_dataset", "save_test_split",
           "load_test_split", "DATASET_LOADERS", "DATASET_TASKS", "infer_task", "arrays_as_raw",
           "DataNotFoundError"]

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
    "mnist": "multiclass", "fashion_mnist": "multiclass", "cifar10": "multiclass",
    "cifar100": "multiclass",
}

DATASET_LOADERS: dict[str, Callable[[], tuple]] = {
    "digits": _digits,
    "breast_cancer": _breast_cancer,
    "diabetes": _diabetes,
}


def infer_task(y: np.ndarray) -> Task:
    """``binary``/``multiclass`` for integer-valued labels with few classes, else regression."""
    values = np.unique(y)
    integral = np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_) or (
        np.issubdtype(y.dtype, np.floating) and np.all(np.mod(values, 1) == 0))
    if integral and len(values) <= max(2, min(100, len(y) // 10)):
        return "binary" if len(values) == 2 else "multiclass"
    return "regression"


def _images(x: np.ndarray) -> np.ndarray:
    """Images as float32 in [0, 1] with a channel axis (grayscale gets one)."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if np.issubdtype(x.dtype, np.integer):
        return (x / np.float32(255.0)).astype("float32")
    return x.astype("float32")


def _labels(y: np.ndarray, task: Task) -> np.ndarray:
    y = np.asarray(y).reshape(len(y), -1)[:, 0] if np.asarray(y).ndim > 1 else np.asarray(y)
    return y.astype("float32") if task in ("binary", "regression") else y.astype("int32")


def _raw(spec: Any, arrays: Optional[RawData]) -> tuple[RawData, Task]:
    """Raw arrays for ``spec.dataset`` and its task."""
    name = spec.dataset
    if name == "arrays":
        if arrays is None:
            raise ValueError("dataset: arrays is filled by the Python API; pass data=(x, y) to "
                             "tunefleet.run, or name a dataset")
        raw = arrays
    elif name in DATASET_LOADERS:
        x, y, _, class_names = DATASET_LOADERS[name]()
        raw = RawData(x, y, class_names=class_names, source=f"scikit-learn {name}")
    elif name in IMAGE_DATASETS:
        raw = find_image_dataset(name, spec.path, spec.download)
    elif name == "csv":
        x, y, class_names, categorical = read_csv(spec.path, spec.target)
        raw = RawData(x, y, class_names=class_names, source=str(spec.path))
        if categorical and spec.task == "regression":
            raise ValueError(f"data.target {spec.target!r} holds text, so data.task cannot be "
                             "regression")
    elif name == "npz":
        raw = read_npz(spec.path)
    elif name == "idx":
        raw = read_idx_dir(spec.path) if Path(spec.path).is_dir() else None
        if raw is None:
            raise DataNotFoundError(f"data.path {spec.path!r} holds no IDX files named "
                                    "train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]")
    else:
        raise ValueError(f"unknown dataset {name!r}")
    task = DATASET_TASKS.get(name) or spec.task or infer_task(np.asarray(raw.y))
    return raw, task


def load_dataset(spec: Any, arrays: Optional[RawData] = None) -> Dataset:
    """Load ``spec.dataset`` (a :class:`~tunefleet.spec.sections.DataSpec`) and split it.

    The validation split (and a test split, for data without an official one) is stratified
    for classification. Images are scaled to [0, 1]; tabular features are standardized with
    statistics of the training split only.
    """
    from sklearn.model_selection import train_test_split

    raw, task = _raw(spec, arrays)
    x = np.asarray(raw.x)
    images = x.ndim >= 3
    if images:
        x = _images(x)
    y = _labels(raw.y, task)
    seed = spec.seed
    stratify = (lambda labels: labels if task != "regression" else None)
    if raw.x_test is not None:
        x_rest, y_rest = x, y
        x_test = _images(raw.x_test) if images else np.asarray(raw.x_test, dtype="float32")
        y_test = _labels(raw.y_test, task)
        val_share = spec.validation_fraction
    else:
        x_rest, x_test, y_rest, y_test = train_test_split(
            x, y, test_size=spec.test_fraction, random_state=seed, stratify=stratify(y))
        val_share = spec.validation_fraction / (1.0 - spec.test_fraction)
    if raw.x_val is not None:
        x_train, y_train = x_rest, y_rest
        x_val = _images(raw.x_val) if images else np.asarray(raw.x_val, dtype="float32")
        y_val = _labels(raw.y_val, task)
    else:
        x_train, x_val, y_train, y_val = train_test_split(
            x_rest, y_rest, test_size=val_share, random_state=seed, stratify=stratify(y_rest))
    if spec.max_train_samples and spec.max_train_samples < len(y_train):
        x_train, _, y_train, _ = train_test_split(
            x_train, y_train, train_size=spec.max_train_samples, random_state=seed,
            stratify=stratify(y_train))
    if not images and x.ndim == 2:
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0) + 1e-8
        x_train, x_val, x_test = ((a - mean) / std for a in (x_train, x_val, x_test))
    num_classes = 0
    if task != "regression":
        num_classes = int(max(np.max(y), np.max(y_test))) + 1
        if task == "binary":
            num_classes = 2
    class_names = raw.class_names or ([str(i) for i in range(num_classes)] if num_classes else [])
    info = DataInfo(name=spec.dataset, task=task, input_shape=tuple(x_train.shape[1:]),
                    num_classes=num_classes, class_names=class_names)
    training = TrainingData(info, x_train.astype("float32"), y_train, x_val.astype("float32"),
                            y_val)
    return Dataset(training, x_test.astype("float32"), y_test)


def arrays_as_raw(x: Any, y: Any, validation_data: Optional[tuple] = None,
                  test_data: Optional[tuple] = None) -> RawData:
    """User arrays (NumPy or array-like) as :class:`RawData`; ``validation_data`` and
    ``test_data`` are optional ``(x, y)`` pairs, split from ``x, y`` when not given."""
    pairs = {"x, y": (x, y), "validation_data": validation_data, "test_data": test_data}
    arrays: dict[str, Optional[tuple[np.ndarray, np.ndarray]]] = {}
    for name, pair in pairs.items():
        if pair is None:
            arrays[name] = None
            continue
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"{name} must be a pair (x, y), got {type(pair).__name__}")
        a, b = np.asarray(pair[0]), np.asarray(pair[1])
        if len(a) != len(b):
            raise ValueError(f"{name}: x has {len(a)} rows but y has {len(b)}; they must match")
        if name != "x, y" and a.shape[1:] != np.asarray(x).shape[1:]:
            raise ValueError(f"{name}: x has shape {a.shape[1:]} per row, the training x has "
                             f"{np.asarray(x).shape[1:]}")
        arrays[name] = (a, b)
    (xs, ys), val, test = arrays["x, y"], arrays["validation_data"], arrays["test_data"]
    return RawData(xs, ys, *(test or (None, None)), source="arrays",
                   x_val=val[0] if val else None, y_val=val[1] if val else None)


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
