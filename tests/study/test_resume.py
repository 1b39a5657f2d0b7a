"""A study whose driver is killed with SIGKILL mid-study is completed by `tunefleet resume`:
trials that had finished are not run again, the others continue from their checkpoints."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

EPOCHS = 4
# Paced epochs (at least 1 s each) keep the last two trials mid-way for several seconds after
# the first two finished, on a fast machine too: the test must see that state before it kills.
# It watches the study on storage, which is what a resume reads and which Ray updates at each
# experiment snapshot: the killed driver snapshots every second (Ray's TUNE_GLOBAL_CHECKPOINT_S;
# by default every 10 s or more), so that state shows there in time.
SPEC = """
name: killed
data: {dataset: digits}
model: {builder: "tests.builders:paced_mlp", params: {epoch_s: 1.0}}
train: {epochs: %(epochs)d, batch_size: 64, learning_rate: 0.01}
search_space:
  units: {type: choice, values: [8, 16, 24, 32]}
search: {algorithm: random, num_samples: 4, seed: 2}
objective: {metric: val_accuracy}
cluster: {num_cpus: 2}
output: {storage: results}
"""


def _tunefleet(*args: str, cwd: Path, snapshot_s: str = "auto", **kwargs) -> subprocess.Popen:
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": str(ROOT),
           "TUNE_GLOBAL_CHECKPOINT_S": snapshot_s}
    return subprocess.Popen([sys.executable, "-m", "tunefleet.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def _results(trial_dir: Path) -> list[dict]:
    path = trial_dir / "result.json"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _state(study: Path) -> tuple[set[str], set[str]]:
    """(trials that completed, trials that had not completed but whose checkpoint the
    snapshot names), as the study's experiment snapshot on storage says, which is what a
    resume reads: its result.json files can be ahead of it (Ray copies them after writing the
    snapshot), and Ray registers a reported checkpoint a little after its result, so a snapshot
    between the two has the result and not yet the checkpoint a resume would start from."""
    from ray.tune.utils.serialization import TuneFunctionDecoder

    snapshots = sorted(study.glob("experiment_state-*.json"))
    try:
        data = json.loads(snapshots[-1].read_text())["trial_data"] if snapshots else []
    except (json.JSONDecodeError, KeyError):  # being copied
        return set(), set()
    trials = [(json.loads(state), json.loads(meta, cls=TuneFunctionDecoder,
                                              allow_cloudpickle=True)) for state, meta in data]
    done, partial = set(), set()
    for trial, meta in trials:
        trial_dir = study / f"trial_{trial['trial_id']}"
        rows = _results(trial_dir)
        latest = meta["checkpoint_manager"].latest_checkpoint_result
        if trial["status"] == "TERMINATED" and rows and rows[-1].get("stop_reason") == "completed":
            done.add(trial_dir.name)
        elif trial["status"] in ("RUNNING", "PAUSED") and rows and latest is not None \
                and Path(latest.checkpoint.path).is_dir():
            partial.add(trial_dir.name)
    return done, partial


def test_a_killed_driver_is_resumed_without_rerunning_finished_trials(ray_local, tmp_path,
                                                                     monkeypatch):
    """The driver is a process of its own, killed as a crash would end it; `tunefleet resume`
    then runs in this process, on the session's Ray (a user's resume starts a Ray of its own:
    the same command, one TensorFlow import and one Ray start fewer here)."""
    from typer.testing import CliRunner

    from tunefleet.cli import app

    (tmp_path / "spec.yaml").write_text(SPEC % {"epochs": EPOCHS})
    study = tmp_path / "results" / "killed"
    driver = _tunefleet("run", "spec.yaml", cwd=tmp_path, start_new_session=True,
                        snapshot_s="1")
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            done, partial = _state(study)
            if len(done) >= 2 and partial:
                break
            assert driver.poll() is None, driver.stdout.read()[-3000:]
            time.sleep(0.2)
        else:
            pytest.fail("the study never reached two finished trials and one in progress")
    finally:
        # The driver, its embedded Ray and every trial process: as a crash would end them.
        with contextlib.suppress(ProcessLookupError):  # ended already: the assert above says why
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    time.sleep(2)
    before = {name: len(_results(study / name)) for name in done}
    interrupted = {name: _results(study / name)[-1]["epoch"] for name in partial}

    monkeypatch.chdir(tmp_path)
    resumed = CliRunner().invoke(app, ["resume", str(study), "--no-report"])
    assert resumed.exit_code == 0, resumed.output[-3000:]

    trials = pd.read_csv(study / "trials.csv")
    assert len(trials) == 4 and (trials["status"] == "completed").all(), trials
    for name, rows in before.items():  # finished before the kill: not run again
        assert len(_results(study / name)) == rows
    for name in interrupted:
        rows = _results(study / name)
        epochs = [r["epoch"] for r in rows]
        # Resumed from a checkpoint: epochs continue to the last with none lost (some may
        # repeat when the kill came between a checkpoint and the next report).
        assert epochs[-1] == EPOCHS and set(range(1, EPOCHS + 1)) <= set(epochs)
        assert any(r["iterations_since_restore"] < r["training_iteration"] for r in rows)
    assert json.loads((study / "summary.json").read_text())["cluster"]["resumed"] is True


def _rows(study: Path, trial_id: str) -> list[dict]:
    return _results(study / f"trial_{trial_id}")


def _faults_study(tmp_path: Path, name: str, **faults) -> dict:
    from tests.conftest import tiny_spec

    # Default shuffle (on), two executions each, EarlyStopping that can end one of them.
    return tiny_spec(tmp_path, name=name,
                     model={"builder": "tests.trainables.fault_builders:fault_mlp",
                            "params": {"forget_on": [32], "marker": str(tmp_path / "crashed"),
                                       **faults}},
                     search_space={"units": {"type": "grid", "values": [16, 24, 32]}},
                     search={"algorithm": "grid", "seed": 5, "executions_per_trial": 2},
                     train={"epochs": 4, "batch_size": 64, "learning_rate": 0.01,
                            "early_stopping": {"monitor": "val_accuracy", "patience": 2}},
                     output={"storage": str(tmp_path / "results"), "checkpoint_every": 3})


def test_interrupted_trials_match_uninterrupted_ones(ray_local, tmp_path):
    """The same grid twice: straight, then with units=16 and 32 killed once at the start of
    epoch 3 (retried from their checkpoints) and units=24 out of memory at epoch 3."""
    from tunefleet import run

    straight = run(_faults_study(tmp_path / "a", "straight"))
    faulty = run(_faults_study(tmp_path / "b", "faulty", crash_on=[16, 32], oom_on=[24]))
    ids = {name: r.trials.set_index("config/units")["trial_id"] for name, r in
           (("a", straight), ("b", faulty))}
    a, b = straight.path, faulty.path

    def measured(rows: list[dict]) -> dict[int, dict]:
        keys = [k for k in rows[0] if k.startswith(("val_", "loss", "accuracy", "execution_"))]
        return {r["epoch"]: {k: r[k] for k in keys} for r in rows if "loss" in r}

    # Resumed with shuffling on: every epoch, every execution, exactly as the straight run.
    resumed = _rows(b, ids["b"][16])
    assert any(r["iterations_since_restore"] < r["training_iteration"] for r in resumed)
    assert measured(resumed) == measured(_rows(a, ids["a"][16]))

    # Out of memory at epoch 3: the trial failed, and its measured epochs 1-2 stay as they were.
    trials = faulty.trials.set_index("config/units")
    assert trials.loc[24, "status"] == "failed" and trials.loc[24, "epochs_trained"] == 2
    kept = measured(_rows(a, ids["a"][24]))
    assert measured(_rows(b, ids["b"][24])) == {e: kept[e] for e in (1, 2)}
    assert trials.loc[24, "last_val_accuracy"] == kept[2]["val_accuracy"]
    assert trials.loc[24, "best_val_accuracy"] == max(kept[e]["val_accuracy"] for e in (1, 2))

    # What was trained: every execution's every epoch, the repeats after a retry included.
    # units=32 is checkpointed at epoch 1 only (its model forgets after it): it repeats epoch 2.
    for result, rows in ((straight, {u: _rows(a, ids["a"][u]) for u in (16, 24, 32)}),
                         (faulty, {u: _rows(b, ids["b"][u]) for u in (16, 24, 32)})):
        table = result.trials.set_index("config/units")
        for units, trial_rows in rows.items():
            assert isinstance(table.loc[units, "epochs_run"], (int, np.integer))
            assert table.loc[units, "epochs_run"] == sum(r.get("executions_trained", 0)
                                                         for r in trial_rows)
        assert result.summary["epochs_total"] == int(table["epochs_run"].sum())
    repeated = [r["epoch"] for r in _rows(b, ids["b"][32])]
    assert repeated.count(2) == 2 and faulty.trials.set_index("config/units").loc[32, "epochs_run"] > (
        straight.trials.set_index("config/units").loc[32, "epochs_run"])
    # units=32 never improves after epoch 1: EarlyStopping (patience 2) ends both of its
    # executions at epoch 3, so straight through they trained 3 epochs each.
    assert straight.trials.set_index("config/units").loc[32, "epochs_run"] == 6
