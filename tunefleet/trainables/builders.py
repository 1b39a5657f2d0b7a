"""Model builders by name: ``cnn`` and ``mlp``, or a user's ``package.module:function``.

A builder is ``build(info: DataInfo, **hyperparameters) -> keras.Model`` and returns an
uncompiled model with its output layer; tunefleet compiles it from the ``train`` section.
Models stay backend-neutral (``keras.*`` only).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

from ..data import DataInfo

__all__ = ["BUILDERS", "resolve_builder", "builder_parameters", "cnn", "mlp", "output_layer"]


def _regularizer(l1: float, l2: float):
    import keras

    if l1 and l2:
        return keras.regularizers.L1L2(l1=float(l1), l2=float(l2))
    if l1:
        return keras.regularizers.L1(float(l1))
    if l2:
        return keras.regularizers.L2(float(l2))
    return None


def output_layer(info: DataInfo):
    """The head that matches the task: softmax, sigmoid or linear; in float32 under mixed
    precision too (a float16 softmax or loss loses the small probabilities)."""
    import keras

    activation = {"multiclass": "softmax", "binary": "sigmoid", "regression": "linear"}[info.task]
    return keras.layers.Dense(info.num_outputs, activation=activation, name="output",
                              dtype="float32")


FLIPS = ("none", "horizontal", "vertical", "horizontal_and_vertical")


def augmentation(flip: str = "none", rotation: float = 0.0, translation: float = 0.0,
                 zoom: float = 0.0, seed: int | None = None) -> list[Any]:
    """Random image augmentation layers; Keras applies them in training only, so validation,
    test and prediction see the images unchanged.

    ``rotation`` is a fraction of a full turn (0.1 = ±36°); ``translation`` and ``zoom`` are
    fractions of the image size.
    """
    import keras

    if flip not in FLIPS:
        raise ValueError(f"augment_flip must be one of {', '.join(FLIPS)}, got {flip!r}")
    for name, value in (("augment_rotation", rotation), ("augment_translation", translation),
                        ("augment_zoom", zoom)):
        if not 0.0 <= float(value) < 1.0:
            raise ValueError(f"{name} is a fraction in [0, 1), got {value!r}")
    layers: list[Any] = []
    if flip != "none":
        layers.append(keras.layers.RandomFlip(flip, seed=seed))
    if rotation:
        layers.append(keras.layers.RandomRotation(float(rotation), seed=seed))
    if translation:
        layers.append(keras.layers.RandomTranslation(float(translation), float(translation),
                                                     seed=seed))
    if zoom:
        layers.append(keras.layers.RandomZoom(float(zoom), seed=seed))
    return layers


def cnn(info: DataInfo, *, conv_blocks: int = 2, filters: int = 32,
        filters_growth: str = "double", kernel_size: int = 3, pooling: str = "max",
        batch_norm: bool = False, conv_dropout: float = 0.0, dense_layers: int = 1,
        dense_units: int = 64, dropout: float = 0.0, activation: str = "relu",
        l1: float = 0.0, l2: float = 0.0, max_filters: int | None = None,
        pool_last: bool = True, augment_flip: str = "none", augment_rotation: float = 0.0,
        augment_translation: float = 0.0, augment_zoom: float = 0.0) -> Any:
    """[Augmentation], conv blocks (conv → [batch norm] → activation → [pool] → [dropout]),
    then dense layers (dense → activation → [dropout]) and the task's output layer.

    ``filters_growth``: ``double`` doubles the filters each block (up to ``max_filters``),
    ``constant`` keeps them; ``pool_last: false`` skips the pooling after the last block (the
    classic Conv32-Pool-Conv64-Pool-Conv64). ``l1``/``l2`` regularize every conv and dense
    kernel.
    """
    import keras

    if len(info.input_shape) != 3:
        raise ValueError(f"cnn needs images (height, width, channels), got input shape "
                         f"{info.input_shape}; use builder: mlp for tabular data")
    if filters_growth not in ("double", "constant"):
        raise ValueError(f"filters_growth must be double or constant, got {filters_growth!r}")
    if pooling not in ("max", "avg", "none"):
        raise ValueError(f"pooling must be max, avg or none, got {pooling!r}")
    reg = _regularizer(l1, l2)
    inputs = keras.Input(shape=info.input_shape)
    x = inputs
    for layer in augmentation(augment_flip, augment_rotation, augment_translation, augment_zoom):
        x = layer(x)
    size = min(info.input_shape[:2])
    blocks = int(conv_blocks)
    for block in range(blocks):
        n = int(filters) * (2 ** block if filters_growth == "double" else 1)
        n = min(n, int(max_filters)) if max_filters else n
        x = keras.layers.Conv2D(n, int(kernel_size), padding="same", kernel_regularizer=reg,
                                use_bias=not batch_norm)(x)
        if batch_norm:
            x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation(activation)(x)
        if pooling != "none" and (pool_last or block < blocks - 1):
            if size < 2:
                raise ValueError(f"conv_blocks={conv_blocks} with pooling halves the "
                                 f"{info.input_shape[0]}x{info.input_shape[1]} image below one "
                                 "pixel; use fewer conv_blocks or pooling: none")
            pool = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
            x = pool(2)(x)
            size //= 2
        if conv_dropout:
            x = keras.layers.Dropout(float(conv_dropout))(x)
    x = keras.layers.Flatten()(x)
    for _ in range(int(dense_layers)):
        x = keras.layers.Dense(int(dense_units), activation=activation, kernel_regularizer=reg)(x)
        if dropout:
            x = keras.layers.Dropout(float(dropout))(x)
    return keras.Model(inputs, output_layer(info)(x), name="cnn")


def mlp(info: DataInfo, *, layers: int = 2, units: int | list[int] = 64, dropout: float = 0.0,
        activation: str = "relu", batch_norm: bool = False, l1: float = 0.0,
        l2: float = 0.0) -> Any:
    """Dense layers (dense → [batch norm] → activation → [dropout]); images are flattened.

    ``units`` is one width for every layer, or a list with one width per layer
    (``layers: 2, units: [128, 64]``).
    """
    import keras

    widths = list(units) if isinstance(units, (list, tuple)) else [units] * int(layers)
    if len(widths) != int(layers):
        raise ValueError(f"units lists one width per layer: got {len(widths)} widths "
                         f"({widths}) for layers={layers}")
    reg = _regularizer(l1, l2)
    inputs = keras.Input(shape=info.input_shape)
    x = keras.layers.Flatten()(inputs) if len(info.input_shape) > 1 else inputs
    for width in widths:
        x = keras.layers.Dense(int(width), kernel_regularizer=reg, use_bias=not batch_norm)(x)
        if batch_norm:
            x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation(activation)(x)
        if dropout:
            x = keras.layers.Dropout(float(dropout))(x)
    return keras.Model(inputs, output_layer(info)(x), name="mlp")


BUILDERS: dict[str, Callable[..., Any]] = {"cnn": cnn, "mlp": mlp}


def resolve_builder(name: str) -> Callable[..., Any]:
    """The builder for a registry name or ``package.module:function``.

    Raises ValueError naming what did not import, so the runner can report it before Ray
    starts.
    """
    if name in BUILDERS:
        return BUILDERS[name]
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may fail in any way while importing
        raise ValueError(f"cannot import module '{module_name}' ({type(exc).__name__}: {exc}); "
                         "check the name and that it is on PYTHONPATH") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"module '{module_name}' has no function '{attr}'")
    return fn


def builder_parameters(fn: Callable[..., Any]) -> tuple[set[str], bool]:
    """Keyword parameters a builder accepts (besides ``info``), and whether it takes **kwargs."""
    params = list(inspect.signature(fn).parameters.values())[1:]
    names = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return names, any(p.kind == p.VAR_KEYWORD for p in params)
