"""The failure policy on a real local Ray: errors are retried from their checkpoint, NaN, memory
and timeouts are recorded as failures and not retried, and a run of failures stops the study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import tiny_spec
from tunefleet import run

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _grid(tmp_path, name, builder, params, units, **sections):
    sections.setdefault("search", {"algorithm": "grid", "max_concurrent": 2})
    return tiny_spec(tmp_path, name=name, model={"builder": builder, "params": params},
                     search_space={"units": {"type": "grid", "values": units}},
                     train={"epochs": 2, "batch_size": 64}, **sections)


@pytest.fixture(scope="module")
def failure_grid(ray_local, tmp_path_factory):
    """One grid, two trials at a time, up to 2 retries each: units 8 is fine, 9 hangs past the
    12 s timeout, 13 runs out of memory, 14 raises an error, 15's loss is NaN."""
    spec = _grid(tmp_path_factory.mktemp("failures"), "failures",
                 "tests.study.merged_models:failing_mlp",
                 {"fail_on_units": 14, "hang_on_units": 9, "oom_on_units": 13, "nan_on_units": 15},
                 [8, 9, 13, 14, 15], failure={"max_retries": 2})
    spec["train"]["trial_timeout_s"] = 12
    result = run(spec)
    return result, result.trials.set_index("config/units")


def test_failing_trials_are_recorded_and_the_study_finishes(failure_grid):
    """Trials that fail or raise are recorded with their reason, and the others finish."""
    result, _ = failure_grid
    by_status = result.trials.groupby("status").size().to_dict()
    assert by_status == {"completed": 1, "failed": 3, "errored": 1}
    errored = result.trials[result.trials["status"] == "errored"]
    assert (errored["config/units"] == 14).all()
    assert errored["reason"].str.contains("deliberate failure for units=14").all()
    nan = result.trials[result.trials["config/units"] == 15]
    assert (nan["status"] == "failed").all() and len(nan) == 1
    assert nan["reason"].str.contains("loss became NaN at epoch 1").all()
    assert (nan["epochs_trained"] == 1).all()
    # The best is the one trial that completed, its hyperparameter of the type declared.
    assert result.best_config == {"units": 8} and isinstance(result.best_config["units"], int)
    assert result.finished == 1


def test_an_error_is_retried_then_recorded_and_the_study_finishes(failure_grid):
    """An error is retried max_retries times, each retry recorded, then the trial is errored
    and the others finish."""
    result, rows = failure_grid
    assert rows.loc[8, "status"] == "completed" and rows.loc[8, "retries"] == 0
    assert rows.loc[14, "status"] == "errored" and rows.loc[14, "retries"] == 2
    assert "deliberate failure for units=14" in rows.loc[14, "reason"]
    retries = json.loads((result.path / f"trial_{rows.loc[14, 'trial_id']}" / "retries.json").read_text())
    assert len(retries) == 2 and all("deliberate failure" in r["error"] for r in retries)


def test_nan_memory_and_timeout_are_failures_that_are_not_retried(failure_grid):
    """In the same study (max_retries 2): a NaN loss, a timeout and a MemoryError are failures,
    not retried."""
    _, rows = failure_grid
    assert rows.loc[8, "status"] == "completed"
    assert rows.loc[15, "status"] == "failed" and rows.loc[15, "retries"] == 0
    assert "loss became NaN at epoch 1" in rows.loc[15, "reason"]
    assert rows.loc[9, "status"] == "failed"
    assert "timed out after 12 s" in rows.loc[9, "reason"]
    assert rows.loc[13, "status"] == "failed" and rows.loc[13, "retries"] == 0
    assert "ran out of memory: MemoryError" in rows.loc[13, "reason"]


@pytest.fixture(scope="module")
def tripped_study(ray_local, tmp_path_factory):
    """Two trials at a time, ASHA, no retries, failure.max_consecutive=2. 64 and 48 set ASHA's
    first rung, so 1 (one unit: weak) is cut there; 9 hangs while building; 13 then runs out
    of memory and 14's loss is NaN, which trips the policy while 9 still runs: the study, not
    ASHA, stops it, and 15 and 16 never start."""
    spec = _grid(tmp_path_factory.mktemp("tripped"), "tripped",
                 "tests.study.merged_models:failing_mlp",
                 {"hang_on_units": 9, "oom_on_units": 13, "nan_on_units": 14},
                 [64, 48, 1, 9, 13, 14, 15, 16],
                 scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2},
                 failure={"max_retries": 0, "max_consecutive": 2})
    spec["train"]["epochs"] = 3
    return run(spec)


