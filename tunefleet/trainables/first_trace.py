"""One trace of a model's train step instead of two, on TensorFlow.

Keras on TensorFlow, without a ``tf.distribute`` strategy, creates a compiled model's optimizer
slots and its compiled metrics' and loss's state inside the first trace of its train function.
A ``tf.function`` that creates variables on its first call is traced again without them, so
every new model traces its train step twice: most of a short trial's first epoch (measured on
the digits CNN, one core: 2.9 s without this, 1.7 s with it). Under a strategy Keras creates
that state before the trace itself (``_symbolic_build``, from the shapes of one batch).

:func:`build_on_first_fit` has a trial's model do the same at its first ``fit``, from the
shapes and dtypes of the batches that ``fit`` traces with: floats as floatx and a batch
dimension that is static only when the batches divide the rows, as Keras' array adapter makes
them. Nothing numeric changes: the same variables are created, with the same initial values,
in the same order, and no data is read and no random state drawn
(tests/trainables/test_first_trace.py compares the weights, logs and build config).

Left to Keras as before: another backend, a model under a strategy, a model run eagerly or
not compiled, a model (or model class) with its own ``fit``, a subclassed model with layers
still unbuilt (Keras would build them in inference mode, and a layer used only in training would
be missing from the optimizer), inputs other than NumPy arrays, dense tensors or a dataset of dense
tensors of known rank (lists, pandas, sparse or ragged data, generators), and a build that
raises (a ``call`` that cannot run on symbolic tensors): the first trace then builds it all.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Optional

__all__ = ["build_on_first_fit"]

_DEFAULT_BATCH = 32  # keras.Model.fit's batch_size when none is given


def build_on_first_fit(model: Any) -> None:
    """Make ``model.fit``'s first call create the optimizer's, metrics' and loss's variables
    before Keras traces the train step (see the module's docstring). The instance attribute
    this sets removes itself at that call; a no-op where it does not apply."""
    if not _applies(model):
        return
    cls_fit = type(model).fit
    pending = True

    def fit(*args: Any, **kwargs: Any) -> Any:
        nonlocal pending
        if pending:  # a caller may keep this function (TrialModel does): later calls only fit
            pending = False
            model.__dict__.pop("fit", None)  # the class's fit from now on
            batch = _batch_spec(args, kwargs)
            if batch is not None:
                _build(model, batch)
        return cls_fit(model, *args, **kwargs)

    object.__setattr__(model, "fit", fit)  # not tracked by Keras


def _applies(model: Any) -> bool:
    import keras

    if keras.backend.backend() != "tensorflow" or not isinstance(model, keras.Model):
        return False
    import tensorflow as tf

    return (type(model).fit is keras.Model.fit and "fit" not in vars(model)  # no fit of yours
            and hasattr(model, "_symbolic_build")
            and not tf.distribute.has_strategy()
            and getattr(model, "_distribute_strategy", None) is None
            and bool(getattr(model, "compiled", False)) and model.optimizer is not None
            and not model.run_eagerly and _safe_to_build(model))


def _safe_to_build(model: Any) -> bool:
    """Keras builds an unbuilt model by calling it with ``training=False``, then the optimizer
    over the variables that made: a subclassed model's layer used only in training would be
    left out of the optimizer (the trace then fails). A model whose layers are all built, and a
    ``Sequential`` (which calls every layer in either mode), are safe."""
    import keras

    layers = getattr(model, "_flatten_layers", None)
    return isinstance(model, keras.Sequential) or (
        layers is not None and all(layer.built for layer in layers()))


def _batch_spec(args: tuple, kwargs: dict[str, Any]) -> Optional[tuple[Any, Any, Any]]:
    """``(x, y, sample_weight)`` of the batches ``keras.Model.fit(*args, **kwargs)`` traces its
    train step with, as KerasTensors; None when that cannot be told without reading the data."""
    try:
        return _spec_of_fit(args, kwargs)
    except Exception:  # noqa: BLE001 - Keras reads these arguments itself and says what is wrong
        return None


def _spec_of_fit(args: tuple, kwargs: dict[str, Any]) -> Optional[tuple[Any, Any, Any]]:
    import keras
    import numpy as np
    import tensorflow as tf

    given = inspect.signature(keras.Model.fit).bind(None, *args, **kwargs).arguments
    x, y, weights = given.get("x"), given.get("y"), given.get("sample_weight")
    if isinstance(x, tf.data.Dataset):
        if y is not None or weights is not None:
            return None
        spec = x.element_spec
        parts = spec if isinstance(spec, tuple) else (spec,)
        if not all(isinstance(leaf, tf.TensorSpec) for leaf in keras.tree.flatten(parts)):
            return None  # sparse, ragged or other elements: left to the trace
        return _specs(parts, cast=False, batch=...)
    leaves = [leaf for leaf in keras.tree.flatten((x, y, weights)) if leaf is not None]
    if not leaves or not all(isinstance(leaf, (np.ndarray, tf.Tensor)) for leaf in leaves):
        return None  # lists, pandas, sparse or ragged inputs: Keras reshapes them its own way
    rows = int(leaves[0].shape[0])
    split = given.get("validation_split") or 0.0
    if split:
        rows = int(math.floor(rows * (1.0 - split)))  # as keras' train_validation_split
    steps = given.get("steps_per_epoch")
    size = given.get("batch_size") or (int(math.ceil(rows / steps)) if steps else _DEFAULT_BATCH)
    # Keras' array dataset has a static batch size only when the batches divide the rows.
    return _specs((x, y, weights), cast=True, batch=size if rows and rows % size == 0 else None)


def _specs(parts: tuple, cast: bool, batch: Any) -> tuple[Any, Any, Any]:
    """KerasTensors of ``parts``' leaves: with the batch dimension ``batch`` (``...``: kept),
    floats as floatx when ``cast`` (as Keras' array adapter casts them)."""
    import keras

    def spec(leaf: Any) -> Any:
        if leaf is None:
            return None
        rank = leaf.shape.rank if hasattr(leaf.shape, "rank") else len(leaf.shape)
        if not rank:  # unknown (a generator's dataset) or none: left to the trace
            raise ValueError(f"rank {rank}")
        shape = tuple(leaf.shape)
        dtype = keras.backend.standardize_dtype(leaf.dtype)
        if cast and keras.backend.is_float_dtype(dtype):
            dtype = keras.backend.floatx()
        return keras.KerasTensor(shape if batch is ... else (batch, *shape[1:]), dtype)

    x, y, weights = (*keras.tree.map_structure(spec, tuple(parts)), None, None)[:3]
    return x, y, weights


def _build(model: Any, batch: tuple[Any, Any, Any]) -> None:
    try:
        model._symbolic_build(data_batch=batch)
    except Exception:  # noqa: BLE001 - the first trace builds what is left, as without this
        return
