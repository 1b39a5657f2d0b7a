"""A study whose driver is killed with SIGKILL mid-study is completed by `tunefleet resume`:
trials that had finished are not run again, the others continue from their checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

SPEC = """
name: killed
data: {dataset: digits}
model: {builder: cnn, params: {filters: 8, dense_units: 16}}
train: {epochs: 5, batch_size: 32, learning_rate: 0.01}
search_space:
  dropout: {type: uniform, low: 0.0, high: 0.3}
search: {algorithm: random, num_samples: 4, seed: 2}
objective: {metric: val_accuracy}
cluster: {num_cpus: 2}
output: {storage: results}
"""


def _tunefleet(*args: str, cwd: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tunefleet.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def _results(trial_dir: Path) -> list[dict]:
    path = trial_dir / "result.json"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _state(study: Path) -> tuple[set[str], set[str]]:
    """(trials that completed, trials that checkpointed but had not completed)."""
    done, partial = set(), set()
    for trial_dir in study.glob("trial_*"):
        rows = _results(trial_dir)
        if rows and rows[-1].get("stop_reason") == "completed":
            done.add(trial_dir.name)
        elif rows and any(trial_dir.glob("checkpoint_*")):
            partial.add(trial_dir.name)
    return done, partial


def test_a_killed_driver_is_resumed_without_rerunning_finished_trials(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    study = tmp_path / "results" / "killed"
    driver = _tunefleet("run", "spec.yaml", cwd=tmp_path, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            done, partial = _state(study)
            if len(done) >= 2 and partial:
                break
            assert driver.poll() is None, driver.stdout.read()[-3000:]
            time.sleep(0.5)
        else:
            pytest.fail("the study never reached two finished trials and one in progress")
    finally:
        # The driver, its embedded Ray and every trial process: as a crash would end them.
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    time.sleep(2)
    before = {name: len(_results(study / name)) for name in done}
    interrupted = {name: _results(study / name)[-1]["epoch"] for name in partial}

    resumed = _tunefleet("resume", str(study), cwd=tmp_path)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output[-3000:]

    trials = pd.read_csv(study / "trials.csv")
    assert len(trials) == 4 and (trials["status"] == "completed").all(), trials
    for name, rows in before.items():  # finished before the kill: not run again
        assert len(_results(study / name)) == rows
    for name, epoch in interrupted.items():
        rows = _results(study / name)
        epochs = [r["epoch"] for r in rows]
        # Resumed from a checkpoint: epochs continue to 5 with none lost (some may repeat
        # when the kill came between a checkpoint and the next report).
        assert epochs[-1] == 5 and set(range(1, 6)) <= set(epochs)
        assert any(r["iterations_since_restore"] < r["training_iteration"] for r in rows)
    assert json.loads((study / "summary.json").read_text())["cluster"]["resumed"] is True
