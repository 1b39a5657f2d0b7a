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


@pytest.fixture(scope="session")
def hyperband_study(ray_local, tmp_path_factory):
    """One real HyperBand study (max_t 3, eta 2.5, 5 trials; see ``hyperband_spec``) for
    tests/study/test_studies.py (pause and resume from checkpoints) and
    tests/schedulers/test_cut_epochs.py (cuts only where preview says)."""
    from tunefleet import run

    return run(hyperband_spec(tmp_path_factory.mktemp("hyperband")))


def hyperband_spec(tmp_path: Path) -> dict[str, Any]:
    """Ray's first bracket trains 2 trials uncut; its second halves 3 trials at epoch 1
    (pausing the others there) and stops the 2 survivors at int(2.5) = 2."""
    return tiny_spec(tmp_path, name="hyperband_cuts",
                     search={"algorithm": "random", "num_samples": 5, "seed": 3},
                     scheduler={"name": "hyperband", "reduction_factor": 2.5},
                     train={"epochs": 3, "batch_size": 64})


@pytest.fixture(scope="session")
def no_trial_finishes(ray_local, tmp_path_factory):
    """`tunefleet run` (in this process) of a study none of whose trials finishes, with a
    relative ``output.storage``: units 8 runs out of memory (failed), 9 raises (errored), no
    retries. For tests/test_cli.py (exit code) and tests/study/test_failures.py (records).
    Returns the CLI result and the directory it ran in."""
    from typer.testing import CliRunner

    from tunefleet.cli import app

    path = tmp_path_factory.mktemp("no_trial_finishes")
    (path / "all_fail.yaml").write_text(
        "name: all_fail\ndata: {dataset: digits}\n"
        "model: {builder: 'tests.study.merged_models:failing_mlp', "
        "params: {oom_on_units: 8, fail_on_units: 9}}\n"
        "train: {epochs: 1, batch_size: 64}\nsearch_space: {units: {type: grid, values: [8, 9]}}\n"
        "search: {algorithm: grid}\nfailure: {max_retries: 0}\noutput: {storage: results}\n")
    here = os.getcwd()
    os.chdir(path)
    try:
        return CliRunner().invoke(app, ["run", "all_fail.yaml"]), path
    finally:
        os.chdir(here)
