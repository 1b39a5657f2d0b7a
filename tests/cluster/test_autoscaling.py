"""Planning on an autoscaling cluster: resources are judged by the node types its autoscaler
can start, not only by the nodes there at start. A real fake-provider Ray cluster whose head
has no GPU runs a half-GPU study on the GPU workers its autoscaler adds; the planning rules are
also checked against recorded autoscaler configurations (the shipped AWS config among them)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.cluster.fake_autoscaler import HEAD_TYPE
from tunefleet.cluster import ClusterInfo, check_fits, planned_concurrency
from tunefleet.cluster.autoscaling import _monitor_config, node_types_from_config, read_autoscaler
from tunefleet.cluster.connection import _autoscaler_config, _check_answers, check_shared_storage
from tunefleet.spec import Experiment, SpecError

ROOT = Path(__file__).resolve().parents[2]
AWS_GPU = ROOT / "tunefleet" / "cluster" / "launcher" / "aws-gpu.yaml"


def _experiment(cpu: float, gpu: float, **search) -> Experiment:
    return Experiment.from_dict({
        "name": "plan", "data": {"dataset": "digits"}, "model": {"builder": "mlp"},
        "search": {"algorithm": "random", "num_samples": 20, **search},
        "objective": {"metric": "val_accuracy", "mode": "max"},
        "resources": {"cpu": cpu, "gpu": gpu}, "cluster": {"address": "auto"}})


def _head_only(config: dict, source: str = "recorded") -> ClusterInfo:
    """The cluster as it is at start: the head alone, as the config declares it."""
    scaler = node_types_from_config(config, source)
    head = next(t for t in scaler.node_types if t.head)
    return ClusterInfo(address="auto", cpus=head.cpus or 0.0, gpus=head.gpus or 0.0,
                       node_cpus=head.cpus or 0.0, node_gpus=head.gpus or 0.0, nodes=1,
                       started_here=False, autoscaler=scaler)


def test_the_shipped_gpu_config_plans_for_the_gpu_workers_it_can_start():
    config = yaml.safe_load(AWS_GPU.read_text())
    info = _head_only(config)
    assert info.gpus == 0.0 and info.nodes == 1  # a CPU-only head at start
    check_fits(_experiment(cpu=2, gpu=0.5), info)  # not refused: GPU workers can start
    full = info.full_size()
    assert full is not None
    cpus, gpus, nodes = full
    assert isinstance(gpus, float) and gpus == 4.0 and nodes == 5  # head + 4 g5.2xlarge
    assert cpus == 4.0 + 4 * 8.0
    # Half-GPU trials with 2 CPUs: 8 of them fit at full size (4 GPUs / 0.5), not the head's 0.
    assert planned_concurrency(_experiment(cpu=2, gpu=0.5), info) == 8
    assert planned_concurrency(_experiment(cpu=2, gpu=0.5, max_concurrent=3), info) == 3
    # A trial larger than any node type is still refused, with the node types named.
    with pytest.raises(SpecError, match=r"^resources\.gpu: no node has that many GPUs "
                       r"\(largest: 1; node types its autoscaler can start: head ×1 "
                       r"\(4 CPU, 0 GPU\), gpu_worker ×4 \(8 CPU, 1 GPU\)\)"):
        check_fits(_experiment(cpu=1, gpu=2), info)


def test_a_gpu_share_on_a_cluster_that_can_never_have_gpus_is_refused():
    config = {"max_workers": 3, "head_node_type": "head", "available_node_types": {
        "head": {"resources": {"CPU": 2}, "max_workers": 0},
        "cpu_worker": {"resources": {"CPU": 8}, "min_workers": 0, "max_workers": 3}}}
    info = _head_only(config)
    with pytest.raises(SpecError, match=r"^resources\.gpu: the Ray cluster has no GPUs, and none "
                       r"of its autoscaler's node types has any \(head ×1 \(2 CPU, 0 GPU\), "
                       r"cpu_worker ×3 \(8 CPU, 0 GPU\)\).*add a node type with GPUs"):
        check_fits(_experiment(cpu=1, gpu=0.5), info)
    # CPU-only trials plan for the workers the autoscaler can add: 2 + 3 x 8 CPUs.
    assert planned_concurrency(_experiment(cpu=2, gpu=0), info) == 13
    check_fits(_experiment(cpu=8, gpu=0), info)  # a cpu_worker holds it, the head does not


def test_node_types_whose_resources_are_not_declared_are_not_guessed():
    config = {"head_node_type": "head", "available_node_types": {
        "head": {"resources": {}, "max_workers": 0},
        "gpu_worker": {"resources": {}, "min_workers": 0, "max_workers": 2}}}
    scaler = node_types_from_config(config, "recorded")
    info = ClusterInfo(address="auto", cpus=4.0, gpus=0.0, node_cpus=4.0, node_gpus=0.0,
                       nodes=1, started_here=False, autoscaler=scaler)
    assert not scaler.known and info.full_size() is None
    with pytest.warns(UserWarning, match="cannot size.*declare each node type's resources"):
        check_fits(_experiment(cpu=1, gpu=0.5), info)  # maybe a GPU type: not refused
    # No cap from the head's size: pending trials are what make the autoscaler add nodes.
    assert planned_concurrency(_experiment(cpu=1, gpu=0.5), info) == 0


@pytest.mark.slow
def test_a_gpu_study_runs_on_gpu_workers_the_autoscaler_starts(cluster_scenarios):
    """scenarios.py's ``autoscaled`` (autoscaling_driver.py), in a process conftest.py starts:
    a fake autoscaling cluster whose head has no GPU, and that process the study's driver."""
    _, outcome = cluster_scenarios.result("autoscaled")
    address, config = outcome["address"], Path(outcome["config"])
    preview = outcome["preview"]
    # Before the study: no GPU, so no trial fits now; at full size 2 GPU workers hold 4
    # (0.5 CPU and 0.5 GPU each), more than the study's 2 trials.
    assert f"0 at once on cluster {address} now: 1 node(s), 1 CPUs, 0 GPUs" in preview
    assert ("2 at once at full size: 3 nodes, 3 CPUs, 2 GPUs (ray.head.default ×1 (1 CPU, 0 GPU), "
            "gpu_worker ×2 (1 CPU, 1 GPU))") in preview
    summary = outcome["summary"]
    cluster = summary["cluster"]
    # As it was when the study started: the head alone, no GPU.
    assert cluster["gpus"] == 0.0 and cluster["nodes"] == 1
    assert type(cluster["node_gpus"]) is float and cluster["node_gpus"] == 0.0
    assert cluster["max_concurrent_trials"] == 4  # planned for full size, not for the head
    assert [t["name"] for t in cluster["autoscaler"]["node_types"]] == [HEAD_TYPE, "gpu_worker"]
    # Read from the YAML the head's autoscaler was started with (found from its process).
    assert cluster["autoscaler"]["source"] == f"the autoscaler's configuration {config}"
    assert summary["trials"]["completed"] == 2
    # Every epoch of every trial ran holding a GPU: on a worker the autoscaler added (the
    # head has none).
    assert len(outcome["gpu_ids"]) == 2
    assert all(ids == ["0"] for ids in outcome["gpu_ids"].values()), outcome["gpu_ids"]
    # Every process of the cluster ended with it: the head, its GCS, autoscaler and workers.
    assert outcome["left"] == []


