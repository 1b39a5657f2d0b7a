"""Shared fixtures: a real local Ray on loopback, and small specs that train in seconds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
_ENV = {
    # Every Ray server on 127.0.0.1: tests contact no other address.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    # Trial processes import the test builders in tests/builders.py.
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # S3 tests (a local moto server) take credentials from the environment, as users must
    # (URIs with credentials are refused); trial processes inherit them. No metadata service.
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


# Set when pytest imports this file, before any test module imports Ray: Ray reads
# RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER once, at import. Restored when the session ends.
_SAVED = {k: os.environ.get(k) for k in _ENV}
os.environ.update(_ENV)


@pytest.fixture(scope="session", autouse=True)
def _test_environment():
    """Restore the variables above once the session is over."""
    yield
    for key, value in _SAVED.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def ray_local(_test_environment):
    """One real Ray for the session: 2 CPUs, no GPUs, loopback only."""
    import ray

    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False,
             runtime_env={"env_vars": {k: _ENV[k] for k in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}},
             log_to_driver=False)
    yield ray
    ray.shutdown()


def tiny_spec(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    """A digits study that trains in a second or two per trial: an 8-filter CNN, 3 epochs."""
    spec: dict[str, Any] = {
        "name": "tiny",
        "data": {"dataset": "digits"},
        "model": {"builder": "cnn", "params": {"filters": 8, "dense_units": 16}},
        "train": {"epochs": 3, "batch_size": 64, "learning_rate": 0.01},
        "search_space": {
            "learning_rate": {"type": "loguniform", "low": 1e-3, "high": 2e-2},
            "dropout": {"type": "uniform", "low": 0.0, "high": 0.3},
        },
        "search": {"algorithm": "random", "num_samples": 3, "seed": 1},
        "scheduler": {"name": "fifo"},
        "objective": {"metric": "val_accuracy", "mode": "max"},
        "output": {"storage": str(tmp_path / "results")},
    }
    spec.update(sections)
    return spec
