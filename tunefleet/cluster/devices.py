"""Device setup inside a trial process, before the Keras backend initialises: the backend
itself (``train.backend``) and JAX's memory settings, threads for the trial's CPU share, GPU
memory for its GPU share, logical devices for a distributed trial, and the strategy that
spreads one trial over its devices (``tf.distribute.MirroredStrategy`` on TensorFlow,
``keras.distribution.DataParallel`` on JAX)."""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
import sys
from typing import Any, Optional

from ..spec.sections import KERAS_BACKENDS

__all__ = ["configure_trial_devices", "gpu_memory_limit_mb", "make_strategy", "assigned_gpus",
           "hide_driver_gpus", "driver_gpus_hidden", "backend_environment", "select_backend",
           "BACKENDS", "BackendMismatch", "replicas", "backend_missing",
           "BACKEND_INSTALL"]

# Keras backends a trial can train on (train.backend); the first is the default.
BACKENDS = KERAS_BACKENDS

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


def backend_environment(backend: str, gpu_share: float, *,
                        cpu_devices: Optional[int] = None) -> dict[str, str]:
    """Environment variables a trial process sets before it first imports Keras (or JAX) so
    that it trains on ``backend`` with ``gpu_share`` GPUs (0: none; < 1: a share of one GPU;
    >= 1: whole GPUs).

    JAX: no preallocation (JAX would otherwise take 75% of every visible GPU at its first
    op), and its allocator capped at the trial's share of the GPU with the same headroom as
    TensorFlow's memory limit (min(share, 1) × 0.9; a whole GPU would else stop at JAX's
    default 75%). ``TF_FORCE_GPU_ALLOW_GROWTH`` keeps a TensorFlow that the trial imports
    anyway (a ``tf.data`` pipeline in a builder) from mapping the GPU. ``cpu_devices`` splits
    the host into that many XLA devices (``train.distribute.cpu_devices`` on CPU), added to
    any ``XLA_FLAGS`` already set. TensorFlow needs only ``KERAS_BACKEND``: its devices are
    set up through ``tf.config`` (:func:`configure_trial_devices`).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown Keras backend {backend!r}; valid: {', '.join(BACKENDS)}")
    env = {"KERAS_BACKEND": backend}
    if backend != "jax":
        return env
    env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    if gpu_share > 0:
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{min(gpu_share, 1.0) * _SHARE_HEADROOM:.3f}"
    if cpu_devices:
        flag = f"--xla_force_host_platform_device_count={int(cpu_devices)}"
        kept = [f for f in os.environ.get("XLA_FLAGS", "").split()
                if not f.startswith("--xla_force_host_platform_device_count=")]
        env["XLA_FLAGS"] = " ".join([*kept, flag])
    return env


# The package each backend needs, and how to install it (pyproject.toml's extras).
_BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax"}
BACKEND_INSTALL = {
    "tensorflow": "install it with pip install 'tunefleet[cpu]' (or 'tunefleet[gpu]' for "
                  "NVIDIA GPUs)",
    "jax": "install it with pip install 'tunefleet[jax]' (or 'tunefleet[jax-cuda12]' for "
           "NVIDIA GPUs)",
}


def backend_missing(backend: str) -> Optional[str]:
    """Why ``backend`` cannot run in this Python environment (its package is not
    installed), or None. :data:`BACKEND_INSTALL` says how to install it."""
    module = _BACKEND_MODULES[backend]
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    return f"needs the '{module}' package, which this Python environment ({sys.executable}) lacks"


class BackendMismatch(RuntimeError):
    """Keras was imported in this trial process with another backend than the spec's."""


