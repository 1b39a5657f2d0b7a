"""How raw rows become model inputs (pixel scaling, one-hot text columns, standardization),
described as data so that the exported model can rebuild the same steps as Keras layers.

The driver computes every transformation exactly as the Keras layers do (``Rescaling``:
``x * scale``; ``Normalization``: ``(x - mean) / max(sqrt(variance), 1e-7)``, in float32), so
a model that takes raw rows predicts what the trained model predicted on transformed ones.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np

__all__ = ["Column", "Preprocessing", "csv_columns", "encode_frame", "image_inputs",
           "image_scale", "fit_standardizer", "standardize", "PREPROCESSING_FILE"]

PREPROCESSING_FILE = "preprocessing.json"
_EPSILON = np.float32(1e-7)  # keras.backend.epsilon(), the floor of Normalization's std


@dataclass(frozen=True)
class Column:
    """A CSV feature column; a text column lists its values in one-hot order."""

    name: str
    categories: Optional[list[str]] = None


@dataclass(frozen=True)
class Preprocessing:
    """Raw example → model input: ``images`` (``raw * scale``, plus a channel axis when the raw
    images have none), ``tabular`` (CSV ``columns`` encoded, then standardized with the
    training split's ``mean`` and ``variance``) or ``none``."""

    kind: Literal["images", "tabular", "none"]
    raw_shape: tuple[int, ...]
    task: str
    labels: list[Any] = field(default_factory=list)  # each class's original label value
    scale: float = 1.0
    columns: list[Column] = field(default_factory=list)  # empty for NumPy arrays
    mean: list[float] = field(default_factory=list)
    variance: list[float] = field(default_factory=list)
    target: Optional[str] = None  # CSV: the label column

    def write(self, directory: Path) -> Path:
        path = directory / PREPROCESSING_FILE
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def read(cls, directory: Path) -> Optional["Preprocessing"]:
        path = directory / PREPROCESSING_FILE
        if not path.is_file():  # a study written before preprocessing was saved
            return None
        raw = json.loads(path.read_text())
        raw["raw_shape"] = tuple(raw["raw_shape"])
        raw["columns"] = [Column(**c) for c in raw["columns"]]
        return cls(**raw)

    @property
    def adds_channel(self) -> bool:
        return self.kind == "images" and len(self.raw_shape) == 2


def image_inputs(x: np.ndarray, scale: float) -> np.ndarray:
    """Images as float32 ``x * scale`` (Keras' ``Rescaling``) with a channel axis (grayscale
    gets one)."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    return x.astype("float32") * np.float32(scale)


def image_scale(x: np.ndarray) -> float:
    """1/255 for integer pixels, 1 for images that are already floats."""
    return 1.0 / 255.0 if np.issubdtype(np.asarray(x).dtype, np.integer) else 1.0


def csv_columns(frame: Any) -> list[Column]:
    """Feature columns of a CSV frame; text columns with their sorted values."""
    import pandas as pd

    return [Column(str(name)) if pd.api.types.is_numeric_dtype(frame[name]) else
            Column(str(name), sorted(frame[name].astype(str).unique().tolist()))
            for name in frame.columns]


def encode_frame(frame: Any, columns: list[Column]) -> np.ndarray:
    """CSV rows as float32 features, column by column: a number stays one feature, a text
    column becomes one 0/1 feature per category."""
    parts = []
    for col in columns:
        values = frame[col.name]
        if col.categories is None:
            parts.append(values.to_numpy("float32")[:, None])
        else:
            text = values.astype(str).to_numpy()
            parts.append((text[:, None] == np.asarray(col.categories)[None, :]).astype("float32"))
    return np.concatenate(parts, axis=1)


def fit_standardizer(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each training feature (float32); a constant feature gets
    variance 1, so it becomes 0 rather than blowing up values unseen in training."""
    x = np.asarray(x_train, dtype="float64")
    variance = x.var(axis=0)
    variance[variance < 1e-12] = 1.0
    return x.mean(axis=0).astype("float32"), variance.astype("float32")


def standardize(x: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """What ``keras.layers.Normalization(mean=mean, variance=variance)`` computes."""
    std = np.maximum(np.sqrt(np.asarray(variance, dtype="float32")), _EPSILON)
    return (np.asarray(x, dtype="float32") - np.asarray(mean, dtype="float32")) / std
