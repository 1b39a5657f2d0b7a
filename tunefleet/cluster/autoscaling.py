"""What an autoscaling Ray cluster can grow to: its node types, read from the autoscaler.

A cluster launched with ``ray up`` (or KubeRay) starts small (often a CPU-only head) and adds
nodes when tasks ask for resources nobody has. Judged by what is there at start, a GPU study
would be refused and its concurrency capped at the head's size, so Ray would never see the
pending trials that make it scale up. Planning therefore uses the node types that *can* start.

Where they come from, in order:
1. the cluster configuration the autoscaler reports to Ray's GCS (autoscaler v2, KubeRay);
2. the YAML the head's autoscaler (``monitor.py --autoscaling-config=...``) was started with,
   readable where the driver runs on the head node (``ray job submit``, ``ray submit``,
   ``tunefleet submit``): ``available_node_types`` with their ``resources`` and
   ``max_workers``, and the cluster-wide ``max_workers``.
A node type without declared ``resources`` (a cloud provider fills them in from the instance
type) counts as unknown.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

__all__ = ["NodeType", "Autoscaler", "read_autoscaler", "node_types_from_config"]


@dataclass(frozen=True)
class NodeType:
    """A kind of node the autoscaler may start, and how many of it the cluster may have."""

    name: str
    cpus: Optional[float]  # None: not declared in the config (filled in by the cloud provider)
    gpus: Optional[float]
    max_count: int  # nodes of this type at most (the head type counts its head node)
    head: bool = False

    @property
    def known(self) -> bool:
        return self.cpus is not None


@dataclass(frozen=True)
class Autoscaler:
    """The autoscaler of the cluster the driver joined. ``node_types`` is empty when it runs
    but its configuration cannot be read from here (``source`` says why)."""

    source: str
    node_types: tuple[NodeType, ...] = field(default=())
    max_workers: Optional[int] = None

    @property
    def known(self) -> bool:
        """Whether every node type's resources are known."""
        return bool(self.node_types) and all(t.known for t in self.node_types)

    def largest_node(self) -> tuple[float, float]:
        """(CPUs, GPUs) of the largest node any type provides (unknown types left out)."""
        known = [t for t in self.node_types if t.known and t.max_count > 0]
        return (max((t.cpus or 0.0 for t in known), default=0.0),
                max((t.gpus or 0.0 for t in known), default=0.0))

    def full_size(self) -> Optional[tuple[float, float, int]]:
        """(CPUs, GPUs, nodes) at full size: every type at its maximum, within the cluster's
        ``max_workers`` (filled with the largest nodes of each resource first: an upper
        bound per resource); None when a type has no limit."""
        nodes = sum(self._counts(sorted(self.node_types, key=lambda t: -t.max_count)))
        if nodes >= _UNBOUNDED:
            return None
        return self._most("cpus"), self._most("gpus"), nodes

    def _counts(self, types: list[NodeType]) -> list[int]:
        """How many nodes of each of ``types`` (in that order of preference) fit under the
        cluster's ``max_workers`` (the head node is not a worker)."""
        left = math.inf if self.max_workers is None else self.max_workers
        counts = []
        for t in types:
            head = 1 if t.head else 0
            workers = min(t.max_count - head, left)
            left -= workers
            counts.append(int(workers) + head)
        return counts

    def _most(self, resource: str) -> float:
        types = sorted((t for t in self.node_types if t.known),
                       key=lambda t: -(getattr(t, resource) or 0.0))
        return float(sum(n * (getattr(t, resource) or 0.0)
                         for t, n in zip(types, self._counts(types), strict=True)))

    def describe(self) -> str:
        """``head ×1 (4 CPU, 0 GPU), gpu_worker ×4 (8 CPU, 1 GPU)``."""
        def one(t: NodeType) -> str:
            what = (f"{t.cpus:g} CPU, {t.gpus or 0:g} GPU" if t.known
                    else "resources not declared")
            return f"{t.name} ×{t.max_count} ({what})"
        return ", ".join(one(t) for t in self.node_types)


def node_types_from_config(config: dict[str, Any], source: str) -> Autoscaler:
    """The node types of a cluster-launcher config (``available_node_types``), with the
    autoscaler's own defaults: a worker type's ``max_workers`` is the cluster's, the head
    type's 0, and the cluster's comes from the provider's ``defaults.yaml`` in Ray."""
    head_type = config.get("head_node_type")
    workers = (config["max_workers"] if "max_workers" in config
               else _provider_default_max_workers(config))
    types = []
    for name, node in (config.get("available_node_types") or {}).items():
        resources = node.get("resources") or {}
        declared = "CPU" in resources
        head = name == head_type
        most = node.get("max_workers", 0 if head else workers)
        types.append(NodeType(
            name=str(name), cpus=float(resources["CPU"]) if declared else None,
            gpus=float(resources.get("GPU", 0)) if declared else None,
            max_count=(_UNBOUNDED if most is None else int(most)) + (1 if head else 0),
            head=head))
    return Autoscaler(source, tuple(types), int(workers) if workers is not None else None)


