"""The exported model takes raw rows: the driver's preprocessing (pixel scaling, one-hot text
columns, standardization) is rebuilt as Keras layers in front of the trained model, from the
statistics the run saved, so ``keras.models.load_model`` alone is enough to predict."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Optional

from ..data.preprocessing import Preprocessing

__all__ = ["raw_input_model", "export_best_model", "usage_markdown"]


def _input_name(column: str, used: set[str]) -> str:
    """A Keras layer name for a column (no ``/``), unique among the inputs."""
    name = re.sub(r"[/\s]+", "_", column) or "column"
    while name in used:
        name += "_"
    used.add(name)
    return name


def raw_input_model(model: Any, prep: Preprocessing) -> Any:
    """``model`` behind layers that turn raw examples into its inputs."""
    import keras

    if prep.kind == "images":
        pixels = keras.Input(shape=prep.raw_shape, name="pixels")
        x = keras.layers.Rescaling(prep.scale, name="rescale_pixels")(pixels)
        if prep.adds_channel:
            x = keras.layers.Reshape((*prep.raw_shape, 1), name="channel_axis")(x)
        return keras.Model(pixels, model(x), name=f"{model.name}_raw_pixels")
    if prep.kind != "tabular":
        return model
    normalize = keras.layers.Normalization(mean=prep.mean, variance=prep.variance,
                                           name="standardize")
    if not prep.columns:  # NumPy features: one array of raw values
        features = keras.Input(shape=prep.raw_shape, name="features")
        return keras.Model(features, model(normalize(features)), name=f"{model.name}_raw")
    inputs: dict[str, Any] = {}
    parts: list[Any] = []
    used: set[str] = set()
    for col in prep.columns:
        text = col.categories is not None
        tensor = keras.Input(shape=(1,), name=_input_name(col.name, used),
                             dtype="string" if text else "float32")
        inputs[col.name] = tensor
        parts.append(keras.layers.StringLookup(vocabulary=col.categories, num_oov_indices=0,
                                               output_mode="one_hot")(tensor) if text else tensor)
    x = keras.layers.Concatenate(name="features")(parts) if len(parts) > 1 else parts[0]
    with warnings.catch_warnings():  # a column name that is no valid layer name keeps its key
        warnings.filterwarnings("ignore", message="When providing `inputs` as a dict")
        return keras.Model(inputs, model(normalize(x)), name=f"{model.name}_raw_rows")


def usage_markdown(prep: Optional[Preprocessing], filename: str = "best_model.keras") -> str:
    """How to predict with the exported model (Markdown, for the report)."""
    load = ["    import keras", f"    model = keras.models.load_model({filename!r})"]
    if prep is None or prep.kind == "none":
        return (f"`{filename}` takes the same inputs the trials trained on:\n\n"
                + "\n".join(load + ["    outputs = model.predict(x)"]))
    if prep.kind == "images":
        shape = " × ".join(map(str, prep.raw_shape))
        text = (f"`{filename}` takes raw images of {shape} pixel values, as the dataset stores "
                f"them (it multiplies them by {prep.scale:.6g} itself"
                + (" and adds the channel axis" if prep.adds_channel else "") + "):\n\n")
        code = load + ["    outputs = model.predict(images)"]
    elif prep.columns:
        text_cols = [c.name for c in prep.columns if c.categories is not None]
        text = (f"`{filename}` takes raw CSV rows: one input per feature column, named as in the "
                "CSV" + (f"; text columns ({', '.join(f'`{c}`' for c in text_cols)}) as text, one-hot encoded "
                         "inside the model (a value it never saw is an error)" if text_cols
                         else "")
                + ". It standardizes the features with the training split's mean and variance "
                "itself:\n\n")
        code = ["    import pandas as pd"] + load + [
            "    rows = pd.read_csv('new_rows.csv')",
            "    outputs = model.predict({name: rows[name].to_numpy() for name in model.input})"]
    else:
        text = (f"`{filename}` takes raw feature rows (a NumPy array with {prep.raw_shape[0]} "
                "columns) and standardizes them with the training split's mean and variance "
                "itself:\n\n")
        code = load + ["    outputs = model.predict(x)"]
    if prep.task == "multiclass":
        code.append(f"    labels = {prep.labels!r}")
        code.append("    predicted = [labels[i] for i in outputs.argmax(axis=1)]")
        after = "Each output column is the probability of one class, in the order of `labels`."
    elif prep.task == "binary":
        code.append(f"    labels = {prep.labels!r}")
        code.append("    predicted = [labels[int(p > 0.5)] for p in outputs[:, 0]]")
        after = f"The output is the probability of the label `{prep.labels[1]!r}`."
    else:
        code.append("    predicted = outputs[:, 0]")
        after = "The output is the predicted value."
    return text + "\n".join(code) + "\n\n" + after


def export_best_model(model: Any, data_dir: Path, path: Path) -> str:
    """Save ``model`` to ``path`` so that it takes raw rows (see the module docstring), and
    return the Markdown that says how to predict with it."""
    prep = Preprocessing.read(data_dir)
    (raw_input_model(model, prep) if prep is not None else model).save(path)
    return usage_markdown(prep, path.name)
