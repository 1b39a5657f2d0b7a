"""Datasets by name, loaded once in the driver and split with a fixed seed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .labels import Task, encode_labels, infer_task
from .preprocessing import (Preprocessing, fit_standardizer, image_inputs, image_scale,
                            standardize)
from .sources import (DataNotFoundError, IMAGE_DATASETS, RawData, find_image_dataset, read_csv,
                      read_idx_dir, read_npz)

__all__ = ["DataInfo", "TrainingData", "Dataset", "load_dataset", "save_test_split",
           "load_test_split", "load_raw_test_rows", "DATASET_LOADERS", "DATASET_TASKS",
           "infer_task", "arrays_as_raw", "DataNotFoundError"]

TEST_ROWS_FILE = "test_rows.csv"


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
    preprocessing: Optional[Preprocessing] = None  # raw example → model input
    raw_test: Any = None  # the test rows as read: an array, or CSV rows (pandas)

    @property
    def info(self) -> DataInfo:
        return self.training.info


def _digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 8x8 grey images with pixel values 0..16, scaled by 1/16 into [0, 1]
    return bunch.images, bunch.target, "multiclass", [str(c) for c in bunch.target_names], 1 / 16


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    return bunch.data, bunch.target, "binary", [str(c) for c in bunch.target_names], None


def _diabetes():
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    return bunch.data, bunch.target, "regression", [], None


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


def _flat(y: Any) -> np.ndarray:
    y = np.asarray(y)
    return y.reshape(len(y), -1)[:, 0] if y.ndim > 1 else y


def _raw(spec: Any, arrays: Optional[RawData]) -> RawData:
    """Raw arrays for ``spec.dataset``."""
    name = spec.dataset
    if name == "arrays":
        if arrays is None:
            raise ValueError("dataset: arrays is filled by the Python API; pass data=(x, y) to "
                             "tunefleet.run, or name a dataset")
        return arrays
    if name in DATASET_LOADERS:
        x, y, _, class_names, scale = DATASET_LOADERS[name]()
        return RawData(x, y, class_names=class_names, source=f"scikit-learn {name}", scale=scale)
    if name in IMAGE_DATASETS:
        return find_image_dataset(name, spec.path, spec.download)
    if name == "csv":
        return read_csv(spec.path, spec.target)
    if name == "npz":
        return read_npz(spec.path)
    if name == "idx":
        raw = read_idx_dir(spec.path) if Path(spec.path).is_dir() else None
        if raw is None:
            raise DataNotFoundError(f"data.path {spec.path!r} holds no IDX files named "
                                    "train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]")
        return raw
    raise ValueError(f"unknown dataset {name!r}")


def _last(idx: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Keras' ``validation_split``: the last ``fraction`` of the rows, in their order."""
    cut = int(np.floor(len(idx) * (1.0 - fraction)))
    return idx[:cut], idx[cut:]