def test_consecutive_failures_stop_the_study_with_a_message(tripped_study):
    result = tripped_study
    assert "stopped after 2 consecutive failed trials" in result.summary["stopped"]
    ran = result.trials[result.trials["status"] == "failed"]
    assert sorted(ran["config/units"]) == [13, 14]
    assert {15, 16}.isdisjoint(result.trials["config/units"])  # the rest never started


def _host_oom_study(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`tunefleet run` of a study whose trials Ray's memory monitor kills: its threshold (in
    ``env``), set below what the machine already uses, makes it fire at once without using any
    memory. Ray reads it when it starts, so the study runs in a process of its own."""
    spec = tmp_path / "oom.yaml"
    spec.write_text("name: host_oom\nmodel: {builder: mlp, params: {units: 8}}\n"
                    "train: {epochs: 2}\nsearch: {algorithm: random, num_samples: 1}\n"
                    "failure: {max_retries: 1}\noutput: {storage: results}\n")
    return subprocess.run([sys.executable, "-m", "tunefleet.cli", "run", "oom.yaml",
                           "--no-report"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module", autouse=True)
def host_oom_study(request, tmp_path_factory):
    """``_host_oom_study``, started with this module's first test, in a thread: its process
    (mostly start-up: an interpreter, TensorFlow, a Ray) runs beside this module's studies,
    and its test waits for it. Not started when that test is not selected."""
    if not any(item.name == "test_a_trial_ray_kills_for_host_memory_is_failed_after_its_retries"
               for item in request.session.items):
        yield None
        return
    path = tmp_path_factory.mktemp("host_oom")
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": str(ROOT),
           "RAY_memory_usage_threshold": "0.01", "RAY_memory_monitor_refresh_ms": "100"}
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield path, pool.submit(_host_oom_study, path, env)


def test_a_trial_ray_kills_for_host_memory_is_failed_after_its_retries(host_oom_study):
    # Ray's memory monitor kills a trial's process when the machine runs low on memory.
    tmp_path, study = host_oom_study
    proc = study.result()
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]  # no trial finished
    trials = pd.read_csv(tmp_path / "results" / "host_oom" / "trials.csv")
    assert trials["status"].tolist() == ["failed"]
    assert trials["reason"][0].startswith("killed for running out of host memory: 1 worker(s) "
                                          "were killed due to the node running low on memory")
    assert trials["retries"][0] == 1  # retried like an error, once, then recorded as failed


def test_out_of_memory_with_a_relative_storage_fails_the_study(no_trial_finishes):
    """output.storage: results is relative, and trials run in directories of their own: the
    trial's failure record must still land in the study, and the study must fail (conftest's
    CLI run, shared with tests/test_cli.py)."""
    out, path = no_trial_finishes
    assert out.exit_code == 1, out.output[-3000:]
    assert "no trial finished" in out.stderr
    study = path / "results" / "all_fail"
    trials = pd.read_csv(study / "trials.csv").set_index("config/units")
    assert trials.loc[8, "status"] == "failed"
    assert "ran out of memory: MemoryError" in trials.loc[8, "reason"]  # from its failure.json
    assert len(list(study.glob("trial_*/failure.json"))) == 1
    # The study's record names the absolute location the trials wrote to.
    assert f"storage: {(path / 'results').resolve()}\n" in (study / "spec.yaml").read_text()


def test_the_trials_a_tripped_policy_ends_are_stopped_by_study_not_by_the_scheduler(
        tripped_study):
    """The study's failure policy, tripped while 9 hangs, stops 9: stopped by the study, while
    1, cut by ASHA earlier, reads as stopped by the scheduler."""
    result = tripped_study
    assert "stopped after 2 consecutive failed trials" in result.summary["stopped"]
    rows = result.trials.set_index("config/units")
    assert rows.loc[13, "status"] == "failed" and rows.loc[14, "status"] == "failed"
    assert rows.loc[9, "status"] == "stopped_by_study", rows[["status", "reason"]]
    assert rows.loc[9, "reason"].startswith("failure.max_consecutive stopped the study")
    assert rows.loc[1, "status"] == "stopped_by_scheduler", rows[["status", "reason"]]
    assert rows.loc[1, "epochs_trained"] < 3
    counts = result.summary["trials"]
    assert counts["stopped_by_study"] == 1 and isinstance(counts["stopped_by_study"], int)

    # Resumed, it stays stopped (Ray ended its trials and searcher) and still says why.
    from tunefleet import resume

    again = resume(result.path)
    assert "stopped after 2 consecutive failed trials" in again.summary["stopped"]
    assert "before it was resumed" in again.summary["stopped"]
    assert again.trials.set_index("config/units").loc[9, "status"] == "stopped_by_study"
