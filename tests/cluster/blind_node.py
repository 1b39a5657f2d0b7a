"""Run by tests/cluster/scenarios.py for test_node_local_storage.py (or alone, as below): a real
Ray cluster on 127.0.0.1 whose worker node runs in its own mount namespace, where the study's
storage directory is covered by an empty tmpfs, so that node cannot see what the driver writes
there (as a node's local disk would not). A study using that directory must be refused before any
trial starts; a directory every node sees must pass the same check.

    python blind_node.py main OUT_DIR          the scenario: prints RESULT {json}
    python blind_node.py worker GCS_ADDRESS    the blind node (started by main under unshare)
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


def worker(gcs_address: str) -> None:
    """A Ray worker node joining ``gcs_address``; it lives until SIGTERM."""
    import ray
    from ray._private.node import Node
    from ray._private.parameter import RayParams

    params = RayParams(gcs_address=gcs_address, num_cpus=1, num_gpus=0,
                       object_store_memory=100 * 1024 * 1024, min_worker_port=0,
                       max_worker_port=0, include_log_monitor=False, node_manager_port=0,
                       resources={"blind": 1})
    params.dashboard_agent_listen_port = None
    node = Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # atexit stops the node's processes
    print(f"NODE {node.node_id}", flush=True)
    del ray
    while True:
        time.sleep(1)


def main(out_dir: str) -> None:
    import ray
    from ray.cluster_utils import Cluster

    import tunefleet
    from tunefleet.cluster import check_shared_storage, connect
    from tunefleet.spec import SpecError

    from tests.cluster.processes import stop_group

    local = Path(out_dir) / "node-local"
    local.mkdir(parents=True)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    # The blind node: its own mount namespace, with an empty tmpfs over the study's directory.
    script = (f"mount -t tmpfs tunefleet-blind {local} && "
              f"exec {sys.executable} {__file__} worker {cluster.address}")
    proc = subprocess.Popen(["unshare", "--mount", "--map-root-user", "--propagation", "private",
                             "sh", "-c", script], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    outcome: dict = {}
    try:
        ray.init(address=cluster.address)
        deadline = time.monotonic() + 60
        while sum(n["Alive"] for n in ray.nodes()) < 2:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the blind node did not start (exit {proc.poll()})")
            time.sleep(0.5)
        spec = {"name": "blind", "data": {"dataset": "digits"},
                "model": {"builder": "mlp", "params": {"units": 8}},
                "train": {"epochs": 1},
                "search": {"algorithm": "random", "num_samples": 2, "seed": 1},
                "objective": {"metric": "val_accuracy"},
                "cluster": {"address": "auto"},
                "output": {"storage": str(local)}}
        try:
            tunefleet.run(spec)
            outcome["refused"] = None
        except SpecError as exc:
            outcome["refused"] = str(exc)
        outcome["trial_dirs"] = [p.name for p in (local / "blind").glob("trial_*")] if (
            local / "blind").exists() else []
        # The same check on a directory both nodes see passes.
        shared = Path(out_dir) / "shared"
        info = connect(tunefleet.Experiment.from_dict({**spec, "output": {"storage": str(shared)}}))
        outcome["nodes"] = info.nodes
        # A fixed cluster (its head's autoscaler has no config): it cannot grow.
        outcome["autoscaler"] = repr(info.autoscaler)
        try:
            check_shared_storage(shared, info)
            outcome["shared_refused"] = None
        except SpecError as exc:
            outcome["shared_refused"] = str(exc)
        outcome["late_node_trial"] = _trial_on_the_blind_node(tunefleet.Experiment.from_dict(spec))
        # Resuming that study on this cluster (`tunefleet resume DIR --address auto`) runs the
        # same check as a new study, before any trial.
        try:
            tunefleet.resume(local / "blind", ["cluster.address=auto"])
            outcome["resume_refused"] = None
        except SpecError as exc:
            outcome["resume_refused"] = str(exc)
    finally:
        stop_group(proc, timeout_s=30)
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(local, ignore_errors=True)
    print("RESULT " + json.dumps(outcome), flush=True)


def _trial_on_the_blind_node(experiment) -> dict:
    """A trial of ``experiment`` that Ray places on the blind node, as it would place one on a
    node the autoscaler added after the driver's check: tunefleet's own trainable, run by
    Ray Tune with the study's directory written (on the head) as the driver writes it."""
    from ray import tune

    from tunefleet.data import load_dataset
    from tunefleet.spec import dump_yaml
    from tunefleet.storage import experiment_storage
    from tunefleet.trainables import train_trial
    from tunefleet.trainables.status import trial_status

    study = experiment_storage(experiment).local_dir
    study.mkdir(parents=True, exist_ok=True)
    dump_yaml(experiment.to_dict(), study / "spec.yaml")
    # The training data as the driver ships it (its checks, which build and train a model,
    # passed when the study ran on a cluster that had no such node).
    data = load_dataset(experiment.data).training
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, data=data, experiment=experiment),
        {"CPU": 1, "blind": 1})  # only the blind node has a "blind" resource
    grid = tune.Tuner(trainable, param_space={}, tune_config=tune.TuneConfig(num_samples=1),
                      run_config=tune.RunConfig(name=experiment.name,
                                                storage_path=str(study.parent), verbose=0,
                                                failure_config=tune.FailureConfig(max_failures=2))
                      ).fit()
    result = grid[0]
    metrics = {k: result.metrics.get(k) for k in ("stop_reason", "failure_reason", "epoch",
                                                  "training_iteration")}
    return {"errors": grid.num_errors, "error": repr(result.error) if result.error else None,
            "metrics": metrics, "status": list(trial_status(None, result.metrics)),
            "checkpoint": result.checkpoint is not None}


if __name__ == "__main__":
    {"main": main, "worker": worker}[sys.argv[1]](sys.argv[2])
