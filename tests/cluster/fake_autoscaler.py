"""A real Ray autoscaling cluster on 127.0.0.1: a head started with Ray's fake multi-node
provider, whose autoscaler starts worker nodes (real raylets on this machine) when tasks ask for
resources no node has, and removes them when idle.

Not ``ray.cluster_utils.AutoscalingCluster``: in Ray 2.60's wheel it reads an example config
the wheel does not ship, and its ``start()`` runs ``ray stop --force``, which would end every
Ray process on the machine (the test session's own included). The config is written here, the
head started with it directly, and only this cluster's processes are stopped (every one of them
carries the cluster's own temporary directory on its command line).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml

BIN = Path(sys.executable).parent
HEAD_TYPE = "ray.head.default"  # FAKE_HEAD_NODE_TYPE in ray/autoscaler/_private/fake_multi_node


def free_port() -> int:
    """A port free on 127.0.0.1 now, drawn at random below Linux's ephemeral range (32768 up):
    not the port the kernel would give the next process binding port 0, as binding port 0
    here would return. Ray's agents bind port 0, and the cluster scenarios start side by side:
    such a port, named to one head, could be taken by another cluster's agent first."""
    while True:
        port = random.randint(20000, 32767)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def cluster_env() -> dict[str, str]:
    """The environment of the head and of every driver joining it: Ray on loopback, one auth
    mode for both (see the guide), the fake provider allowed, a 1 s autoscaler loop, and no
    drain on SIGTERM (Ray 2.60 drains a `ray start --block` node for up to 30 s first)."""
    return {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled",
            "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1",
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def config(port: int, head: dict[str, float], workers: dict[str, dict[str, Any]]) -> dict:
    """A cluster-launcher config for the fake provider: ``head`` resources, and worker node
    types ``{name: {"resources": {...}, "max_workers": n}}`` that start with none."""
    # The fake provider tags its head node with this type: under any other name the
    # autoscaler would start and remove "head" nodes in a loop (max_workers_per_type).
    types: dict[str, Any] = {HEAD_TYPE: {"resources": head, "node_config": {}, "max_workers": 0}}
    for name, spec in workers.items():
        types[name] = {"resources": spec["resources"], "node_config": {}, "min_workers": 0,
                       "max_workers": spec["max_workers"]}
    return {
        "cluster_name": "tunefleet-fake", "max_workers": sum(w["max_workers"] for w in
                                                             workers.values()),
        "idle_timeout_minutes": 5, "upscaling_speed": 1.0,
        "provider": {"type": "fake_multinode", "gcs_address": f"127.0.0.1:{port}",
                     "use_node_id_as_ip": True, "disable_node_updaters": True,
                     "disable_launch_config_check": True},
        "available_node_types": types, "head_node_type": HEAD_TYPE, "auth": {"ssh_user": "ubuntu"},
        "docker": {}, "file_mounts": {}, "cluster_synced_files": [],
        "file_mounts_sync_continuously": False, "initialization_commands": [],
        "setup_commands": [], "head_setup_commands": [], "worker_setup_commands": [],
        "head_start_ray_commands": [], "worker_start_ray_commands": [],
    }


def _wait_for_the_autoscaler(address: str, proc: subprocess.Popen, root: Path,
                             timeout_s: float = 120) -> None:
    """Until the head's autoscaler has written its first status (it then knows the nodes),
    read from the head's key-value store by this process, which connects for the purpose and
    disconnects after (it must not be connected to another Ray)."""
    import ray
    from ray._private import ray_constants
    from ray.experimental.internal_kv import _internal_kv_get

    deadline = time.monotonic() + timeout_s

    def check() -> None:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the fake autoscaling head did not come up (exit {proc.poll()}); "
                               f"logs under {root / 'ray'}")
        time.sleep(0.2)

    host, port = address.rsplit(":", 1)
    while True:  # the GCS first: ray.init would retry it for a minute, warning meanwhile
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            break
        except OSError:
            check()
    ray.init(address=address, configure_logging=False, log_to_driver=False)
    try:
        while not _internal_kv_get(ray_constants.DEBUG_AUTOSCALING_STATUS):
            check()
    finally:
        ray.shutdown()


@contextmanager
def autoscaling_cluster(head: dict[str, float],
                        workers: dict[str, dict[str, Any]]) -> Iterator[tuple[str, Path]]:
    """Start the head; yield (GCS address, the config file) once its autoscaler reported;
    stop every process it started. The calling process must not be connected to a Ray: it
    connects to the head to wait for its autoscaler (with ``cluster_env()``'s auth mode)."""
    root = Path(tempfile.mkdtemp(prefix="tfas", dir="/tmp"))  # short: Ray's socket paths
    port = free_port()
    path = root / "cluster.yaml"
    path.write_text(yaml.safe_dump(config(port, head, workers), sort_keys=False))
    ports = [f"--{name}={free_port()}" for name in (
        "dashboard-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
        "runtime-env-agent-port", "metrics-export-port", "ray-client-server-port")]
    env = cluster_env()
    proc = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}",
         f"--autoscaling-config={path}", "--dashboard-host=127.0.0.1",
         f"--num-cpus={head.get('CPU', 0):g}", f"--num-gpus={head.get('GPU', 0):g}",
         "--disable-usage-stats", f"--temp-dir={root / 'ray'}", *ports],
        env=env, cwd=root, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    try:
        _wait_for_the_autoscaler(address, proc, root)
        yield address, path
    finally:
        _stop(proc, root)


def _stop(proc: subprocess.Popen, root: Path) -> None:
    """End the head's process group, then every process of this cluster still alive (the GCS
    server and the autoscaler outlive a SIGTERM to the head's group, and the worker nodes the
    autoscaler started are children of the autoscaler)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = processes_of(root)
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 3
        while sig == signal.SIGTERM and processes_of(root) and time.monotonic() < deadline:
            time.sleep(0.1)  # up to 3 s for them to end, then SIGKILL
    shutil.rmtree(root, ignore_errors=True)


def processes_of(root: Path) -> list[int]:
    """The processes of the cluster started under ``root`` (it is on their command lines)."""
    marker = str(root).encode()
    return [pid for pid in (int(p) for p in os.listdir("/proc") if p.isdigit())
            if marker in _cmdline(pid)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


if __name__ == "__main__":  # a manual check: python -m tests.cluster.fake_autoscaler
    os.environ.update(cluster_env())
    with autoscaling_cluster({"CPU": 1}, {"gpu_worker": {"resources": {"CPU": 1, "GPU": 1},
                                                          "max_workers": 2}}) as (addr, cfg):
        print(json.dumps({"address": addr, "config": str(cfg)}))
