"""Labels as a model needs them: the task (as set in ``data.task``, or guessed only where the
guess is safe) and class labels mapped to contiguous indices ``0..k-1``, with the original
values kept as class names for the report and for predictions."""

from __future__ import annotations

from typing import Any, Iterable, Literal

import numpy as np

from ..spec import SpecError

__all__ = ["Task", "infer_task", "encode_labels", "label_names"]

Task = Literal["multiclass", "binary", "regression"]

_TASK_FIX = ("set data.task: multiclass (each value is a class; tunefleet maps them to outputs "
             "0..k-1 and keeps the values as class names), or data.task: regression (a number to "
             "predict); from Python, tune_hypermodel(..., settings=['data.task=regression'])")


def _describe(values: np.ndarray) -> str:
    shown = ", ".join(label_names(values[:8]))
    return f"{len(values)} distinct values: {shown}" + (", ..." if len(values) > 8 else "")


def _numeric(y: np.ndarray) -> bool:
    return np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.bool_)


def infer_task(y: np.ndarray, named: bool = False) -> Task:
    """The task of labels ``y`` where the labels leave no doubt; else a SpecError asking for
    ``data.task``.

    Text (or ``named``) labels and two distinct values are classes; fractional numbers are a
    regression target; integers ``0..k-1`` with few values (at most one per 10 rows, and 100)
    are classes; integers with many values not starting at 0 are a regression target. Anything
    between (``{1..5}``, ``{3, 7, 100}``, 0..k-1 with very many values) could be either.
    """
    y = np.asarray(y)
    if _numeric(y) and not np.issubdtype(y.dtype, np.bool_) and np.isnan(y.astype(float)).any():
        raise SpecError("data.target", f"{int(np.isnan(y.astype(float)).sum())} labels are "
                        "missing (NaN)", fix="fill or drop those rows")
    values = np.unique(y)
    if named or not _numeric(y) or np.issubdtype(y.dtype, np.bool_) or len(values) == 2:
        return "binary" if len(values) == 2 else "multiclass"
    if not np.all(np.mod(values, 1) == 0):
        return "regression"
    few = len(values) <= max(2, min(100, len(y) // 10))
    from_zero = values[0] == 0 and values[-1] == len(values) - 1
    if few and from_zero:
        return "multiclass"
    if not few and not from_zero:
        return "regression"
    raise SpecError("data.task", "cannot tell whether these integer labels are classes or a "
                    f"regression target ({_describe(values)})", fix=_TASK_FIX)


def label_names(values: Iterable[Any]) -> list[str]:
    """Labels as text: integral numbers without a trailing ``.0``."""
    names = []
    for v in values:
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            v = int(v)
        names.append(str(v.item() if isinstance(v, np.generic) else v))
    return names


def encode_labels(task: Task, ys: list[np.ndarray], class_names: list[str]
                  ) -> tuple[list[np.ndarray], list[str], list[Any]]:
    """``ys`` (train, and test/validation where given) as the model's targets.

    Returns the encoded arrays, the class names, and the original label value of each class
    (JSON-ready; empty for regression). Classes are the sorted distinct values of all ``ys``;
    integer labels that index ``class_names`` (``0..k-1`` with k names) keep their names.
    """
    ys = [np.asarray(y).reshape(len(y), -1)[:, 0] if np.asarray(y).ndim > 1 else np.asarray(y)
          for y in ys]
    if task == "regression":
        if not all(_numeric(y) for y in ys):
            raise SpecError("data.task", "regression needs numeric labels; these hold text",
                            "regression", fix="set data.task: multiclass or binary")
        return [y.astype("float32") for y in ys], [], []
    values = np.unique(np.concatenate(ys))
    if len(values) < 2:
        raise SpecError("data.target", f"every label is {label_names(values)}; a classifier "
                        "needs at least 2 classes", fix="check data.target")
    if task == "binary" and len(values) != 2:
        raise SpecError("data.task", f"binary needs exactly 2 label values, the labels hold "
                        f"{_describe(values)}", "binary",
                        fix="set data.task: multiclass, or leave data.task unset")
    named = (class_names and _numeric(values) and np.all(np.mod(values, 1) == 0)
             and values[0] >= 0 and values[-1] < len(class_names))
    if named and (task == "multiclass" or len(class_names) == 2):
        names = list(class_names)  # e.g. CSV text labels or MNIST: indices into known names
        encoded = [y.astype("int64") for y in ys]
        originals: list[Any] = list(names)
    else:
        names = label_names(values)
        encoded = [np.searchsorted(values, y) for y in ys]
        originals = [v.item() if isinstance(v, np.generic) else v for v in values]
    dtype = "float32" if task == "binary" else "int32"
    return [e.astype(dtype) for e in encoded], names, originals
