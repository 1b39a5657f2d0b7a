"""Assemble a Ray Tune study from an Experiment, run it, and write its summary."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from ..cluster import check_fits, check_shared_storage, concurrent_trials, connect, disconnect
from ..data import DataNotFoundError, Dataset, RawData, load_dataset, save_test_split
from ..schedulers import make_scheduler
from ..search_spaces import make_searcher, to_ray_space, total_trials
from ..search_spaces.conditional import make_conditional_searcher
from ..search_spaces.hypermodel_space import SPACE_FILE, HypermodelSpace
from .failure_policy import FailureTracker
from ..spec import Experiment, SpecError, dump_yaml
from ..storage import StudyStorage, study_storage
from .summary import StudyResult, summarize
from ..trainables import train_trial
from ..trainables.checks import check_experiment

__all__ = ["run", "resume", "prepare", "as_experiment", "Prepared"]


def as_experiment(spec: Union[Experiment, dict, str, Path],
                  overrides: Optional[list[str]] = None) -> Experiment:
    """An Experiment from an Experiment, plain data, or a YAML path (overrides applied)."""
    if isinstance(spec, Experiment):
        if overrides:
            from ..spec import apply_overrides

            return Experiment.from_dict(apply_overrides(spec.to_dict(), overrides))
        return spec
    if isinstance(spec, dict):
        from ..spec import apply_overrides

        return Experiment.from_dict(apply_overrides(spec, overrides or []))
    return Experiment.from_yaml(spec, overrides)


@dataclass
class Prepared:
    """What a study needs besides its spec, all checked before Ray starts."""

    dataset: Dataset
    hypermodel: Any = None
    space: Optional[HypermodelSpace] = None

    @property
    def info(self):
        return self.dataset.info

    def total_trials(self, experiment: Experiment) -> int:
        if self.space is not None and experiment.search.algorithm == "grid":
            return self.space.grid_size() * experiment.search.num_samples
        return total_trials(experiment)


def _load_data(experiment: Experiment, data: Optional[RawData]) -> Dataset:
    try:
        return load_dataset(experiment.data, data)
    except DataNotFoundError as exc:
        raise SpecError("data.path" if experiment.data.path else "data.dataset", str(exc)) from None
    except (ValueError, OSError) as exc:
        field = "data.path" if experiment.data.path else "data.dataset"
        raise SpecError(field, str(exc), experiment.data.path or experiment.data.dataset) from None


def _hypermodel_space(experiment: Experiment, hypermodel: Any,
                      dataset: Dataset) -> tuple[Any, HypermodelSpace]:
    from ..search_spaces.hypermodel_space import UnsupportedHypermodel, discover_space
    from ..trainables.checks import check_hypermodel
    from ..trainables.hypermodel import HypermodelError, probe_hypermodel, resolve_hypermodel

    ref = hypermodel if hypermodel is not None else experiment.model.hypermodel
    try:
        hm = resolve_hypermodel(ref)
        space = discover_space(lambda values: probe_hypermodel(hm, values))
        if experiment.search.algorithm == "grid":
            space.grid_size()  # raises for continuous Floats
    except (HypermodelError, UnsupportedHypermodel) as exc:
        raise SpecError("model.hypermodel", str(exc), experiment.model.hypermodel) from None
    defaults = {p.name: p.hp.default for p in space.params}
    check_hypermodel(experiment, hm, dataset.training, space.active(defaults))
    return hm, space


def prepare(experiment: Experiment, data: Optional[RawData] = None,
            hypermodel: Any = None) -> Prepared:
    """Everything checkable without Ray: load the data, check the spec against it, and for a
    hypermodel discover its search space."""
    dataset = _load_data(experiment, data)
    if experiment.model.hypermodel or hypermodel is not None:
        hm, space = _hypermodel_space(experiment, hypermodel, dataset)
        return Prepared(dataset, hm, space)
    check_experiment(experiment, dataset.info)
    return Prepared(dataset)


def _check_study_dir(experiment: Experiment, overwrite: bool) -> StudyStorage:
    storage = experiment.storage
    if not overwrite and storage.holds_anything():
        raise SpecError("output.storage", f"{storage.location} already holds a study",
                        fix="pass --resume to continue it, --overwrite (overwrite=True) to "
                        "replace it, or change name or output.storage")
    return storage


def _check_storage(storage: StudyStorage, cluster: Any) -> None:
    """A URI must be writable from here; a path must be visible from every node."""
    if storage.remote:
        storage.check_writable()
    else:
        check_shared_storage(storage.local_dir.parent, cluster)


def _searcher(experiment: Experiment, prepared: Prepared, max_concurrent: int) -> Any:
    if prepared.space is None:
        return make_searcher(experiment, max_concurrent)
    from ray.tune.search import ConcurrencyLimiter

    search = experiment.search
    searcher = make_conditional_searcher(
        prepared.space, search.algorithm, metric=experiment.objective.metric,
        mode=experiment.objective.mode, seed=search.seed, repeats=search.num_samples,
        n_initial_points=getattr(search, "n_initial_points", 20),
        gamma=getattr(search, "gamma", 0.25))
    if experiment.scheduler.name == "hyperband" or not max_concurrent:
        return searcher
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def _trainable(experiment: Experiment, prepared: Prepared) -> Any:
    from ray import tune

    return tune.with_resources(
        tune.with_parameters(train_trial, data=prepared.dataset.training, experiment=experiment,
                             hypermodel=prepared.hypermodel),
        {"cpu": experiment.resources.cpu, "gpu": experiment.resources.gpu},
    )


def _tuner(experiment: Experiment, prepared: Prepared, storage: StudyStorage,
           max_concurrent: int, tracker: Any) -> Any:
    from ray import tune

    hypermodel = prepared.space is not None
    tune_config = tune.TuneConfig(
        metric=experiment.objective.metric,
        mode=experiment.objective.mode,
        search_alg=_searcher(experiment, prepared, max_concurrent),
        scheduler=make_scheduler(experiment),
        num_samples=(prepared.total_trials(experiment) if hypermodel
                     else experiment.search.num_samples),
        reuse_actors=experiment.resources.reuse,
        trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
    )
    run_config = tune.RunConfig(
        name=experiment.name,
        **storage.ray_storage(),
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=experiment.output.num_to_keep,
            checkpoint_score_attribute=experiment.objective.metric,
            checkpoint_score_order=experiment.objective.mode,
        ),
        # Errors are retried from the trial's last checkpoint; failures are not (see
        # failure_policy.py). fail_fast would end the study at the first error.
        failure_config=tune.FailureConfig(max_failures=experiment.failure.max_retries,
                                          fail_fast=False),
        callbacks=[tracker],
        stop=tracker,
        verbose=1,
    )
    space = {} if hypermodel else to_ray_space(experiment)
    return tune.Tuner(_trainable(experiment, prepared), param_space=space,
                      tune_config=tune_config, run_config=run_config)


def _fit(tuner: Any, experiment: Experiment, storage: StudyStorage, cluster: Any,
         extra: dict[str, Any], tracker: Any = None) -> StudyResult:
    """Run the tuner, then summarise the study from what it wrote (reports/load.py's reading).
    A resumed study's tracker is the one Ray restored with it, so it has no stop to report."""
    started = time.perf_counter()
    tuner.fit()
    wall = time.perf_counter() - started
    info = {k: v for k, v in asdict(cluster).items() if k != "started_here"}
    return summarize(experiment, wall, {**info, **extra},
                     stopped=tracker.tripped if tracker is not None else None, storage=storage)


def _quiet_ray_warnings() -> None:
    # Checkpointing each epoch with num_to_keep makes Ray snapshot often and warn about it
    # after every trial; the snapshots are small here, so the warning is only noise.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def run(spec: Union[Experiment, dict, str, Path], overrides: Optional[list[str]] = None, *,
        overwrite: bool = False, data: Optional[RawData] = None,
        hypermodel: Any = None) -> StudyResult:
    """Validate, start or join Ray, run every trial, and return the finished study.

    ``data`` (see :func:`tunefleet.data.arrays_as_raw`) supplies arrays for ``dataset: arrays``;
    ``hypermodel`` a KerasTuner hypermodel object instead of ``model.hypermodel``'s import path.
    Every input problem raises :class:`SpecError` before any training starts.
    """
    experiment = as_experiment(spec, overrides)
    prepared = prepare(experiment, data, hypermodel)
    storage = _check_study_dir(experiment, overwrite)
    _quiet_ray_warnings()
    cluster = connect(experiment)
    try:
        check_fits(experiment, cluster)
        _check_storage(storage, cluster)
        storage.clear()
        study_dir = storage.local_dir
        study_dir.mkdir(parents=True)
        dump_yaml(experiment.to_dict(), study_dir / "spec.yaml")
        save_test_split(prepared.dataset, study_dir / "data")
        if prepared.space is not None:
            prepared.space.write(study_dir)
        # At a URI, the study's own files go up before training, so that a study whose driver
        # dies can be resumed from anywhere.
        storage.upload("spec.yaml", "data", SPACE_FILE)
        max_concurrent = concurrent_trials(experiment, cluster.cpus, cluster.gpus)
        tracker = FailureTracker(storage, experiment.failure.max_consecutive)
        tuner = _tuner(experiment, prepared, storage, max_concurrent, tracker)
        return _fit(tuner, experiment, storage, cluster,
                    {"max_concurrent_trials": max_concurrent}, tracker)
    finally:
        disconnect(cluster)


