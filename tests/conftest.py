"""Shared fixtures: a real local Ray on loopback, and small specs that train in seconds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

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


# Under pytest-xdist (`-n 2`, in pyproject's addopts: the README's test command), tests run in
# two workers, each with its own Ray, by groups: a module's tests together (its module-scoped
# fixtures run once), the modules that use the session's shared studies (the fixtures below)
# together, in one worker, which runs each study once, and tests/cluster last (its tests wait
# on the scenarios started at collection: tests/cluster/conftest.py). pytest 9.2 ignores
# xdist's own `xdist_group` marks (pytest-xdist issue #1386), so the groups are this scheduler's.
SHARED_STUDIES = {"hyperband_study", "asha_study", "seeded_studies", "diabetes_study",
                  "breast_cancer_study", "pbt_study", "pb2_study", "no_trial_finishes"}
SHARED_MODULES = {"tests/test_cli.py", "tests/test_contract.py",
                  "tests/schedulers/test_cut_epochs.py", "tests/schedulers/test_population.py",
                  "tests/study/test_failures.py", "tests/study/test_kept_checkpoints.py",
                  "tests/study/test_studies.py"}
CLUSTER = "tests/cluster/"


def _group(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    if path.startswith(CLUSTER):
        return CLUSTER
    return "shared studies" if path in SHARED_MODULES else path


def pytest_xdist_make_scheduler(config, log):
    """xdist's scope scheduling, with ``_group`` as the scope: each group runs whole in one
    worker, in the order of the collection (``pytest_collection_modifyitems`` below)."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)

    return GroupScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """In an xdist worker: the groups with the most studies (tests marked slow) first, so the
    two workers end near the same time, and tests/cluster last. A module that uses a shared
    study but is not in SHARED_MODULES would run that study in both workers: refused."""
    if not hasattr(config, "workerinput"):
        return
    groups: dict[str, list[pytest.Item]] = {}
    for item in items:
        group = _group(item.nodeid)
        used = SHARED_STUDIES & set(getattr(item, "fixturenames", ()))
        if used and group not in ("shared studies", CLUSTER):
            raise pytest.UsageError(f"{group} uses the shared studies {sorted(used)}: add it to "
                                    "SHARED_MODULES in tests/conftest.py")
        groups.setdefault(group, []).append(item)
    order = sorted(groups, key=lambda name: (name == CLUSTER, -sum(
        bool(i.get_closest_marker("slow")) for i in groups[name])))
    items[:] = [item for name in order for item in groups[name]]


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
    return one_trial_at_a_time(spec)


