"""On a multi-node cluster, a study directory some node cannot see is refused before any trial
starts, and a trial on a node that joined later and cannot see it fails at once, saying why.
The blind node is a real Ray worker node in its own mount namespace (see blind_node.py); a
directory both nodes see passes the same check."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_a_node_local_storage_path_is_refused_with_the_node_named(cluster_scenarios):
    why = cluster_scenarios.blind_skipped
    if why:
        pytest.skip(f"this machine cannot give a Ray node its own mounts, so no node can be "
                    f"made blind to a path (unshare: {why})")
    tmp_path, outcome = cluster_scenarios.result("blind")  # blind_node.py, in conftest's run
    assert outcome["nodes"] == 2
    assert outcome["autoscaler"] == "None"  # a fixed cluster: nothing to plan beyond it
    local = tmp_path / "node-local"
    assert outcome["refused"] is not None, "the node-local path was accepted"
    assert outcome["refused"].startswith(
        f"output.storage: {local} is node-local: 1 of the cluster's 2 nodes cannot see it")
    assert "s3:// or gs:// URI" in outcome["refused"]
    assert outcome["trial_dirs"] == []  # refused before any trial started
    assert outcome["shared_refused"] is None
    # A node that joins after that check (an autoscaled one) is checked where the trial starts:
    # the trial ends at once as failed, saying why, and is not retried.
    late = outcome["late_node_trial"]
    assert late["errors"] == 0 and late["error"] is None, late
    assert late["metrics"]["stop_reason"] == "storage_not_visible"
    assert late["metrics"]["training_iteration"] == 1 and late["metrics"]["epoch"] == 0
    assert not late["checkpoint"]
    status, reason = late["status"]
    assert status == "failed"
    assert reason == late["metrics"]["failure_reason"]
    assert reason.startswith("output.storage: this trial's node (")
    assert f"cannot see the study's directory {local / 'blind'} (node-local storage" in reason
    assert reason.endswith("or an s3:// or gs:// URI")
    assert (outcome["resume_refused"] or "").startswith(
        f"output.storage: {local} is node-local: 1 of the cluster's 2 nodes cannot see it")