def resume(location: Union[str, Path, StudyStorage], *, data: Optional[RawData] = None,
           hypermodel: Any = None) -> StudyResult:
    """Continue a study whose driver died (Ray Tune's restore): finished trials are kept,
    unfinished ones continue from their last checkpoint, and the searcher and scheduler carry
    on from their saved state. ``location`` is the study's directory or URI
    (``output.storage/<name>``); ``data``/``hypermodel`` as for :func:`run`, when the study was
    started with Python objects rather than names."""
    from ray import tune

    storage = study_storage(location)
    spec_text = storage.read_text("spec.yaml")
    ray_storage = storage.ray_storage()
    ray_path = f"{ray_storage['storage_path']}/{storage.name}"
    fs = ray_storage.get("storage_filesystem")
    if spec_text is None or not tune.Tuner.can_restore(ray_path, storage_filesystem=fs):
        raise SpecError(storage.location, "holds no study to resume (no spec.yaml or no Ray Tune "
                        "state)", fix="pass the directory or URI `tunefleet run` wrote: "
                        "output.storage/<name>, or start it again with `tunefleet run`")
    spec = yaml.safe_load(spec_text)
    # The study may have been moved (or copied from a cluster): it continues where it is.
    output = spec.setdefault("output", {})
    output.pop("dir", None)
    output["storage"] = storage.root
    if spec.get("name") != storage.name:
        raise SpecError(storage.location, f"its spec is named {spec.get('name')!r}, but Ray Tune "
                        "keeps a study in a directory of the same name",
                        fix=f"rename the directory back to {spec.get('name')!r}")
    experiment = Experiment.from_dict(spec)
    prepared = prepare(experiment, data, hypermodel)
    _quiet_ray_warnings()
    cluster = connect(experiment)
    try:
        check_fits(experiment, cluster)
        _check_storage(storage, cluster)
        tuner = tune.Tuner.restore(ray_path, trainable=_trainable(experiment, prepared),
                                   resume_unfinished=True, resume_errored=False,
                                   restart_errored=False, storage_filesystem=fs)
        return _fit(tuner, experiment, storage, cluster, {"resumed": True})
    finally:
        disconnect(cluster)