def test_node_types_take_the_autoscalers_defaults():
    # A worker type without max_workers may have the cluster's; the cluster's comes from the
    # provider's defaults in Ray (aws: 2); the head type's is 0.
    config = {"provider": {"type": "aws"}, "head_node_type": "head", "available_node_types": {
        "head": {"resources": {"CPU": 4}},
        "gpu_worker": {"resources": {"CPU": 8, "GPU": 1}}}}
    scaler = node_types_from_config(config, "recorded")
    assert scaler.max_workers == 2
    assert [(t.name, t.max_count, t.head) for t in scaler.node_types] == [
        ("head", 1, True), ("gpu_worker", 2, False)]
    assert scaler.full_size() == (20.0, 2.0, 3)


def test_a_named_cluster_config_is_read_and_must_exist(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"max_workers": 2, "head_node_type": "h",
                                    "available_node_types": {
                                        "h": {"resources": {"CPU": 2}},
                                        "g": {"resources": {"CPU": 4, "GPU": 1}}}}))
    scaler = read_autoscaler(str(path))  # no Ray needed: the file is read as named
    assert scaler is not None and scaler.known and scaler.source == f"the cluster config {path}"
    assert scaler.largest_node() == (4.0, 1.0)
    with pytest.raises(SpecError, match=r"^cluster\.autoscaler_config: no such file .*nope\.yaml"):
        _autoscaler_config(str(tmp_path / "nope.yaml"))
    with pytest.raises(SpecError, match=r"autoscaler_config names an autoscaling cluster's YAML"
                       r".*address='local'"):
        Experiment.from_dict({"name": "x", "data": {"dataset": "digits"},
                              "model": {"builder": "mlp"},
                              "objective": {"metric": "val_accuracy", "mode": "max"},
                              "cluster": {"autoscaler_config": str(path)}})