def _split(spec: Any, y: np.ndarray, task: Task, has_test: bool,
           has_val: bool) -> tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """Row indices of the train, validation and test splits (None where the data has its own).

    ``data.split: random`` shuffles with ``data.seed`` and stratifies classes; ``last`` keeps
    the row order: test is the last rows, validation the rows before them.
    """
    from sklearn.model_selection import train_test_split

    def cut(idx: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        if spec.split == "last":
            return _last(idx, fraction)
        return tuple(train_test_split(idx, test_size=fraction, random_state=spec.seed,
                                      stratify=y[idx] if task != "regression" else None))

    rest, test = (np.arange(len(y)), None) if has_test else cut(np.arange(len(y)),
                                                                spec.test_fraction)
    val_share = spec.validation_fraction / (1.0 if has_test else 1.0 - spec.test_fraction)
    train, val = (rest, None) if has_val else cut(rest, val_share)
    limit = spec.max_train_samples
    if limit and limit < len(train):
        if spec.split == "last":
            train = train[-limit:]  # the rows nearest the validation rows
        else:
            train = train_test_split(train, train_size=limit, random_state=spec.seed,
                                     stratify=y[train] if task != "regression" else None)[0]
    return train, val, test


def load_dataset(spec: Any, arrays: Optional[RawData] = None) -> Dataset:
    """Load ``spec.dataset`` (a :class:`~tunefleet.spec.sections.DataSpec`) and split it.

    Splits follow ``spec.split`` (see :func:`_split`). Class labels become indices 0..k-1
    (:mod:`.labels`). Images are scaled to [0, 1]; tabular features are standardized with
    statistics of the training split only. ``Dataset.preprocessing`` records both, so that the
    exported model can take raw rows.
    """
    raw = _raw(spec, arrays)
    x, y = np.asarray(raw.x), _flat(raw.y)
    has_test, has_val = raw.x_test is not None, raw.x_val is not None
    others = [_flat(raw.y_test)] if has_test else []
    others += [_flat(raw.y_val)] if has_val else []
    task = (DATASET_TASKS.get(spec.dataset) or spec.task
            or infer_task(np.concatenate([y, *others])))
    (y, *others), class_names, labels = encode_labels(task, [y, *others], raw.class_names)
    y_test = others.pop(0) if has_test else None
    y_val_given = others.pop(0) if has_val else None
    train, val, test = _split(spec, y, task, has_test, has_val)
    raw_test = raw.x_test if has_test else x[test]
    prep = Preprocessing("none", tuple(x.shape[1:]), task, labels)
    if x.ndim >= 3:
        prep = replace(prep, kind="images",
                       scale=raw.scale if raw.scale is not None else image_scale(x))
    elif x.ndim == 2:
        mean, variance = fit_standardizer(x[train])
        prep = replace(prep, kind="tabular", columns=raw.columns, mean=mean.tolist(),
                       variance=variance.tolist(),
                       target=spec.target if raw.frame is not None else None)

    def transform(a: Any) -> np.ndarray:
        if prep.kind == "images":
            return image_inputs(a, prep.scale)
        if prep.kind == "tabular":
            return standardize(a, mean, variance)
        return np.asarray(a, dtype="float32")

    x_train, y_train = transform(x[train]), y[train]
    if y_val_given is not None:
        x_val, y_val = transform(raw.x_val), y_val_given
    else:
        x_val, y_val = transform(x[val]), y[val]
    if y_test is None:
        y_test = y[test]
    x_test = transform(raw_test)
    if raw.frame is not None and not has_test:
        raw_test = raw.frame.iloc[test]
    info = DataInfo(name=spec.dataset, task=task, input_shape=tuple(x_train.shape[1:]),
                    num_classes=len(class_names), class_names=class_names)
    return Dataset(TrainingData(info, x_train, y_train, x_val, y_val), x_test, y_test, prep,
                   raw_test)


def _pair(name: str, pair: Any,
          row_shape: Optional[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """``pair`` as two arrays with as many rows, each row shaped ``row_shape`` (when given)."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"{name} must be a pair (x, y), got {type(pair).__name__}")
    a, b = np.asarray(pair[0]), np.asarray(pair[1])
    if len(a) != len(b):
        raise ValueError(f"{name}: x has {len(a)} rows but y has {len(b)}; they must match")
    if row_shape is not None and a.shape[1:] != row_shape:
        raise ValueError(f"{name}: x has shape {a.shape[1:]} per row, the training x has "
                         f"{row_shape}")
    return a, b


def arrays_as_raw(x: Any, y: Any, validation_data: Optional[tuple] = None,
                  test_data: Optional[tuple] = None) -> RawData:
    """User arrays (NumPy or array-like) as :class:`RawData`; ``validation_data`` and
    ``test_data`` are optional ``(x, y)`` pairs, split from ``x, y`` when not given."""
    xs, ys = _pair("x, y", (x, y), None)
    val = None if validation_data is None else _pair("validation_data", validation_data,
                                                     xs.shape[1:])
    test = None if test_data is None else _pair("test_data", test_data, xs.shape[1:])
    return RawData(xs, ys, x_test=test[0] if test else None, y_test=test[1] if test else None,
                   source="arrays", x_val=val[0] if val else None,
                   y_val=val[1] if val else None)


def save_test_split(dataset: Dataset, directory: Path) -> Path:
    """Write the held-out test split, the data description and the preprocessing for the report.

    Images are stored raw (as read: uint8 pixels stay uint8) and rebuilt on load; tabular test
    rows are stored as model inputs and as read (``x_raw``, or ``test_rows.csv`` for a CSV).
    """
    directory.mkdir(parents=True, exist_ok=True)
    prep, raw = dataset.preprocessing, dataset.raw_test
    arrays: dict[str, np.ndarray] = {"y": dataset.y_test}
    if prep is not None and prep.kind == "images" and raw is not None:
        raw = np.asarray(raw)
        arrays["x_raw"] = raw.astype("float32") if np.issubdtype(raw.dtype, np.floating) else raw
    else:
        arrays["x"] = dataset.x_test
        if isinstance(raw, np.ndarray):
            arrays["x_raw"] = raw
    np.savez_compressed(directory / "test.npz", **arrays)  # type: ignore[arg-type]
    if raw is not None and not isinstance(raw, np.ndarray):
        raw.to_csv(directory / TEST_ROWS_FILE, index=False)
    if prep is not None:
        prep.write(directory)
    info = dataset.info
    meta = {"name": info.name, "task": info.task, "input_shape": list(info.input_shape),
            "num_classes": info.num_classes, "class_names": info.class_names,
            "sizes": {"train": len(dataset.training.y_train), "validation": len(dataset.training.y_val),
                      "test": len(dataset.y_test)}}
    (directory / "info.json").write_text(json.dumps(meta, indent=2))
    return directory / "test.npz"


def load_test_split(directory: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read back what :func:`save_test_split` wrote: model inputs, labels, data description."""
    with np.load(directory / "test.npz") as arrays:
        if "x" in arrays.files:
            x = arrays["x"]
        else:
            prep = Preprocessing.read(directory)
            x = image_inputs(arrays["x_raw"], prep.scale if prep else 1.0)
        y = arrays["y"]
    return x, y, json.loads((directory / "info.json").read_text())


def load_raw_test_rows(directory: Path) -> Any:
    """The test rows as read, for a model that takes raw rows: CSV rows (pandas, the label
    column included) or an array of raw examples."""
    if (directory / TEST_ROWS_FILE).is_file():
        import pandas as pd

        prep = Preprocessing.read(directory)
        text = {c.name: str for c in (prep.columns if prep else []) if c.categories is not None}
        if prep and prep.target and any(isinstance(v, str) for v in prep.labels):
            text[prep.target] = str
        return pd.read_csv(directory / TEST_ROWS_FILE, dtype=text)
    with np.load(directory / "test.npz") as arrays:
        return arrays["x_raw"] if "x_raw" in arrays.files else arrays["x"]
