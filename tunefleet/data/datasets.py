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


class TrainingData:
    """The train and validation splits: what trials see (shared via Ray's object store).

    With ``scale`` set, the stored images (``stored_x_train``, ``stored_x_val``) are raw
    pixels (uint8: a quarter of float32's bytes in the object store and in a trial's tensors)
    and the model inputs are ``float32(pixels) * scale``: computed by the trial's ``tf.data``
    pipeline per batch (epoch_data.py), or here on first access of ``x_train``/``x_val``.
    Without ``scale`` the stored arrays are the model inputs.

    Only a builder's trials scale per batch: a hypermodel's ``fit`` takes arrays, so its study
    ships :meth:`as_inputs` (float32 in the object store, shared zero-copy by a node's trials)
    rather than have each trial build and keep a float32 copy of its own.
    """

    def __init__(self, info: DataInfo, x_train: np.ndarray, y_train: np.ndarray,
                 x_val: np.ndarray, y_val: np.ndarray, scale: Optional[float] = None):
        self.info, self.y_train, self.y_val, self.scale = info, y_train, y_val, scale
        self.stored_x_train, self.stored_x_val = x_train, x_val
        self._inputs: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_inputs": {}}  # ship the compact arrays only

    def _scaled(self, name: str, stored: np.ndarray) -> np.ndarray:
        if self.scale is None:
            return stored
        if name not in self._inputs:
            self._inputs[name] = image_inputs(stored, self.scale)
        return self._inputs[name]

    def model_inputs(self, stored: np.ndarray) -> np.ndarray:
        """Model inputs of some stored rows (``stored_x_train[:8]``, say), computed for just
        those rows and not kept: what a caller that needs a few rows uses."""
        return stored if self.scale is None else image_inputs(stored, self.scale)

    def as_inputs(self) -> "TrainingData":
        """The same splits with the model inputs stored (float32 for compact images; ``self``
        when they already are): what a hypermodel study ships to its trials."""
        if self.scale is None:
            return self
        train, val = (self._inputs.get(name) for name in ("train", "val"))  # none made twice
        return TrainingData(self.info,
                            self.model_inputs(self.stored_x_train) if train is None else train,
                            self.y_train,
                            self.model_inputs(self.stored_x_val) if val is None else val,
                            self.y_val)

    @property
    def x_train(self) -> np.ndarray:
        """The training split's model inputs (float32)."""
        return self._scaled("train", self.stored_x_train)

    @property
    def x_val(self) -> np.ndarray:
        """The validation split's model inputs (float32)."""
        return self._scaled("val", self.stored_x_val)


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

    def with_array_inputs(self) -> "Dataset":
        """This dataset with the training splits stored as model inputs (see
        :meth:`TrainingData.as_inputs`): for a hypermodel, whose ``fit`` takes arrays."""
        as_inputs = getattr(self.training, "as_inputs", None)  # an image folder has no arrays
        return self if as_inputs is None else replace(self, training=as_inputs())


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

    ``dataset: image_folder`` is only listed and split here: its trials stream the images
    (:mod:`.image_folder`).
    """
    if spec.dataset == "image_folder":
        from .image_folder import list_image_folder

        return list_image_folder(spec)
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

    # Pixels that fit in a byte travel as uint8 and are scaled in the trial (TrainingData).
    compact = prep.kind == "images" and _bytes_fit(x, raw.x_val)

    def transform(a: Any, stored: bool = False) -> np.ndarray:
        if compact and stored:
            a = np.asarray(a)
            return (a[..., None] if a.ndim == 3 else a).astype("uint8", copy=False)
        if prep.kind == "images":
            return image_inputs(a, prep.scale)
        if prep.kind == "tabular":
            return standardize(a, mean, variance)
        return np.asarray(a, dtype="float32")

    x_train, y_train = transform(x[train], stored=True), y[train]
    if y_val_given is not None:
        x_val, y_val = transform(raw.x_val, stored=True), y_val_given
    else:
        x_val, y_val = transform(x[val], stored=True), y[val]
    if y_test is None:
        y_test = y[test]
    x_test = transform(raw_test)
    if raw.frame is not None and not has_test:
        raw_test = raw.frame.iloc[test]
    info = DataInfo(name=spec.dataset, task=task, input_shape=tuple(x_train.shape[1:]),
                    num_classes=len(class_names), class_names=class_names)
    training = TrainingData(info, x_train, y_train, x_val, y_val,
                            scale=prep.scale if compact else None)
    return Dataset(training, x_test, y_test, prep, raw_test)


def _bytes_fit(*arrays: Any) -> bool:
    """Whether every value of ``arrays`` (None skipped) is a whole number in 0..255, so the
    images can be stored as uint8 without changing one pixel."""
    for a in arrays:
        if a is None:
            continue
        a = np.asarray(a)
        if a.dtype == np.uint8:
            continue
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            return False
        if a.size and (a.min() < 0 or a.max() > 255 or (
                np.issubdtype(a.dtype, np.floating) and not np.all(np.mod(a, 1) == 0))):
            return False
    return True


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
    An image folder's test split stays where it is: only its file list is written.
    """
    from .image_folder import ImageFolderData, save_image_folder_test

    directory.mkdir(parents=True, exist_ok=True)
    prep, raw = dataset.preprocessing, dataset.raw_test
    arrays: dict[str, np.ndarray] = {"y": dataset.y_test}
    if isinstance(dataset.training, ImageFolderData):
        written = save_image_folder_test(dataset, directory)
    else:
        if prep is not None and prep.kind == "images" and raw is not None:
            raw = np.asarray(raw)
            arrays["x_raw"] = (raw.astype("float32") if np.issubdtype(raw.dtype, np.floating)
                               else raw)
        else:
            arrays["x"] = dataset.x_test
            if isinstance(raw, np.ndarray):
                arrays["x_raw"] = raw
        written = directory / "test.npz"
        np.savez_compressed(written, **arrays)  # type: ignore[arg-type]
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
    return written


