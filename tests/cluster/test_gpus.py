"""GPUs per trial on this CPU-only machine: Ray packs fractional-GPU trials onto GPUs declared
to it, each trial sees the GPU Ray assigned; one trial trains with MirroredStrategy over two
logical CPU devices; each share of a GPU gets its memory limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import tiny_spec
from tunefleet import run
from tunefleet.cluster.devices import gpu_memory_limit_mb
from tunefleet.spec import dump_yaml

ROOT = Path(__file__).resolve().parents[2]


def _results(study: Path) -> pd.DataFrame:
    rows = []
    for trial_dir in sorted(study.glob("trial_*")):
        for line in (trial_dir / "result.json").read_text().splitlines():
            rows.append({**json.loads(line), "trial": trial_dir.name})
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_half_gpu_trials_are_packed_two_per_declared_gpu(tmp_path):
    spec = tiny_spec(tmp_path, name="gpus", search={"algorithm": "grid"},
                     search_space={"dropout": {"type": "grid", "values": [0.0, 0.1, 0.2, 0.3]}},
                     train={"epochs": 1, "batch_size": 64},
                     resources={"cpu": 0.5, "gpu": 0.5},
                     cluster={"num_cpus": 2, "num_gpus": 2})
    dump_yaml(spec, tmp_path / "spec.yaml")
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": str(ROOT)}
    # Its own Ray (the session's has no GPUs): 2 CPUs and 2 GPUs declared to Ray.
    proc = subprocess.run([sys.executable, "-m", "tunefleet.cli", "run", "spec.yaml",
                           "--no-report"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    study = tmp_path / "results" / "gpus"
    summary = json.loads((study / "summary.json").read_text())
    assert summary["cluster"]["max_concurrent_trials"] == 4  # 2 GPUs / 0.5, 2 CPUs / 0.5
    results = _results(study)
    per_trial = results.groupby("trial")["gpu_ids"].agg(set)
    assert len(per_trial) == 4
    assert all(len(ids) == 1 and ids <= {"0", "1"} for ids in per_trial)  # one GPU, Ray's
    # Packed two to a GPU: each GPU had exactly two trials.
    assert sorted(per_trial.map(lambda ids: next(iter(ids))).value_counts().tolist()) == [2, 2]


def test_memory_limit_is_the_trials_share_with_headroom():
    assert gpu_memory_limit_mb(0.5, 80_000) == 36_000
    assert gpu_memory_limit_mb(0.25, 16_000) == 3_600
    assert gpu_memory_limit_mb(1.0, 80_000) is None  # a whole GPU: memory growth instead
    assert gpu_memory_limit_mb(0.5, None) is None  # no nvidia-smi: memory growth instead


@pytest.mark.slow
def test_mirrored_strategy_over_two_logical_cpus(ray_local, tmp_path):
    spec = tiny_spec(tmp_path, name="mirrored", search={"algorithm": "random", "num_samples": 1},
                     train={"epochs": 3, "batch_size": 32, "learning_rate": 0.01,
                            "distribute": {"strategy": "mirrored", "cpu_devices": 2}})
    result = run(spec)
    assert result.finished == 1
    history = _results(result.path)
    assert (history["replicas"] == 2).all() and (history["global_batch_size"] == 64).all()
    assert history["val_accuracy"].iloc[-1] > 0.5  # it learned
    from tunefleet import report

    built = report(result.path)  # the checkpoint of a distributed trial restores for the test
    assert built.test.metrics["accuracy"] > 0.5


DRIVER = """
import json, sys
from pathlib import Path
from tunefleet.cluster.devices import driver_gpus_hidden
from tunefleet.study.runner import as_experiment, prepare
from tests.conftest import tiny_spec
spec = tiny_spec(Path(sys.argv[1]), resources={"cpu": 0.5, "gpu": 0.5},
                 cluster={"num_cpus": 2, "num_gpus": 2})
before = driver_gpus_hidden()
prepare(as_experiment(spec))  # builds models (its checks): TensorFlow has run ops by now
import tensorflow as tf
print("RESULT " + json.dumps({"before": before, "hidden": driver_gpus_hidden(),
                              "gpus": len(tf.config.get_visible_devices("GPU"))}))
"""


def test_the_driver_hides_the_gpus_from_tensorflow_before_its_checks(tmp_path):
    """The driver's checks build models; TensorFlow would map every visible GPU's memory at
    their first op. In a fresh driver process, prepare() hides the GPUs from TensorFlow
    (tf.config, not CUDA_VISIBLE_DEVICES, which an embedded Ray would inherit) before that."""
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    outcome = json.loads(lines[-1].removeprefix("RESULT "))
    assert outcome == {"before": None, "hidden": True, "gpus": 0}
    assert "already holds" not in proc.stderr  # no GPU held on this machine: no warning
