"""Connect to Ray (embedded local, ``auto``, or an address) and check a study fits on it."""

from __future__ import annotations

import math
import os
import re
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Optional

from ..spec import Experiment, SpecError
from .autoscaling import Autoscaler, read_autoscaler
from .worker_setup import SETUP_HOOK, USER_PATH_VAR

__all__ = ["ClusterInfo", "connect", "disconnect", "check_fits", "concurrent_trials",
           "planned_concurrency", "check_shared_storage", "study_dir_unseen_here",
           "keep_ray_on_loopback", "STARTUP_NOISE", "STARTUP_NOISE_PATTERN",
           "worker_env_vars"]

# Quiet TensorFlow's C++ start-up chatter in every trial process (a value of your own wins).
_QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}
_WORKER_ENV = {"KERAS_BACKEND": "tensorflow"}

# Start-up lines TensorFlow, absl and CUDA write in every process that imports TensorFlow,
# which no environment variable silences (oneDNN's is logged before TF_CPP_MIN_LOG_LEVEL is
# read): dropped from what Ray forwards to the driver (they stay in the workers' log files).
STARTUP_NOISE_PATTERN = "|".join([
    r"All log messages before absl::InitializeLog\(\) is called",
    r"oneDNN custom operations are on",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"To enable the following instructions: .*rebuild TensorFlow",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation placer already registered",
    r"TF-TRT Warning: Could not find TensorRT",
    r"Could not find cuda drivers on your machine",
    r"successful NUMA node read from SysFS",
])
STARTUP_NOISE = re.compile(STARTUP_NOISE_PATTERN)


@dataclass(frozen=True)
class ClusterInfo:
    """What the study may use now (totals, the largest single node) and, on an autoscaling
    cluster, what the autoscaler can add (``autoscaler``)."""

    address: str
    cpus: float
    gpus: float
    node_cpus: float
    node_gpus: float
    nodes: int
    started_here: bool
    autoscaler: Optional[Autoscaler] = None

    def largest_node(self) -> tuple[float, float]:
        """(CPUs, GPUs) of the largest node there is or the autoscaler can start."""
        cpus, gpus = self.autoscaler.largest_node() if self.autoscaler else (0.0, 0.0)
        return max(cpus, self.node_cpus), max(gpus, self.node_gpus)

    def full_size(self) -> Optional[tuple[float, float, int]]:
        """(CPUs, GPUs, nodes) once the autoscaler has started every node it may; None on a
        fixed cluster, or where the autoscaler's node types cannot be read."""
        full = self.autoscaler.full_size() if self.autoscaler and self.autoscaler.known else None
        if full is None:
            return None
        cpus, gpus, nodes = full
        return max(cpus, self.cpus), max(gpus, self.gpus), max(nodes, self.nodes)


