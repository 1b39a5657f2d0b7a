"""Device setup inside a trial process, before TensorFlow initialises."""

from __future__ import annotations

import math
import os

__all__ = ["configure_trial_devices"]

_configured = False


def configure_trial_devices(cpus: float, gpus: float) -> None:
    """Match TensorFlow's thread pools to the trial's CPU share and turn on GPU memory growth.

    Both must happen before TensorFlow creates its context, so this runs first in every trial;
    in a reused trial process it is a no-op (the settings from the first trial remain, and
    every trial of a study has the same resources).
    """
    global _configured
    if _configured:
        return
    threads = max(1, math.ceil(cpus))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        _configured = True
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
        if gpus > 0:
            for device in tf.config.list_physical_devices("GPU"):
                tf.config.experimental.set_memory_growth(device, True)
    except RuntimeError:
        pass  # TensorFlow already initialised in this process (e.g. by user code): keep it
    _configured = True