def select_backend(backend: str, gpu_share: float, gpu_memory: str = "limit",
                   cpu_devices: Optional[int] = None) -> dict[str, str]:
    """Set :func:`backend_environment` in this process before Keras is imported. With
    ``gpu_memory: growth`` a JAX trial may grow to the whole GPU, as TensorFlow's does.

    Keras reads ``KERAS_BACKEND`` once, at import: if this process already imported it
    with another backend (code that ran before the trial, such as a hypermodel's module
    unpickled with the trial's arguments), raise :class:`BackendMismatch` rather than train
    on the wrong backend. Returns the variables set."""
    missing = backend_missing(backend)
    if missing:
        raise ModuleNotFoundError(f"train.backend: {backend} {missing}; {BACKEND_INSTALL[backend]} "
                                  "on every node that runs trials")
    share = gpu_share if gpu_memory == "limit" or gpu_share == 0 else 1.0
    env = backend_environment(backend, share, cpu_devices=cpu_devices)
    keras = sys.modules.get("keras")
    active = keras.backend.backend() if keras is not None else backend
    if active != backend:
        raise BackendMismatch(
            f"train.backend is {backend!r}, but Keras was already imported in this trial "
            f"process with the {active!r} backend (KERAS_BACKEND is read once, at import), "
            "so the trial would train on the wrong backend; keep `import keras` (and modules "
            f"importing it) out of what the trial unpickles, or use backend {active!r}")
    os.environ.update(env)
    return env


def assigned_gpus() -> str:
    """The GPU ids Ray assigned to this trial, as Ray made them visible."""
    return os.environ.get("CUDA_VISIBLE_DEVICES", "")


def configure_trial_devices(cpus: float, gpus: float, gpu_memory: str = "limit",
                            cpu_devices: Optional[int] = None) -> None:
    """Match TensorFlow's thread pools to the trial's CPU share; give it its share of the GPU
    (a logical device with a memory limit, or memory growth); split the CPU into
    ``cpu_devices`` logical devices for a distributed trial on CPU. On another backend
    (``KERAS_BACKEND``, set by :func:`select_backend`), TensorFlow is only kept off the GPUs.

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
        _hide_gpus_from_tensorflow()
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


def _hide_gpus_from_tensorflow() -> None:
    """On another backend Keras still imports TensorFlow where it is installed (its
    ``set_random_seed`` seeds TensorFlow too): keep it off the GPUs, which are the JAX
    trial's, before it initialises."""
    if importlib.util.find_spec("tensorflow") is None:
        return
    import tensorflow as tf

    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:
        pass  # already initialised in this process: too late, TF_FORCE_GPU_ALLOW_GROWTH holds it


def make_strategy(distribute: Any) -> Any:
    """What spreads one trial over its devices, for the active Keras backend; None when the
    trial is not distributed. TensorFlow: ``tf.distribute.MirroredStrategy`` over the trial's
    GPUs, or over ``cpu_devices`` logical CPUs. JAX: ``keras.distribution.DataParallel``
    over the same devices (the CPU split into XLA host devices by
    :func:`backend_environment`), made this process's distribution: JAX's trainer shards
    each batch across the devices while it is set."""
    if distribute is None:
        return None
    import keras

    if keras.backend.backend() == "jax":
        kind = "cpu" if distribute.cpu_devices else "gpu"
        devices = keras.distribution.list_devices(kind)
        if distribute.cpu_devices:
            devices = devices[: distribute.cpu_devices]
        _need_two(devices)
        strategy = keras.distribution.DataParallel(devices=devices)
        keras.distribution.set_distribution(strategy)
        return strategy
    import tensorflow as tf

    if distribute.cpu_devices:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")][: distribute.cpu_devices]
    else:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    _need_two(devices)
    return tf.distribute.MirroredStrategy(devices)


def _need_two(devices: list[str]) -> None:
    if len(devices) < 2:
        raise RuntimeError(f"train.distribute: mirrored needs 2 or more devices, this trial "
                           f"sees {devices or 'none'} (CUDA_VISIBLE_DEVICES="
                           f"{assigned_gpus() or 'unset'})")


def replicas(strategy: Any) -> int:
    """Devices a distributed trial trains on (1 without a strategy): each takes one
    ``batch_size`` of every global batch."""
    if strategy is None:
        return 1
    if hasattr(strategy, "num_replicas_in_sync"):  # tf.distribute
        return int(strategy.num_replicas_in_sync)
    return int(strategy.num_model_replicas)  # keras.distribution.DataParallel