def test_the_autoscaler_process_tells_a_fixed_cluster_from_an_autoscaling_one(tmp_path):
    """Every head runs Ray's monitor; only an autoscaling one is started with a config (a
    relative one resolved against the monitor's own directory). A pid that is not a monitor
    here means the monitor runs on another machine."""
    monitor = tmp_path / "monitor.py"
    monitor.write_text("import time\ntime.sleep(60)\n")
    fixed = subprocess.Popen([sys.executable, str(monitor), "--logs-dir=/tmp"])
    scaling = subprocess.Popen([sys.executable, str(monitor), "--autoscaling-config=c.yaml"],
                               cwd=tmp_path)
    try:
        time.sleep(0.2)
        assert _monitor_config(fixed.pid) == (True, None)
        assert _monitor_config(scaling.pid) == (True, tmp_path / "c.yaml")
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            time.sleep(0.2)
            assert _monitor_config(other.pid) == (False, None)
        finally:
            other.kill()
    finally:
        fixed.kill()
        scaling.kill()


def test_an_address_where_nothing_listens_is_refused_in_seconds():
    started = time.monotonic()
    with pytest.raises(SpecError, match=r"^cluster\.address: nothing answers at 127\.0\.0\.1:1 "
                       r".*Start the cluster"):
        _check_answers("127.0.0.1:1")
    with pytest.raises(SpecError, match=r"nothing answers at 127\.0\.0\.1:1"):
        _check_answers("ray://127.0.0.1:1")
    assert time.monotonic() - started < 15
    _check_answers("auto")  # not host:port: left to Ray


def test_a_local_path_on_a_cluster_that_can_grow_is_warned_about(tmp_path):
    info = _head_only(yaml.safe_load(AWS_GPU.read_text()))
    with pytest.warns(UserWarning, match=r"the autoscaler may add nodes that cannot be checked "
                      r"now; a trial on a node that cannot see it fails \(storage_not_visible\)"):
        check_shared_storage(tmp_path, info)


def test_preview_of_a_cluster_where_nothing_answers_says_so_at_once(cluster_scenarios):
    """scenarios.py's ``unreachable``: `tunefleet preview`, in a process conftest.py starts."""
    _, proc = cluster_scenarios.result("unreachable")
    assert proc["returncode"] == 0, proc["stderr"][-2000:]
    assert ("trials at once unknown (cluster 127.0.0.1:1, not reachable from here: nothing "
            "answers at 127.0.0.1:1 (Connection refused))") in proc["stdout"]
    assert proc["took_s"] < 120  # not minutes of Ray retrying the connection
