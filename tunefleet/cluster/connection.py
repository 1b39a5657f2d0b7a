"""Connect to Ray (embedded local, ``auto``, or an address) and check a study fits on it."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Any

from ..spec import Experiment, SpecError
from .worker_setup import SETUP_HOOK, USER_PATH_VAR

__all__ = ["ClusterInfo", "connect", "disconnect", "check_fits", "concurrent_trials",
           "check_shared_storage",
           "keep_ray_on_loopback"]

# Quiet TensorFlow's C++ start-up chatter in every trial process.
_WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}


@dataclass(frozen=True)
class ClusterInfo:
    """What the study may use: totals and the largest single node."""

    address: str
    cpus: float
    gpus: float
    node_cpus: float
    node_gpus: float
    nodes: int
    started_here: bool


def keep_ray_on_loopback() -> None:
    """An embedded Ray binds every server to 127.0.0.1, not the machine's network address."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    already_imported = "ray._private.ray_constants" in sys.modules
    if already_imported and os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0":
        # Ray read the variable when it was imported (before tunefleet could set it); its
        # services look the flag up at call time, so setting it here still takes effect.
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False


def connect(experiment: Experiment) -> ClusterInfo:
    """Start an embedded Ray (``local``) or join a running cluster; return its resources."""
    address = experiment.cluster.address
    if address == "local":
        keep_ray_on_loopback()
    import ray

    runtime_env: dict[str, Any] = {"env_vars": dict(_WORKER_ENV)}
    if address == "local":
        # Trial processes import a user's `module:function` builder from the current directory
        # the way the driver does, but after the installed packages: a setup hook run before
        # any task appends it (on PYTHONPATH it would come first, and a `yaml.py` or `keras.py`
        # here would shadow the real package). Ray itself puts the driver's directory first in
        # every worker, module or not: the hook ranks it last either way.
        runtime_env["env_vars"][USER_PATH_VAR] = os.getcwd()
        runtime_env["worker_process_setup_hook"] = SETUP_HOOK
        if os.environ.get("PYTHONPATH"):  # yours, as you set it: before the installed packages
            runtime_env["env_vars"]["PYTHONPATH"] = os.environ["PYTHONPATH"]
    started_here = False
    if ray.is_initialized():
        pass  # the caller already connected (e.g. a test fixture or a notebook): use it
    elif address == "local":
        ray.init(address="local", num_cpus=experiment.cluster.num_cpus,
                 num_gpus=experiment.cluster.num_gpus, include_dashboard=False,
                 runtime_env=runtime_env, log_to_driver=True, configure_logging=False)
        started_here = True
    else:
        try:
            ray.init(address=address, runtime_env=runtime_env, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SpecError("cluster.address", f"cannot connect to a Ray cluster ({exc})",
                            address, fix="start one with `ray start --head`, or use "
                            "address: local for an embedded Ray") from None
        started_here = True
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    totals = ray.cluster_resources()
    return ClusterInfo(
        address=address,
        cpus=float(totals.get("CPU", 0)),
        gpus=float(totals.get("GPU", 0)),
        node_cpus=max((n["Resources"].get("CPU", 0) for n in nodes), default=0.0),
        node_gpus=max((n["Resources"].get("GPU", 0) for n in nodes), default=0.0),
        nodes=len(nodes),
        started_here=started_here,
    )


def disconnect(info: ClusterInfo) -> None:
    """Shut Ray down if this process started or joined it."""
    import ray

    if info.started_here and ray.is_initialized():
        ray.shutdown()


def check_fits(experiment: Experiment, info: ClusterInfo) -> None:
    """Refuse trials that no node can ever place: Ray would wait for them forever."""
    res = experiment.resources
    if res.gpu > 0 and info.gpus == 0:
        raise SpecError("resources.gpu", "the Ray cluster has no GPUs", res.gpu,
                        fix="set resources.gpu: 0, or run on a cluster with GPU nodes "
                        "(for a local Ray, cluster.num_gpus declares them)")
    if res.gpu > info.node_gpus:
        raise SpecError("resources.gpu", f"no node has that many GPUs (largest: "
                        f"{info.node_gpus:g})", res.gpu, fix=f"use at most {info.node_gpus:g}")
    if res.cpu > info.node_cpus:
        raise SpecError("resources.cpu", f"no node has that many CPUs (largest: "
                        f"{info.node_cpus:g})", res.cpu, fix=f"use at most {info.node_cpus:g}")


def concurrent_trials(experiment: Experiment, cpus: float, gpus: float) -> int:
    """How many trials run at once: ``search.max_concurrent`` or what the resources allow."""
    res = experiment.resources
    fit = math.floor(cpus / res.cpu + 1e-9)
    if res.gpu > 0:
        fit = min(fit, math.floor(gpus / res.gpu + 1e-9))
    fit = max(1, fit)
    limit = experiment.search.max_concurrent
    return min(fit, limit) if limit else fit


def _nodes_that_cannot_see(directory: str, token: str) -> list[str]:
    """Run a tiny task on every alive node that has CPUs; return the nodes where the file the
    driver wrote under ``directory`` is not visible (node-local storage)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_cpus=0)
    def sees(path: str) -> bool:
        import os

        return os.path.exists(path)

    probe = os.path.join(directory, f".tunefleet-probe-{token}")
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    checks = {n["NodeID"]: sees.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        n["NodeID"], soft=False)).remote(probe) for n in nodes}
    return [node for node, ref in checks.items() if not ray.get(ref, timeout=120)]


def check_shared_storage(directory: str | os.PathLike[str], info: ClusterInfo) -> None:
    """On a multi-node cluster, trials on every node write checkpoints and results under the
    study directory, and retried trials read them back on another node: refuse a local path
    that some node cannot see. (A URI is checked by writing to it: storage.py.)"""
    if info.nodes <= 1:
        return
    import uuid

    path = os.fspath(directory)
    os.makedirs(path, exist_ok=True)
    token = uuid.uuid4().hex
    probe = os.path.join(path, f".tunefleet-probe-{token}")
    with open(probe, "w") as handle:
        handle.write("tunefleet storage probe")
    try:
        blind = _nodes_that_cannot_see(path, token)
    finally:
        os.remove(probe)
    if blind:
        raise SpecError("output.storage", f"{path} is node-local: {len(blind)} of the "
                        f"cluster's {info.nodes} nodes cannot see it (node "
                        f"{blind[0][:12]}...), so their trials' checkpoints and results would "
                        "be lost or could not be resumed elsewhere", path,
                        fix="use a path on a filesystem every node mounts (NFS, a shared "
                        "volume), or an s3:// or gs:// URI")
