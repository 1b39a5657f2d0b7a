"""What ``tuner.search(*fit_args, **fit_kwargs)`` was given, as trials take it: the arrays
(NumPy, pandas, or a small ``tf.data.Dataset`` materialised), the validation split made the way
Keras makes it, and the keyword arguments every trial's ``fit`` receives."""

from __future__ import annotations

import copy
import inspect
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..spec import SpecError

__all__ = ["SearchInputs", "search_inputs", "MAX_DATASET_BYTES"]

# A tf.data.Dataset is read into memory up to this size; larger ones are refused.
MAX_DATASET_BYTES = 2 * 1024**3

# Keras fit arguments forwarded to every trial's fit as given.
_FORWARDED = ("batch_size", "shuffle", "class_weight", "callbacks", "verbose")
# Keras fit arguments tunefleet refuses, with the reason (their defaults are accepted).
_REFUSED = {
    "initial_epoch": "each trial starts at epoch 0 (tunefleet resumes trials itself)",
    "steps_per_epoch": "trials train on whole epochs of the arrays given",
    "validation_steps": "trials validate on the whole validation split",
    "validation_batch_size": "trials validate with the training batch size",
    "validation_freq": "the objective is measured after every epoch, which schedulers need",
}


@dataclass
class SearchInputs:
    x: np.ndarray
    y: np.ndarray
    validation: tuple[np.ndarray, np.ndarray]
    epochs: int
    fit_kwargs: dict[str, Any]
    notes: list[str]


def _fit_signature() -> inspect.Signature:
    import keras

    return inspect.signature(keras.Model.fit)


def _array(name: str, value: Any) -> np.ndarray:
    """NumPy from NumPy, pandas or lists; a clear refusal for what trials cannot take."""
    if value is None:
        raise SpecError(name, "is required", fix="pass the training arrays: "
                        "tuner.search(x, y, epochs=..., validation_data=(x_val, y_val))")
    if isinstance(value, dict):
        raise SpecError(name, "a dict of inputs (a multi-input model) is not supported yet",
                        sorted(value), fix="pass one array")
    if isinstance(value, (list, tuple)) and value and all(hasattr(v, "shape") for v in value):
        raise SpecError(name, f"a list of {len(value)} input arrays (a multi-input model) is "
                        "not supported yet", fix="pass one array")
    if hasattr(value, "to_numpy"):  # pandas DataFrame / Series
        return np.asarray(value.to_numpy())
    return np.asarray(value)


def _is_dataset(value: Any) -> bool:
    return type(value).__module__.startswith("tensorflow") and hasattr(value, "element_spec")


