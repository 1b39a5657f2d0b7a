"""A `module:function` builder for tests/trainables/test_backend.py that records, in the
process that builds the model, which Keras backend and devices it sees."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

# What a trial process's environment says about its backend and memory (backend_environment).
RECORDED_ENV = ("KERAS_BACKEND", "XLA_PYTHON_CLIENT_PREALLOCATE",
                "XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_FLAGS", "TF_FORCE_GPU_ALLOW_GROWTH")


def recording_mlp(info, units: int = 32, record: str = ""):
    """A one-hidden-layer MLP; with ``record`` (a directory), writes a JSON file there: the
    process id, Keras' backend and dtype policy, JAX's devices and Keras' distribution (on JAX), and the
    environment variables above."""
    import keras

    if record:
        facts = {"pid": os.getpid(), "backend": keras.backend.backend(),
                 "dtype_policy": keras.config.dtype_policy().name,
                 "env": {k: os.environ.get(k) for k in RECORDED_ENV}}
        if facts["backend"] == "jax":
            import jax

            distribution = keras.distribution.distribution()
            facts["jax_devices"] = [str(d) for d in jax.devices()]
            facts["distribution"] = type(distribution).__name__ if distribution else None
            facts["mesh_devices"] = (int(distribution.device_mesh.devices.size)
                                     if distribution else 0)
        Path(record, f"{os.getpid()}-{uuid.uuid4().hex[:8]}.json").write_text(json.dumps(facts))
    inputs = keras.Input(shape=info.input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(int(units), activation="relu")(x)
    x = keras.layers.Dropout(0.1)(x)
    activation = "softmax" if info.task == "multiclass" else "sigmoid"
    # float32 output under a mixed policy, as tunefleet's own builders do.
    outputs = keras.layers.Dense(info.num_outputs, activation=activation, dtype="float32",
                                 name="output")(x)
    return keras.Model(inputs, outputs)