def one_trial_at_a_time(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with ``search.max_concurrent: 1`` unless its search sets a limit: one trial
    process per study, reused from trial to trial (a process's start-up and TensorFlow's
    import, ~10 s of CPU, are most of what a tiny trial costs, and the suite is bound by CPU).
    Tests about trials side by side set search.max_concurrent; HyperBand and PBT refuse it
    (they need every trial), so their specs are left as they are."""
    from tunefleet.spec.methods import UNLIMITED_SEARCHER_SCHEDULERS

    if spec["scheduler"].get("name") not in UNLIMITED_SEARCHER_SCHEDULERS:
        spec["search"] = {"max_concurrent": 1, **spec["search"]}
    return spec


@pytest.fixture(scope="session")
def hyperband_study(ray_local, tmp_path_factory):
    """One real HyperBand study (max_t 3, eta 2.5, 5 trials; see ``hyperband_spec``) for
    tests/study/test_studies.py (pause and resume from checkpoints),
    tests/schedulers/test_cut_epochs.py (cuts only where preview says) and
    tests/test_contract.py (random search under HyperBand)."""
    from tunefleet import run

    return run(hyperband_spec(tmp_path_factory.mktemp("hyperband")))


class Study(NamedTuple):
    """A finished study (``tunefleet.run``'s result) and the spec (a dict) it ran."""
    spec: dict[str, Any]
    result: Any


def _run(spec: dict[str, Any], **kwargs: Any) -> Study:
    from tunefleet import run

    return Study(spec, run(spec, **kwargs))


# The session's shared studies: each serves several tests (named in its docstring), and
# together with `hyperband_study` they are the studies tests/test_contract.py checks, so the
# contract runs over every searcher and scheduler without studies of its own for them.

@pytest.fixture(scope="session")
def asha_study(ray_local, tmp_path_factory) -> Study:
    """Grid search under ASHA: 4 learning rates, 6 epochs, one trial at a time. Two good
    rates run first and set the rung values, so the weak ones that follow are cut at the
    first rung. For tests/study/test_studies.py and the contract."""
    return _run(tiny_spec(
        tmp_path_factory.mktemp("asha"), name="asha_digits",
        search_space={"learning_rate": {"type": "choice", "values": [1e-2, 3e-2, 3e-4, 1e-4]}},
        search={"algorithm": "grid"},
        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2},
        train={"epochs": 6, "batch_size": 32}))


class SeededStudies(NamedTuple):
    first: Any  # seed 7
    first_ids: list  # its trial ids, read before the overwrite replaced its directory
    refused: Any  # what running the same spec into the same directory raised (or None)
    again: Any  # seed 7 again, with overwrite=True
    other: Study  # seed 8, and its spec


@pytest.fixture(scope="session")
def seeded_studies(ray_local, tmp_path_factory) -> SeededStudies:
    """Random search under FIFO, 2 trials of 2 epochs each: a study with seed 7; the same spec
    run again (refused: the directory holds a study); then with overwrite=True (seed 7
    again); and a study with seed 8. For tests/study/test_studies.py (seeding, overwrite)
    and the contract (the seed-8 study)."""
    from tunefleet import SpecError, run

    out = tmp_path_factory.mktemp("seeds")

    def spec(seed: int, name: str) -> dict:
        return tiny_spec(out, name=name, train={"epochs": 2, "batch_size": 64},
                         search={"algorithm": "random", "num_samples": 2, "seed": seed})

    first = run(spec(7, "twice"))
    first_ids = first.trials["trial_id"].tolist()
    try:
        run(spec(7, "twice"))
        refused = None
    except SpecError as exc:
        refused = exc
    again = run(spec(7, "twice"), overwrite=True)
    return SeededStudies(first, first_ids, refused, again, _run(spec(8, "other")))


def tabular_spec(tmp_path: Path, dataset: str) -> dict[str, Any]:
    """An MLP on a tabular dataset, 3 epochs: diabetes (regression, val_mae, minimised) by
    HyperOpt, 4 trials; breast_cancer (binary, val_auc, maximised) by a 2 x 2 grid."""
    train = {"epochs": 3, "batch_size": 32, "learning_rate": 0.01}
    if dataset == "diabetes":
        objective = {"metric": "val_mae", "mode": "min"}
        search = {"algorithm": "hyperopt", "num_samples": 4, "n_initial_points": 2, "seed": 3}
        space = None
    else:
        objective = {"metric": "val_auc", "mode": "max"}
        train["metrics"] = ["accuracy", "auc"]
        search = {"algorithm": "grid"}
        space = {"learning_rate": {"type": "grid", "values": [0.003, 0.01]},
                 "dropout": {"type": "choice", "values": [0.0, 0.2]}}
    spec = tiny_spec(tmp_path, name=dataset, data={"dataset": dataset},
                     model={"builder": "mlp", "params": {"units": 16}},
                     search=search, train=train, objective=objective)
    if space:
        spec["search_space"] = space
    return spec


@pytest.fixture(scope="session")
def diabetes_study(ray_local, tmp_path_factory) -> Study:
    """``tabular_spec``'s diabetes study: tests/study/test_studies.py and the contract
    (HyperOpt under FIFO, a minimised objective)."""
    return _run(tabular_spec(tmp_path_factory.mktemp("diabetes"), "diabetes"))


@pytest.fixture(scope="session")
def breast_cancer_study(ray_local, tmp_path_factory) -> Study:
    """``tabular_spec``'s breast_cancer study: tests/study/test_studies.py and the contract
    (grid search under FIFO)."""
    return _run(tabular_spec(tmp_path_factory.mktemp("breast_cancer"), "breast_cancer"))


def population_spec(tmp_path: Path, name: str) -> dict[str, Any]:
    """``pbt`` or ``pb2`` (``name``): 4 trials of 3 epochs on the tiny digits CNN, synchronous
    (the whole population meets at each decision, so copies happen whatever the timing): the
    bottom half copies the top half. At a decision Ray stops every trial process (all trials
    paused, none staged, the searcher done), and cold restarts are most of such a study's
    time, so there are few: PBT decides once, at epoch 2, mutating the learning rate only (one
    architecture: restarts reuse the warm compiled model); PB2 at epochs 1 and 2, as its GP
    needs each trial's improvement between two decisions to choose (at the first, a copy takes
    its source's values), mutating the learning rate and dropout (tiny_spec's space). Neither
    decides at the last epoch (schedulers/exploit.py)."""
    interval = 2 if name == "pbt" else 1
    spec = tiny_spec(tmp_path, name=f"random_{name}",
                     search={"algorithm": "random", "num_samples": 4, "seed": 5},
                     scheduler={"name": name, "perturbation_interval": interval,
                                "quantile_fraction": 0.5, "synch": True})
    if name == "pbt":
        spec["scheduler"]["resample_probability"] = 0.25
        spec["search_space"] = {"learning_rate": {"type": "loguniform", "low": 1e-3,
                                                  "high": 2e-2}}
    return spec


@pytest.fixture(scope="session")
def pbt_study(ray_local, tmp_path_factory) -> Study:
    """``population_spec``'s PBT study: tests/schedulers/test_population.py (copies, the
    trainable's new rate, the report's schedules) and the contract (random search under PBT)."""
    return _run(population_spec(tmp_path_factory.mktemp("pbt"), "pbt"))


@pytest.fixture(scope="session")
def pb2_study(ray_local, tmp_path_factory) -> Study:
    """``population_spec``'s PB2 study: tests/schedulers/test_population.py and the contract
    (random search under PB2)."""
    return _run(population_spec(tmp_path_factory.mktemp("pb2"), "pb2"))


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
