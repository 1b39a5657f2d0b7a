"""Run by tests/cluster/scenarios.py for test_multinode.py (or alone: python multinode_study.py
OUT_DIR): a real Ray cluster of a head and two worker nodes on 127.0.0.1
(ray.cluster_utils.Cluster), a study whose trials spread over the workers, and one worker node
killed mid-study. Prints a JSON line with what happened."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

import tunefleet


def main(out_dir: str) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})  # trials on workers
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    spec = {
        "name": "multinode", "data": {"dataset": "digits"},
        # Epochs of at least 0.75 s: a trial seen at epoch 2 is still running when its node is
        # killed (digits epochs alone take 0.2 s, and a trial could finish first).
        "model": {"builder": "tests.builders:paced_mlp", "params": {"epoch_s": 0.75}},
        "train": {"epochs": 6, "batch_size": 32, "learning_rate": 0.01},
        "search_space": {"units": {"type": "choice", "values": [8, 16, 32]}},
        # Two trials, one per worker node, side by side: the killed node's trial is retried on
        # the other node once that node's own trial has finished.
        "search": {"algorithm": "random", "num_samples": 2, "seed": 1},
        "objective": {"metric": "val_accuracy"},
        "cluster": {"address": "auto"},
        "failure": {"max_retries": 2},
        # Every epoch (not auto's improvements only): the test counts epochs repeated after
        # the kill, which then depend on the kill alone.
        "output": {"storage": out_dir, "checkpoint_every": 1},
    }
    study = Path(out_dir) / "multinode"
    killed: dict = {}

    def kill_a_worker_mid_study() -> None:
        victim = workers[0]
        victim_id = victim.node_id[:12]
        # Results as the driver writes them (its staging directory; the study's own directory
        # is updated only at Ray's experiment snapshots, every 10 s, longer than a trial here).
        session = Path(ray._private.worker._global_node.get_session_dir_path())
        while True:  # until a trial on that node has checkpointed at least 2 epochs
            for trial_dir in session.glob("artifacts/*/multinode/driver_artifacts/trial_*"):
                path = trial_dir / "result.json"
                lines = path.read_text().splitlines() if path.exists() else []
                rows = [json.loads(line) for line in lines]
                if rows and rows[-1].get("node_id") == victim_id and rows[-1]["epoch"] >= 2 \
                        and rows[-1].get("stop_reason") == "":
                    killed.update(node=victim_id, trial=trial_dir.name, epoch=rows[-1]["epoch"],
                                  at=time.time())
                    cluster.remove_node(victim, allow_graceful=False)
                    return
            time.sleep(0.2)

    watcher = threading.Thread(target=kill_a_worker_mid_study, daemon=True)
    watcher.start()
    result = tunefleet.run(spec, overwrite=True)
    watcher.join(timeout=1)
    trials = result.trials[["trial_id", "status", "retries", "epochs_trained"]].to_dict("records")
    nodes = {}
    for trial_dir in study.glob("trial_*"):
        rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
        nodes[trial_dir.name] = {"nodes": sorted({r["node_id"] for r in rows}),
                                 "epochs": [r["epoch"] for r in rows]}
    print("RESULT " + json.dumps({"killed": killed, "trials": trials, "nodes": nodes,
                                  "worker_ids": [w.node_id[:12] for w in workers]}, default=str))
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
