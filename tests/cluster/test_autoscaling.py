"""Planning on an autoscaling cluster: resources are judged by the node types its autoscaler
can start, not only by the nodes there at start. A real fake-provider Ray cluster whose head
has no GPU runs a half-GPU study on the GPU workers its autoscaler adds; the planning rules are
also checked against recorded autoscaler configurations (the shipped AWS config among them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cluster.fake_autoscaler import HEAD_TYPE, autoscaling_cluster, cluster_env, processes_of
from tunefleet.cluster import ClusterInfo, check_fits, planned_concurrency
from tunefleet.cluster.autoscaling import node_types_from_config
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
def test_a_gpu_study_runs_on_gpu_workers_the_autoscaler_starts(tmp_path):
    workers = {"gpu_worker": {"resources": {"CPU": 1, "GPU": 1}, "max_workers": 2}}
    with autoscaling_cluster({"CPU": 1, "GPU": 0}, workers) as (address, config):
        env = {**cluster_env(), "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, str(ROOT / "tests" / "cluster" /
                                                   "autoscaling_driver.py"), address,
                               str(tmp_path)], env=env, capture_output=True, text=True,
                              timeout=400, cwd=tmp_path)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (proc.stdout[-3000:], proc.stderr[-3000:])
    outcome = json.loads(lines[-1].removeprefix("RESULT "))
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
    assert summary["trials"]["completed"] == 2
    # Every epoch of every trial ran holding a GPU: on a worker the autoscaler added (the
    # head has none).
    assert len(outcome["gpu_ids"]) == 2
    assert all(ids == ["0"] for ids in outcome["gpu_ids"].values()), outcome["gpu_ids"]
    assert processes_of(config.parent) == []  # the head, its GCS, autoscaler and workers
