"""Where dataset files come from: IDX, ``.npz`` and CSV readers, and the image datasets Keras
knows (MNIST, Fashion-MNIST, CIFAR-10/100) found offline before any download is tried.

Every reader returns raw arrays; normalization and splitting happen in :mod:`.datasets`.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from numpy.typing import DTypeLike

from .preprocessing import Column, csv_columns, encode_frame

__all__ = ["RawData", "read_idx", "read_idx_dir", "read_npz", "read_csv", "find_image_dataset",
           "DataNotFoundError", "IMAGE_DATASETS", "DEBIAN_DATASETS"]

# Debian's `dataset-*` packages install IDX files here.
DEBIAN_DATASETS = Path("/usr/share/datasets")

_IDX_DTYPES: dict[int, DTypeLike] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4",
                                     0x0D: ">f4", 0x0E: ">f8"}


class DataNotFoundError(FileNotFoundError):
    """A dataset is nowhere tunefleet looked; the message lists each place and how to get it."""


@dataclass
class RawData:
    """Arrays as read; ``x_test`` is None when the dataset has no official test split."""

    x: np.ndarray
    y: np.ndarray
    x_test: Optional[np.ndarray] = None
    y_test: Optional[np.ndarray] = None
    class_names: list[str] = field(default_factory=list)
    source: str = ""
    x_val: Optional[np.ndarray] = None  # a validation split of the user's own (Python API)
    y_val: Optional[np.ndarray] = None
    scale: Optional[float] = None  # images: raw pixel value × scale = model input (default 1/255 for integers)
    frame: Any = None  # CSV: the rows as read (pandas), kept to save the raw test rows
    columns: list[Column] = field(default_factory=list)  # CSV: feature columns, in feature order


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """One IDX file (the MNIST format), gzipped or not."""
    path = Path(path)
    with _open(path) as handle:
        header = handle.read(4)
        if len(header) != 4 or header[:2] != b"\x00\x00" or header[2] not in _IDX_DTYPES:
            raise ValueError(f"{path} is not an IDX file (bad magic number {header!r})")
        ndim = header[3]
        shape = struct.unpack(f">{ndim}I", handle.read(4 * ndim))
        data = np.frombuffer(handle.read(), dtype=_IDX_DTYPES[header[2]])
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape}, file holds {data.size} values")
    return data.reshape(shape)


def _idx_file(directory: Path, prefixes: tuple[str, ...], kind: str) -> Optional[Path]:
    for prefix in prefixes:
        for suffix in ("", ".gz"):
            for sep in ("-", "."):
                candidate = directory / f"{prefix}-{kind}{sep}idx{3 if kind == 'images' else 1}-ubyte{suffix}"
                if candidate.is_file():
                    return candidate
    return None


def read_idx_dir(directory: str | Path) -> Optional[RawData]:
    """``train-images-idx3-ubyte[.gz]`` and friends in ``directory`` (None if absent)."""
    directory = Path(directory)
    files = [_idx_file(directory, ("train",), "images"), _idx_file(directory, ("train",), "labels"),
             _idx_file(directory, ("t10k", "test"), "images"),
             _idx_file(directory, ("t10k", "test"), "labels")]
    if files[0] is None or files[1] is None:
        return None
    x, y = read_idx(files[0]), read_idx(files[1])
    x_test = read_idx(files[2]) if files[2] and files[3] else None
    y_test = read_idx(files[3]) if files[2] and files[3] else None
    return RawData(x, y, x_test, y_test, source=str(directory))


def read_npz(path: str | Path) -> RawData:
    """An ``.npz`` with ``x_train, y_train[, x_test, y_test]`` (Keras' layout) or ``x, y``."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as arrays:
        names = set(arrays.files)
        if {"x_train", "y_train"} <= names:
            has_test = {"x_test", "y_test"} <= names
            return RawData(arrays["x_train"], arrays["y_train"],
                           arrays["x_test"] if has_test else None,
                           arrays["y_test"] if has_test else None, source=str(path))
        if {"x", "y"} <= names:
            return RawData(arrays["x"], arrays["y"], source=str(path))
    raise ValueError(f"{path} holds arrays {sorted(names)}; expected x_train, y_train "
                     "(and optionally x_test, y_test), or x, y")


def read_csv(path: str | Path, target: str) -> RawData:
    """Features (text columns one-hot encoded, in column order) and the ``target`` column as
    read: text labels stay text and become classes later, in :mod:`.labels`.

    Features are standardized later, on the training split only.
    """
    import pandas as pd

    frame = pd.read_csv(path)
    if target not in frame.columns:
        raise ValueError(f"{path} has no column {target!r}; its columns are "
                         f"{', '.join(map(str, frame.columns))}; set data.target")
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise ValueError(f"{path} has no feature columns besides {target!r}")
    if features.isna().any().any() or frame[target].isna().any():
        missing = [str(c) for c in frame.columns[frame.isna().any()]]
        raise ValueError(f"{path} has empty cells in {', '.join(missing)}; fill or drop them")
    columns = csv_columns(features)
    y_col = frame[target]
    y = (y_col.to_numpy() if pd.api.types.is_numeric_dtype(y_col)
         else y_col.astype(str).to_numpy(dtype=object))
    return RawData(encode_frame(features, columns), y, source=str(path), frame=frame,
                   columns=columns)


def _keras_cache() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def _cifar_batches(directory: Path, train: list[str], test: str, label_key: str) -> RawData:
    def load(name: str) -> tuple[np.ndarray, np.ndarray]:
        with open(directory / name, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        data = batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return data, np.asarray(batch[label_key.encode()])

    parts = [load(n) for n in train]
    x_test, y_test = load(test)
    return RawData(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                   x_test, y_test, source=str(directory))


def _mnist_like(npz: str, idx_dir: str) -> Callable[[Path], Optional[RawData]]:
    def from_cache(cache: Path) -> Optional[RawData]:
        if (cache / npz).is_file():
            return read_npz(cache / npz)
        return read_idx_dir(cache / idx_dir) if (cache / idx_dir).is_dir() else None
    return from_cache


def _cifar(folder: str, train: list[str], test: str, label_key: str):
    def from_cache(cache: Path) -> Optional[RawData]:
        # Keras 3 extracts into "<folder>-target/<folder>", Keras 2 into "<folder>".
        for directory in (cache / f"{folder}-target" / folder, cache / folder):
            if (directory / test).is_file():
                return _cifar_batches(directory, train, test, label_key)
        return None
    return from_cache


@dataclass(frozen=True)
class ImageDataset:
    """An image dataset Keras can download, where its files may already be, and its classes."""

    keras_module: str
    in_cache: Callable[[Path], Optional[RawData]]
    class_names: tuple[str, ...]
    debian: Optional[str] = None  # folder under /usr/share/datasets, and the package name

    def places(self, cache: Path) -> list[str]:
        places = [f"Keras' cache {cache}"]
        if self.debian:
            places.append(f"{DEBIAN_DATASETS / self.debian} (Debian package dataset-{self.debian})")
        return places


_FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
            "Bag", "Ankle boot")
_CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

IMAGE_DATASETS: dict[str, ImageDataset] = {
    "mnist": ImageDataset("mnist", _mnist_like("mnist.npz", "mnist"), tuple(map(str, range(10)))),
    "fashion_mnist": ImageDataset("fashion_mnist", _mnist_like("fashion-mnist.npz", "fashion-mnist"),
                                  _FASHION, debian="fashion-mnist"),
    "cifar10": ImageDataset("cifar10", _cifar("cifar-10-batches-py",
                                              [f"data_batch_{i}" for i in range(1, 6)],
                                              "test_batch", "labels"), _CIFAR10),
    "cifar100": ImageDataset("cifar100", _cifar("cifar-100-python", ["train"], "test",
                                                "fine_labels"), tuple(map(str, range(100)))),
}


def _from_path(path: Path) -> Optional[RawData]:
    if path.is_dir():
        return read_idx_dir(path)
    if path.suffix == ".npz" and path.is_file():
        return read_npz(path)
    return None


def find_image_dataset(name: str, path: Optional[str], download: bool) -> RawData:
    """``name`` from ``path``, Keras' cache, Debian's package, or (if allowed) a download.

    Raises :class:`DataNotFoundError` naming every place looked at and how to get the data.
    """
    spec = IMAGE_DATASETS[name]
    cache = _keras_cache()
    looked: list[str] = []
    if path:
        found = _from_path(Path(path).expanduser())
        if found is not None:
            return _named(found, spec)
        looked.append(f"data.path {path} (no IDX files named train-images-idx3-ubyte[.gz] or "
                      "train-labels-idx1-ubyte[.gz], and not an .npz)")
    found = spec.in_cache(cache)
    if found is not None:
        return _named(found, spec)
    looked.extend(spec.places(cache)[:1])
    if spec.debian:
        found = read_idx_dir(DEBIAN_DATASETS / spec.debian) if (
            DEBIAN_DATASETS / spec.debian).is_dir() else None
        if found is not None:
            return _named(found, spec)
        looked.append(spec.places(cache)[1])
    if download:
        try:
            import keras

            (x, y), (x_test, y_test) = getattr(keras.datasets, spec.keras_module).load_data()
            return _named(RawData(x, y, x_test, y_test, source=f"keras.datasets.{name}"), spec)
        except Exception as exc:  # noqa: BLE001 -- no network, a proxy, a truncated file: all mean "not here"
            looked.append(f"keras.datasets.{spec.keras_module}.load_data() "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})")
    else:
        looked.append("no download tried (data.download: false)")
    how = [(f"run `python -c \"import keras; keras.datasets.{spec.keras_module}.load_data()\"` "
            f"on a machine that is online and copy {cache} here")]
    if spec.debian:
        how.insert(0, f"`apt install dataset-{spec.debian}`")
    how.append("or point data.path at a folder of IDX files or an .npz with x_train, y_train, "
               "x_test, y_test")
    raise DataNotFoundError(f"dataset {name!r} was not found; looked in: " + "; ".join(looked)
                            + ". To get it: " + "; ".join(how))


def _named(raw: RawData, spec: ImageDataset) -> RawData:
    raw.class_names = list(spec.class_names)
    return raw