# A node type with no limit at all (no max_workers anywhere): counted as this many at most.
_UNBOUNDED = 10**6


def _provider_default_max_workers(config: dict[str, Any]) -> Optional[int]:
    """The cluster-wide ``max_workers`` Ray fills in for the config's provider, if any."""
    kind = str((config.get("provider") or {}).get("type", ""))
    if not kind:
        return None
    import ray.autoscaler
    import yaml

    path = Path(ray.autoscaler.__file__).parent / kind / "defaults.yaml"
    try:
        value = (yaml.safe_load(path.read_text()) or {}).get("max_workers")
    except (OSError, yaml.YAMLError):
        return None
    return int(value) if value is not None else None


def _from_gcs() -> Optional[Autoscaler]:
    """Node groups an autoscaler reported to the GCS, where one does (none in Ray 2.60's own
    autoscalers; kept for those that do), or None."""
    from ray._private.state import state

    try:
        config = state.get_cluster_config()
    except Exception:  # noqa: BLE001 - an older or newer GCS without it: try the next source
        return None
    if config is None or not config.node_group_configs:
        return None
    types = tuple(NodeType(g.name or f"group{i}", float(g.resources.get("CPU", 0)),
                           float(g.resources.get("GPU", 0)),
                           int(g.max_count) if g.max_count >= 0 else _UNBOUNDED)
                  for i, g in enumerate(config.node_group_configs))
    return Autoscaler("the cluster configuration the autoscaler reported to Ray", types)


def _autoscaler_v2() -> bool:
    """Whether the cluster runs Ray's autoscaler v2 (KubeRay's default in newer versions)."""
    try:
        from ray.autoscaler.v2.utils import is_autoscaler_v2

        return bool(is_autoscaler_v2(fetch_from_server=True))
    except Exception:  # noqa: BLE001 - no such key or module: the v1 autoscaler
        return False


def _monitor_status() -> Optional[dict[str, Any]]:
    """The v1 autoscaler's last status (every head's monitor writes one), or None."""
    from ray._private import ray_constants
    from ray.experimental.internal_kv import _internal_kv_get, _internal_kv_initialized

    if not _internal_kv_initialized():
        return None
    raw = _internal_kv_get(ray_constants.DEBUG_AUTOSCALING_STATUS)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _monitor_config(monitor_pid: int) -> tuple[bool, Optional[Path]]:
    """(whether the autoscaler process runs on this machine, the ``--autoscaling-config`` it
    was started with, resolved against its working directory; None: it has none, which is a
    fixed-size cluster's read-only autoscaler)."""
    proc = Path(f"/proc/{monitor_pid}")
    try:
        args = [a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0")]
    except OSError:
        return False, None
    if not any(a.endswith("monitor.py") for a in args):
        return False, None  # that pid is another process here: the monitor is elsewhere
    for i, arg in enumerate(args):
        value = (arg.split("=", 1)[1] if arg.startswith("--autoscaling-config=")
                 else args[i + 1] if arg == "--autoscaling-config" and i + 1 < len(args)
                 else None)
        if value:
            path = Path(value).expanduser()
            if not path.is_absolute():
                try:
                    path = Path(os.readlink(proc / "cwd")) / path
                except OSError:
                    pass
            return True, path
    return True, None


def read_config_file(path: Path, source: str) -> Autoscaler:
    """The node types of the cluster config at ``path``."""
    import yaml

    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        return Autoscaler(f"an autoscaler whose configuration {path} cannot be read ({exc})")
    return node_types_from_config(config or {}, source)


def read_autoscaler(config: Optional[str] = None) -> Optional[Autoscaler]:
    """The autoscaler of the connected cluster, or None when it cannot grow (a fixed cluster,
    an embedded Ray). ``config``: the cluster's YAML named in the spec
    (``cluster.autoscaler_config``), read instead of looking for the autoscaler's own."""
    if config:
        return read_config_file(Path(config), f"the cluster config {config}")
    from_gcs = _from_gcs()
    if from_gcs is not None:
        return from_gcs
    if _autoscaler_v2():
        return Autoscaler("Ray's autoscaler v2, which does not tell drivers its node types "
                          "(name the cluster's YAML with cluster.autoscaler_config)")
    status = _monitor_status()
    pid = (status or {}).get("monitor_pid")
    if not pid:
        return None
    here, path = _monitor_config(int(pid))
    if not here:
        return Autoscaler("an autoscaler on the head node, whose configuration is not readable "
                          "from here (run the driver on the head, or name the cluster's YAML "
                          "with cluster.autoscaler_config)")
    if path is None:
        return None  # the read-only autoscaler of a cluster started without a config
    return read_config_file(path, f"the autoscaler's configuration {path}")
