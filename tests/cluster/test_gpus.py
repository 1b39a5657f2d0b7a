"""GPUs per trial on this CPU-only machine: Ray packs fractional-GPU trials onto GPUs declared
to it, each trial sees the GPU Ray assigned, and the driver hides the GPUs from its own
TensorFlow; one trial trains with MirroredStrategy over two logical CPU devices; each share of
a GPU gets its memory limit."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tunefleet.cluster.devices import gpu_memory_limit_mb


def _results(study: Path) -> pd.DataFrame:
    rows = []
    for trial_dir in sorted(study.glob("trial_*")):
        for line in (trial_dir / "result.json").read_text().splitlines():
            rows.append({**json.loads(line), "trial": trial_dir.name})
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_half_gpu_trials_are_packed_two_per_declared_gpu_and_the_driver_hides_them(
        cluster_scenarios):
    """A fresh driver process runs a study with 2 GPUs declared to its embedded Ray (the
    session's has none): scenarios.py's ``gpus``, first in a process conftest.py starts.
    Ray packs the half-GPU trials two to a GPU. The driver's checks built models, and
    TensorFlow would have mapped every visible GPU's memory at their first op: prepare() hid
    the GPUs from it (tf.config, not CUDA_VISIBLE_DEVICES, which an embedded Ray would
    inherit) before that, and the study still passed its checks."""
    tmp_path, outcome = cluster_scenarios.result("gpus")
    assert outcome == {"before": None, "hidden": True, "gpus": 0, "finished": 4}
    # No GPU held on this machine: no warning (from any scenario process, all of them).
    assert "already holds" not in cluster_scenarios.stderr()
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
def test_mirrored_strategy_over_two_logical_cpus(cluster_scenarios):
    """scenarios.py's ``mirrored``, in a process conftest.py starts: one trial over two logical
    CPUs, on an embedded Ray, and its report there."""
    tmp_path, outcome = cluster_scenarios.result("mirrored")
    assert outcome["finished"] == 1
    history = _results(tmp_path / "results" / "mirrored")
    assert (history["replicas"] == 2).all() and (history["global_batch_size"] == 64).all()
    assert history["val_accuracy"].iloc[-1] > 0.5  # it learned
    # The checkpoint of a distributed trial restores for the report's test.
    assert outcome["test_accuracy"] > 0.5
