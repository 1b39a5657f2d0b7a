"""Device setup inside a trial process, before TensorFlow initialises: threads for the trial's
CPU share, GPU memory for its GPU share, logical devices for a distributed trial, and the
``tf.distribute`` strategy that spreads one trial over its devices."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from typing import Any, Optional

__all__ = ["configure_trial_devices", "gpu_memory_limit_mb", "make_strategy", "assigned_gpus",
           "hide_driver_gpus", "driver_gpus_hidden"]

_configured = False
_driver_hidden: Optional[bool] = None  # see driver_gpus_hidden
# CUDA contexts of co-located trials live outside TensorFlow's allocator: leave them room.
_SHARE_HEADROOM = 0.9


def _gpu_total_mb() -> Optional[int]:
    """Total memory of the first GPU this process sees (None without nvidia-smi)."""
    if shutil.which("nvidia-smi") is None:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    cmd = ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"]
    if visible:
        cmd.append(f"--id={visible}")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=True).stdout
        return int(float(out.strip().splitlines()[0]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def hide_driver_gpus() -> Optional[str]:
    """Keep this (driver) process's TensorFlow off every GPU, before its first op.

    The driver builds models for its checks and discovery, and TensorFlow maps nearly all the
    memory of every visible GPU at its first op and never gives it back: the trials would find
    none. Hidden through ``tf.config`` rather than ``CUDA_VISIBLE_DEVICES``, which an embedded
    Ray would inherit and then see no GPU. Returns a warning when it is too late (this
    process's TensorFlow already holds its GPUs), else None.
    """
    global _driver_hidden
    import tensorflow as tf

    try:
        tf.config.set_visible_devices([], "GPU")
        # Without GPUs TensorFlow accepts the call even once started; record whether it came
        # in time all the same (what a GPU machine would have needed).
        _driver_hidden = bool(_driver_hidden) or not _tensorflow_started()
        return None
    except RuntimeError:  # devices already initialised in this process
        _driver_hidden = bool(_driver_hidden)  # hidden by an earlier call, or too late
        held = tf.config.get_visible_devices("GPU")
        if not held:
            return None
        return (f"this process's TensorFlow already holds {len(held)} GPU(s) (it ran an op "
                "before the study started), and may keep their memory from the trials: start "
                "the study from a fresh process, or set memory growth first "
                "(tf.config.experimental.set_memory_growth)")


def _tensorflow_started() -> bool:
    """Whether this process's TensorFlow has created its runtime context (run an op)."""
    from tensorflow.python.eager import context

    return getattr(context.context(), "_context_handle", None) is not None


def driver_gpus_hidden() -> Optional[bool]:
    """Whether :func:`hide_driver_gpus` hid the GPUs before this process's TensorFlow
    initialised (None: never called; False: it came too late)."""
    return _driver_hidden


def gpu_memory_limit_mb(gpu_share: float, total_mb: Optional[int]) -> Optional[int]:
    """TensorFlow's memory limit for a trial holding ``gpu_share`` (< 1) of a GPU."""
    if total_mb is None or not 0 < gpu_share < 1:
        return None
    return max(256, int(total_mb * gpu_share * _SHARE_HEADROOM))


def assigned_gpus() -> str:
    """The GPU ids Ray assigned to this trial, as Ray made them visible."""
    return os.environ.get("CUDA_VISIBLE_DEVICES", "")


def configure_trial_devices(cpus: float, gpus: float, gpu_memory: str = "limit",
                            cpu_devices: Optional[int] = None) -> None:
    """Match TensorFlow's thread pools to the trial's CPU share; give it its share of the GPU
    (a logical device with a memory limit, or memory growth); split the CPU into
    ``cpu_devices`` logical devices for a distributed trial on CPU.

    All of it must happen before TensorFlow creates its context, so this runs first in every
    trial; in a reused trial process it is a no-op (every trial of a study has the same
    resources, and the settings of the first remain).
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
        if cpu_devices:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * int(cpu_devices))
        devices = tf.config.list_physical_devices("GPU") if gpus > 0 else []
        limit = gpu_memory_limit_mb(gpus, _gpu_total_mb()) if gpu_memory == "limit" else None
        for device in devices:
            if limit is not None:
                tf.config.set_logical_device_configuration(
                    device, [tf.config.LogicalDeviceConfiguration(memory_limit=limit)])
            else:
                tf.config.experimental.set_memory_growth(device, True)
    except RuntimeError:
        pass  # TensorFlow already initialised in this process (e.g. by user code): keep it
    _configured = True


def make_strategy(distribute: Any) -> Any:
    """``tf.distribute.MirroredStrategy`` over the trial's GPUs, or over ``cpu_devices``
    logical CPUs; None when the trial is not distributed."""
    if distribute is None:
        return None
    import tensorflow as tf

    if distribute.cpu_devices:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")][: distribute.cpu_devices]
    else:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    if len(devices) < 2:
        raise RuntimeError(f"train.distribute: mirrored needs 2 or more devices, this trial "
                           f"sees {devices or 'none'} (CUDA_VISIBLE_DEVICES="
                           f"{assigned_gpus() or 'unset'})")
    return tf.distribute.MirroredStrategy(devices)
