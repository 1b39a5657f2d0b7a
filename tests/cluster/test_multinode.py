"""Fault injection on a real multi-node Ray cluster (head + 2 workers on 127.0.0.1): a worker
node is killed mid-study; every trial still finishes, those on the dead node resumed from their
checkpoints on the other node, and no result is lost."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_a_killed_worker_node_loses_no_trial(cluster_scenarios):
    _, outcome = cluster_scenarios.result("multinode")  # multinode_study.py, in conftest's run
    killed, trials, nodes = outcome["killed"], outcome["trials"], outcome["nodes"]
    assert killed, "no trial ran on the node to kill"
    # Trials landed on both worker nodes.
    used = {n for t in nodes.values() for n in t["nodes"]}
    assert used == set(outcome["worker_ids"])
    # Every trial finished; the one on the dead node was retried and moved.
    assert len(trials) == 2 and all(t["status"] == "completed" for t in trials), trials
    victim = next(t for t in trials if f"trial_{t['trial_id']}" == killed["trial"])
    assert victim["retries"] >= 1 and victim["epochs_trained"] == 6
    moved = nodes[killed["trial"]]
    assert len(moved["nodes"]) == 2, outcome  # the dead node, then the survivor
    # It resumed from a checkpoint: the epochs before the kill were not trained again.
    assert moved["epochs"][: killed["epoch"]] == list(range(1, killed["epoch"] + 1))
    assert set(range(1, 7)) <= set(moved["epochs"])
    lost = len(moved["epochs"]) - 6  # epochs trained twice (after the last checkpoint)
    print(f"fault injection: killed node {killed['node']} at epoch {killed['epoch']} of "
          f"{killed['trial']}; retries {victim['retries']}; epochs repeated {lost}")
    assert lost <= 1