def load_test_split(directory: Path) -> tuple[Any, np.ndarray, dict]:
    """Read back what :func:`save_test_split` wrote: model inputs, labels, data description.

    An image folder's model inputs are a ``tf.data`` pipeline that streams its test files
    (batched, in file order), not an array."""
    from .image_folder import IMAGE_FOLDER_FILE, load_image_folder_test

    meta = json.loads((directory / "info.json").read_text())
    if (directory / IMAGE_FOLDER_FILE).is_file():
        images, labels = load_image_folder_test(directory)
        return images, labels, meta
    with np.load(directory / "test.npz") as arrays:
        if "x" in arrays.files:
            x = arrays["x"]
        else:
            prep = Preprocessing.read(directory)
            x = image_inputs(arrays["x_raw"], prep.scale if prep else 1.0)
        y = arrays["y"]
    return x, y, meta


def load_raw_test_rows(directory: Path) -> Any:
    """The test rows as read, for a model that takes raw rows: CSV rows (pandas, the label
    column included), an array of raw examples, or an image folder's test files (paths)."""
    from .image_folder import IMAGE_FOLDER_FILE, report_root

    if (directory / IMAGE_FOLDER_FILE).is_file():
        meta = json.loads((directory / IMAGE_FOLDER_FILE).read_text())
        root = report_root(meta["root"])
        return np.asarray([f"{root.rstrip('/')}/{f}" for f in meta["files"]])
    if (directory / TEST_ROWS_FILE).is_file():
        import pandas as pd

        prep = Preprocessing.read(directory)
        text = {c.name: str for c in (prep.columns if prep else []) if c.categories is not None}
        if prep and prep.target and any(isinstance(v, str) for v in prep.labels):
            text[prep.target] = str
        return pd.read_csv(directory / TEST_ROWS_FILE, dtype=text)
    with np.load(directory / "test.npz") as arrays:
        return arrays["x_raw"] if "x_raw" in arrays.files else arrays["x"]