def keep_ray_on_loopback() -> None:
    """An embedded Ray binds every server to 127.0.0.1, not the machine's network address."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    already_imported = "ray._private.ray_constants" in sys.modules
    if already_imported and os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0":
        # Ray read the variable when it was imported (before tunefleet could set it); its
        # services look the flag up at call time, so setting it here still takes effect.
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False


def worker_env_vars() -> dict[str, str]:
    """The environment tunefleet sets in Ray's workers: TensorFlow's logging quietened unless
    you set the variable yourself (in the driver's environment), and the Keras backend."""
    return {**{k: os.environ.get(k, v) for k, v in _QUIET_ENV.items()}, **_WORKER_ENV}


def _skip_startup_lines() -> None:
    """Ray's driver drops the workers' lines that match ``RAY_DEDUP_LOGS_SKIP_REGEX`` (your
    own setting wins; set it empty to see every line). Ray reads it when imported: if it
    already was, its two filters are given the pattern too."""
    if os.environ.get("RAY_DEDUP_LOGS_SKIP_REGEX") is not None:
        return
    os.environ["RAY_DEDUP_LOGS_SKIP_REGEX"] = STARTUP_NOISE_PATTERN
    ray_logging = sys.modules.get("ray._private.ray_logging")
    for name in ("stdout_deduplicator", "stderr_deduplicator"):
        dedup = getattr(ray_logging, name, None)
        if dedup is not None and getattr(dedup, "skip_re", False) is None:
            dedup.skip_re = STARTUP_NOISE


def connect(experiment: Experiment) -> ClusterInfo:
    """Start an embedded Ray (``local``) or join a running cluster; return its resources."""
    address = experiment.cluster.address
    if address == "local":
        keep_ray_on_loopback()
    _skip_startup_lines()
    import ray

    runtime_env: dict[str, Any] = {"env_vars": worker_env_vars()}
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
        _check_answers(address)
        try:
            ray.init(address=address, runtime_env=runtime_env, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SpecError("cluster.address", f"cannot connect to a Ray cluster ({exc})",
                            address, fix="start one with `ray start --head`, or use "
                            "address: local for an embedded Ray") from None
        started_here = True
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    totals = ray.cluster_resources()
    # An embedded Ray cannot grow; a cluster's autoscaler may add nodes.
    autoscaler = None if address == "local" else read_autoscaler(
        _autoscaler_config(experiment.cluster.autoscaler_config))
    return ClusterInfo(
        address=address,
        cpus=float(totals.get("CPU", 0)),
        gpus=float(totals.get("GPU", 0)),
        node_cpus=max((float(n["Resources"].get("CPU", 0)) for n in nodes), default=0.0),
        node_gpus=max((float(n["Resources"].get("GPU", 0)) for n in nodes), default=0.0),
        nodes=len(nodes),
        started_here=started_here,
        autoscaler=autoscaler,
    )


def _check_answers(address: str) -> None:
    """Refuse a ``host:port`` (or ``ray://host:port``) where nothing listens, in seconds:
    ``ray.init`` would retry the connection for minutes, printing only Ray's own warnings."""
    import socket
    from urllib.parse import urlsplit

    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"gcs://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        return  # not host:port: Ray's own parsing says what is wrong
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        raise SpecError("cluster.address", f"nothing answers at {host}:{port} "
                        f"({exc.strerror or exc})", address,
                        fix="start the cluster (`ray start --head`), check the address and the "
                        "port (the head's GCS port, 6379 by default; ray:// uses 10001), or "
                        "reach a remote head through an SSH tunnel") from None


def _autoscaler_config(path: Optional[str]) -> Optional[str]:
    """``cluster.autoscaler_config`` resolved in the driver, or a SpecError if unreadable."""
    if path is None:
        return None
    resolved = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(resolved):
        raise SpecError("cluster.autoscaler_config", f"no such file ({resolved})", path,
                        fix="give the path of the YAML the cluster was started with "
                        "(`ray up CONFIG`)")
    return resolved


def disconnect(info: ClusterInfo) -> None:
    """Shut Ray down if this process started or joined it."""
    import ray

    if info.started_here and ray.is_initialized():
        ray.shutdown()


def check_fits(experiment: Experiment, info: ClusterInfo) -> None:
    """Refuse trials that no node can ever place (Ray would wait for them forever), judged on
    an autoscaling cluster by the node types its autoscaler can start, not only those there."""
    res = experiment.resources
    scaler = info.autoscaler
    if scaler is not None and not scaler.known:
        # Some node type's resources are unknown here: it may be the one the trials need.
        warnings.warn(f"cluster.address: {info.address} has {scaler.source}, whose node types "
                      "tunefleet cannot size; trials that fit on no node there now wait until "
                      "the autoscaler adds one, and concurrency follows the resources Ray sees "
                      "(run the driver on the head node, e.g. with `tunefleet submit`, and "
                      "declare each node type's resources: {CPU: .., GPU: ..})", stacklevel=2)
        return
    node_cpus, node_gpus = info.largest_node()
    types = f"; node types its autoscaler can start: {scaler.describe()}" if scaler else ""
    if res.gpu > 0 and node_gpus == 0:
        if scaler is not None:
            raise SpecError("resources.gpu", "the Ray cluster has no GPUs, and none of its "
                            f"autoscaler's node types has any ({scaler.describe()})", res.gpu,
                            fix="set resources.gpu: 0, or add a node type with GPUs to the "
                            "cluster's config (resources: {CPU: 8, GPU: 1})")
        raise SpecError("resources.gpu", "the Ray cluster has no GPUs", res.gpu,
                        fix="set resources.gpu: 0, or run on a cluster with GPU nodes "
                        "(for a local Ray, cluster.num_gpus declares them)")
    if res.gpu > node_gpus:
        raise SpecError("resources.gpu", f"no node has that many GPUs (largest: "
                        f"{node_gpus:g}{types})", res.gpu, fix=f"use at most {node_gpus:g}")
    if res.cpu > node_cpus:
        raise SpecError("resources.cpu", f"no node has that many CPUs (largest: "
                        f"{node_cpus:g}{types})", res.cpu, fix=f"use at most {node_cpus:g}")


def concurrent_trials(experiment: Experiment, cpus: float, gpus: float) -> int:
    """How many trials run at once: ``search.max_concurrent`` or what the resources allow."""
    res = experiment.resources
    fit = math.floor(cpus / res.cpu + 1e-9)
    if res.gpu > 0:
        fit = min(fit, math.floor(gpus / res.gpu + 1e-9))
    fit = max(1, fit)
    limit = experiment.search.max_concurrent
    return min(fit, limit) if limit else fit


def planned_concurrency(experiment: Experiment, info: ClusterInfo) -> int:
    """Trials to run at once on ``info``'s cluster: what fits at full size on an autoscaling
    cluster (pending trials are what make the autoscaler add nodes), else what fits now; 0
    (no limit but ``search.max_concurrent``'s) where the autoscaler's sizes are unknown."""
    full = info.full_size()
    if info.autoscaler is not None and full is None:  # it can grow, by how much is unknown
        return experiment.search.max_concurrent or 0
    cpus, gpus = (full[0], full[1]) if full is not None else (info.cpus, info.gpus)
    return concurrent_trials(experiment, cpus, gpus)


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
    blind = []
    for node, ref in checks.items():
        try:
            if not ray.get(ref, timeout=120):
                blind.append(node)
        except (ray.exceptions.TaskUnschedulableError, ray.exceptions.NodeDiedError,
                ray.exceptions.WorkerCrashedError):
            pass  # the node left since it was listed (an autoscaler removed it): nothing to see
    return blind


def check_shared_storage(directory: str | os.PathLike[str], info: ClusterInfo) -> None:
    """On a multi-node cluster, trials on every node write checkpoints and results under the
    study directory, and retried trials read them back on another node: refuse a local path
    that some node cannot see. (A URI is checked by writing to it: storage.py.)"""
    full = info.full_size()
    if info.autoscaler is not None and (full is None or full[2] > info.nodes):
        # Nodes the autoscaler adds later are not probed now: each trial checks where it
        # starts (study_dir_unseen_here) and fails there, after its node was started.
        warnings.warn(f"output.storage: {os.fspath(directory)} is a path, and the autoscaler "
                      "may add nodes that cannot be checked now; a trial on a node that "
                      "cannot see it fails (storage_not_visible). Use an s3:// or gs:// URI, or "
                      "a path every node mounts (NFS)", stacklevel=2)
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


def study_dir_unseen_here(study_dir: str | os.PathLike[str]) -> Optional[str]:
    """In a trial: why its node cannot use the study's directory, or None if it can.

    The driver's check (:func:`check_shared_storage`) probes the nodes there at start; a node
    the autoscaler adds later, or one that replaced a lost node, is checked here, where the
    trial starts: the driver wrote ``spec.yaml`` into the study's directory before any trial,
    so a node that cannot see it has node-local storage, and the trial's checkpoints would be
    written where no one reads them."""
    if os.path.exists(os.path.join(os.fspath(study_dir), "spec.yaml")):
        return None
    import ray

    node = ray.get_runtime_context().get_node_id()
    return (f"output.storage: this trial's node ({node[:12]}...) cannot see the study's "
            f"directory {os.fspath(study_dir)} (node-local storage: the spec.yaml the driver "
            "wrote there is not on this node), so its checkpoints and results would be lost; "
            "use a path every node mounts (NFS, a shared volume), or an s3:// or gs:// URI")