def _materialise(name: str, dataset: Any, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A finite ``tf.data.Dataset`` of ``(x, y)`` as arrays (unbatched), with its size noted;
    refused when infinite, of unknown length, not ``(x, y)`` pairs, or too large."""
    import tensorflow as tf

    fix = ("pass NumPy arrays instead: x, y = np.concatenate([b[0] for b in ds]), ... "
           "(trials take arrays, shared once through Ray's object store)")
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2
            and all(isinstance(s, tf.TensorSpec) for s in spec)):
        raise SpecError(name, "a tf.data.Dataset must yield (x, y) pairs of tensors to be "
                        "read into arrays", str(spec), fix=fix)
    cardinality = int(dataset.cardinality())
    if cardinality < 0:
        raise SpecError(name, "a tf.data.Dataset of infinite or unknown length cannot be read "
                        "into arrays", fix=fix)
    batched = spec[0].shape.rank is not None and spec[0].shape.rank > 0 and \
        spec[0].shape[0] is None
    rows = dataset.unbatch() if batched else dataset
    xs, ys = [], []
    total = 0
    for x, y in rows.as_numpy_iterator():
        total += x.nbytes + np.asarray(y).nbytes
        if total > MAX_DATASET_BYTES:
            raise SpecError(name, f"the tf.data.Dataset holds more than "
                            f"{MAX_DATASET_BYTES / 1024**3:.0f} GiB", fix=fix)
        xs.append(x)
        ys.append(y)
    if not xs:
        raise SpecError(name, "the tf.data.Dataset is empty", fix=fix)
    x_arr, y_arr = np.stack(xs), np.stack(ys)
    notes.append(f"{name}: read the tf.data.Dataset into arrays: {len(x_arr):,} examples, "
                 f"{(x_arr.nbytes + y_arr.nbytes) / 1024**2:.1f} MB")
    return x_arr, y_arr


def _pair(name: str, x: Any, y: Any, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    if _is_dataset(x):
        if y is not None:
            raise SpecError(name, "y must be None when x is a tf.data.Dataset", fix="pass "
                            "the dataset alone")
        return _materialise(name, x, notes)
    xs, ys = _array(f"{name} x", x), _array(f"{name} y", y)
    if len(xs) != len(ys):
        raise SpecError(name, f"x has {len(xs)} rows but y has {len(ys)}", fix="pass as "
                        "many labels as examples")
    return xs, ys


def _validation(given: Any, notes: list[str], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pair = _given_validation(given, notes)
    if pair[0].shape[1:] != x.shape[1:]:
        raise SpecError("validation_data", f"x_val has examples shaped {pair[0].shape[1:]}, "
                        f"x has {x.shape[1:]}", fix="pass validation data shaped as x")
    return pair


def _given_validation(given: Any, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    if _is_dataset(given):
        return _pair("validation_data", given, None, notes)
    if not isinstance(given, (tuple, list)) or len(given) not in (2, 3):
        raise SpecError("validation_data", "must be (x_val, y_val) or a tf.data.Dataset",
                        type(given).__name__)
    if len(given) == 3:
        raise SpecError("validation_data", "validation sample weights (x, y, weights) are not "
                        "supported", fix="pass (x_val, y_val)")
    return _pair("validation_data", given[0], given[1], notes)


def search_inputs(args: tuple, kwargs: dict[str, Any]) -> SearchInputs:
    """``search``'s arguments, bound as ``keras.Model.fit`` binds them; other keywords go to
    every trial's ``HyperModel.fit`` as they are, as KerasTuner passes them."""
    known = set(_fit_signature().parameters)
    extra = {k: v for k, v in kwargs.items() if k not in known}
    kwargs = {k: v for k, v in kwargs.items() if k in known}
    try:
        bound = _fit_signature().bind(None, *args, **kwargs)
    except TypeError as exc:
        raise SpecError("search", f"takes keras.Model.fit's arguments: {exc}",
                        fix="tuner.search(x, y, epochs=..., validation_data=(x_val, y_val))") \
            from None
    given = dict(bound.arguments)
    given.pop("self", None)
    defaults = {k: p.default for k, p in _fit_signature().parameters.items()}
    for name, why in _REFUSED.items():
        if name in given and given[name] != defaults[name]:
            raise SpecError(name, f"is not supported by tunefleet's search: {why}",
                            given[name], fix=f"remove {name}=")
    notes: list[str] = []
    x, y = _pair("x, y", given.get("x"), given.get("y"), notes)
    weights = given.get("sample_weight")
    weights = None if weights is None else _array("sample_weight", weights)
    if weights is not None and len(weights) != len(x):
        raise SpecError("sample_weight", f"has {len(weights)} rows, x has {len(x)}",
                        fix="pass one weight per example")
    split = float(given.get("validation_split") or 0.0)
    if given.get("validation_data") is not None:
        validation = _validation(given["validation_data"], notes, x)
    elif split:
        if not 0 < split < 1:
            raise SpecError("validation_split", "must be between 0 and 1", split)
        # As Keras does: the last rows, before any shuffling.
        cut = int(np.floor(len(x) * (1.0 - split)))
        validation = (x[cut:], y[cut:])
        x, y = x[:cut], y[:cut]
        weights = None if weights is None else weights[:cut]
    else:
        raise SpecError("validation_data", "a search needs validation data to score trials "
                        "(its objective is measured on it)",
                        fix="pass validation_data=(x_val, y_val) or validation_split=0.2")
    epochs = given.get("epochs", 1)
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise SpecError("epochs", "must be a positive integer", epochs)
    batch = given.get("batch_size")
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool) or batch < 1):
        raise SpecError("batch_size", "must be a positive integer", batch)
    fit_kwargs = {**extra, **{k: given[k] for k in _FORWARDED if k in given}}
    fit_kwargs.setdefault("verbose", 0)  # trials report to tunefleet's console instead
    if weights is not None:
        fit_kwargs["sample_weight"] = weights
    if fit_kwargs.get("callbacks") is not None:
        fit_kwargs["callbacks"] = _callbacks(fit_kwargs["callbacks"])
    return SearchInputs(x, y, validation, epochs, fit_kwargs, notes)


def _callbacks(callbacks: Any) -> list[Any]:
    """The user's callbacks, checked to travel to trials (each trial gets its own copy)."""
    import cloudpickle
    import keras

    if not isinstance(callbacks, (list, tuple)) or not all(
            isinstance(cb, keras.callbacks.Callback) for cb in callbacks):
        raise SpecError("callbacks", "must be a list of keras.callbacks.Callback objects",
                        callbacks, fix="pass e.g. callbacks=[keras.callbacks.EarlyStopping("
                        "patience=3)]")
    callbacks = list(callbacks)
    for cb in callbacks:
        if isinstance(cb, keras.callbacks.TensorBoard):  # trials run in folders of their own
            cb.log_dir = os.path.abspath(cb.log_dir)
        try:
            cloudpickle.dumps(copy.deepcopy(cb))
        except Exception as exc:  # noqa: BLE001 - any object may fail to copy in its own way
            raise SpecError("callbacks", f"{type(cb).__name__} cannot be copied into the "
                            f"trials ({type(exc).__name__}: {exc})", fix="create the callback "
                            "without references to open files, locks or models") from None
    return callbacks
