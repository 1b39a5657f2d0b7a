"""The cluster scenarios three tests here assert on (scenarios.py), run once per session in
one process of their own: each scenario used to pay its own interpreter, TensorFlow import and
Ray start-up in a process of its own. Only the scenarios of the tests selected run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]

# scenario -> the test that asserts on it
TESTS = {
    "gpus": "test_gpus.py::test_half_gpu_trials_are_packed_two_per_declared_gpu_and_the_driver_"
            "hides_them",
    "multinode": "test_multinode.py::test_a_killed_worker_node_loses_no_trial",
    "blind": "test_node_local_storage.py::test_a_node_local_storage_path_is_refused_with_the_"
             "node_named",
}


def can_make_a_mount_namespace() -> str:
    """'' if `unshare` can give a process its own mounts here, else why not."""
    try:
        probe = subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c",
                                "mount -t tmpfs probe /mnt"], capture_output=True, text=True,
                               timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return "" if probe.returncode == 0 else probe.stderr.strip()[:200]


class Scenarios(NamedTuple):
    out: Path  # each scenario's directory is out / its name
    proc: subprocess.CompletedProcess
    outcomes: dict[str, dict[str, Any]]  # name -> {"result": ...} or {"error": traceback}
    blind_skipped: str  # why the blind node could not be made ('' when it ran)

    def result(self, name: str) -> tuple[Path, dict[str, Any]]:
        """(the scenario's directory, its outcome); fails the test with the reason if none."""
        outcome = self.outcomes.get(name)
        assert self.proc.returncode == 0 and outcome is not None, (
            f"no outcome of scenario {name!r} (is its test named in TESTS above?)",
            self.proc.returncode, self.proc.stdout[-3000:], self.proc.stderr[-3000:])
        assert "error" not in outcome, outcome["error"]
        return self.out / name, outcome["result"]


@pytest.fixture(scope="session")
def cluster_scenarios(request, tmp_path_factory) -> Scenarios:
    selected = {item.nodeid.split("tests/cluster/")[-1] for item in request.session.items}
    names = [name for name, test in TESTS.items() if test in selected]
    blind_skipped = can_make_a_mount_namespace() if "blind" in names else ""
    if blind_skipped:
        names.remove("blind")
    out = tmp_path_factory.mktemp("cluster_scenarios")
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "cluster" / "scenarios.py"),
                           str(out), *names], env=env, capture_output=True, text=True,
                          timeout=1500, cwd=out)
    outcomes = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            name, _, outcome = line.removeprefix("RESULT ").partition(" ")
            outcomes[name] = json.loads(outcome)
    return Scenarios(out, proc, outcomes, blind_skipped)
