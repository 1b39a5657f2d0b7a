#!/usr/bin/env python
"""Check that tunefleet's models, checkpoints and test metrics work on the active Keras
backend and device (e.g. KERAS_BACKEND=jax on a GPU): builds the cnn and mlp builders, trains
on digits, saves and restores a checkpoint mid-training, and checks that training resumed
from it gives the same weights as uninterrupted training. Prints one line per check."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> int:
    import keras

    from tunefleet.data import load_dataset
    from tunefleet.spec.sections import DataSpec
    from tunefleet.reports.evaluate import classification_metrics, predict
    from tunefleet.spec.sections import TrainSpec
    from tunefleet.trainables.builders import cnn, mlp
    from tunefleet.trainables.checkpoint import load_state, save_state
    from tunefleet.trainables.compile import compile_model

    backend = keras.backend.backend()
    devices = []
    if backend == "jax":
        import jax

        devices = [str(d) for d in jax.devices()]
    print(f"keras {keras.__version__}, backend {backend}, devices {devices or 'default'}")
    data = load_dataset(DataSpec(dataset="digits"))
    train = TrainSpec(learning_rate=3e-3, batch_size=32)
    failures = 0
    for name, builder, params in (("cnn", cnn, {"filters": 16, "l2": 1e-4}),
                                  ("mlp", mlp, {"units": 64, "dropout": 0.1})):
        def fresh(builder=builder, params=params):  # bound now: no late binding of the loop
            keras.utils.set_random_seed(0)
            model = builder(data.info, **params)
            compile_model(model, train, data.info.task)
            return model

        fit = dict(batch_size=32, verbose=0, shuffle=False)
        t = time.perf_counter()
        straight = fresh()
        straight.fit(data.training.x_train, data.training.y_train, epochs=6, **fit)
        seconds = time.perf_counter() - t
        again = fresh()  # a second uninterrupted run: the device's own run-to-run noise
        again.fit(data.training.x_train, data.training.y_train, epochs=6, **fit)
        noise = max(float(np.max(np.abs(a - b))) for a, b in
                    zip(straight.get_weights(), again.get_weights(), strict=True))
        resumed = fresh()
        resumed.fit(data.training.x_train, data.training.y_train, epochs=3, **fit)
        with tempfile.TemporaryDirectory() as d:
            save_state(Path(d), resumed, 3, [])
            restored = fresh()
            meta = load_state(Path(d), restored)
        restored.fit(data.training.x_train, data.training.y_train, epochs=6,
                     initial_epoch=meta["epoch"], **fit)
        gap = max(float(np.max(np.abs(a - b))) for a, b in
                  zip(straight.get_weights(), restored.get_weights(), strict=True))
        y_pred, _ = predict(restored, data.x_test, data.info.task)
        acc = classification_metrics(data.y_test, y_pred, data.info.class_names)["metrics"]["accuracy"]
        # Exact resume: no further from an uninterrupted run than two uninterrupted runs are
        # from each other (GPU kernels such as cuDNN's conv gradients are not deterministic).
        ok = gap <= max(noise * 2, 1e-3) and acc > 0.8
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: 6 epochs in {seconds:.1f} s; max weight difference "
              f"resumed-vs-straight {gap:.2e}, straight-vs-straight {noise:.2e}; test accuracy {acc:.4f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
