"""`tunefleet submit` against a real `ray start --head` on 127.0.0.1, and against nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.cluster.fake_autoscaler import free_port
from tests.cluster.processes import stop_group
from tunefleet.spec import dump_yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    return {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": str(ROOT),
            # One auth mode for the head and its clients (see the guide's note on auth tokens).
            "RAY_AUTH_MODE": "disabled", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            # The head stops at once on SIGTERM: Ray 2.60 would first drain it, for up to
            # 30 s (half this test's time), which nothing here needs.
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}


def _tunefleet(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunefleet.cli", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=600)


def _spec(tmp_path: Path) -> Path:
    # The user's own builder module travels with the job's working directory.
    (tmp_path / "my_models.py").write_text(
        "import keras\n\n"
        "def build(info, units=16):\n"
        "    inputs = keras.Input(shape=info.input_shape)\n"
        "    x = keras.layers.Dense(int(units), activation='relu')(keras.layers.Flatten()(inputs))\n"
        "    return keras.Model(inputs, keras.layers.Dense(info.num_outputs, activation='softmax')(x))\n")
    spec = {"name": "submitted", "data": {"dataset": "digits"},
            "model": {"builder": "my_models:build"},
            "train": {"epochs": 2, "batch_size": 64},
            "search_space": {"units": {"type": "choice", "values": [8, 16]}},
            "search": {"algorithm": "random", "num_samples": 2, "seed": 0},
            "objective": {"metric": "val_accuracy"},
            "output": {"storage": str(tmp_path / "results")}}
    dump_yaml(spec, tmp_path / "spec.yaml")
    return tmp_path / "spec.yaml"


def test_submit_where_nothing_listens_says_so(tmp_path):
    _spec(tmp_path)
    address = f"http://127.0.0.1:{free_port()}"
    proc = _tunefleet("submit", "spec.yaml", "--address", address, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--address: no Ray dashboard answers there" in proc.stderr
    assert address in proc.stderr and "ray start --head" in proc.stderr
    assert "ssh -L 8265:127.0.0.1:8265" in proc.stderr  # the tunnel, not an open dashboard
    assert "reached over the network" not in proc.stderr  # a loopback address: no warning


@pytest.mark.parametrize("address, exposed", [
    ("http://127.0.0.1:8265", False), ("http://localhost:8265", False), ("127.0.0.1:8265", False),
    ("http://[::1]:8265", False), ("auto", False), ("http://10.0.0.5:8265", True),
    ("http://head.example.org:8265", True), ("10.0.0.5:8265", True)])
def test_a_dashboard_reached_over_the_network_is_warned_about(address, exposed):
    from tunefleet.cluster.submit import exposed_dashboard

    warning = exposed_dashboard(address)
    assert (warning is not None) is exposed
    if exposed:
        assert "without authentication" in warning and "ray dashboard CLUSTER.yaml" in warning
        assert "ssh -L 8265:127.0.0.1:8265" in warning and urlparse_host(address) in warning


def urlparse_host(address: str) -> str:
    return address.split("//")[-1].rsplit(":", 1)[0]


def submitted_study(tmp_path: Path) -> dict:
    """Run by scenarios.py (``submitted``) in a process conftest.py starts: `tunefleet submit
    --wait` of ``_spec``'s study to a `ray start --head` on 127.0.0.1 with a dashboard; what it
    printed and its exit code."""
    _spec(tmp_path)
    port, dashboard = free_port(), free_port()
    # Every port of its own: the test session's Ray already holds Ray's default agent ports,
    # and a head whose dashboard agent cannot bind accepts no job.
    ports = [f"--{name}={free_port()}" for name in (
        "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
        "metrics-export-port", "ray-client-server-port")]
    # A Ray directory of its own (short: Ray's socket paths): the job's driver finds its
    # cluster from the newest one recorded there, and other clusters start beside this one.
    root = Path(tempfile.mkdtemp(prefix="tfsub", dir="/tmp"))
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", "--num-cpus=2",
         "--num-gpus=0", "--disable-usage-stats", f"--temp-dir={root}", *ports],
        env=_env(), cwd=tmp_path, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{address}/api/version", timeout=2)
                break
            except OSError:
                if head.poll() is not None or time.monotonic() > deadline:
                    return {"head": f"the head node's dashboard never answered (ray start "
                                    f"--head: exit {head.poll()})"}
                time.sleep(0.2)
        proc = _tunefleet("submit", "spec.yaml", "--address", address, "--wait", cwd=tmp_path)
        return {"head": None, "returncode": proc.returncode, "output": proc.stdout + proc.stderr}
    finally:
        stop_group(head)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_submit_runs_the_study_as_a_ray_job(cluster_scenarios):
    tmp_path, outcome = cluster_scenarios.result("submitted")
    assert outcome["head"] is None, outcome["head"]
    out = outcome["output"]
    assert outcome["returncode"] == 0, out[-4000:]
    assert "submitted job" in out and "ray job stop" in out and "SUCCEEDED" in out
    study = tmp_path / "results" / "submitted"
    summary = json.loads((study / "summary.json").read_text())
    assert summary["trials"]["completed"] == 2
    assert summary["cluster"]["address"] != "local"  # it joined the cluster, not its own Ray
    assert (study / "report" / "report.html").exists()
