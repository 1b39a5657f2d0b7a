"""Assemble a Ray Tune study from an Experiment, run it, and write its summary."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional, Union

from .cluster import check_fits, concurrent_trials, connect, disconnect
from .data import Dataset, load_dataset, save_test_split
from .schedulers import make_scheduler
from .search_spaces import make_searcher, to_ray_space
from .spec import Experiment, SpecError, dump_yaml
from .summary import StudyResult, summarize
from .trainables import train_trial
from .trainables.checks import check_experiment

__all__ = ["run", "prepare", "as_experiment"]


def as_experiment(spec: Union[Experiment, dict, str, Path],
                  overrides: Optional[list[str]] = None) -> Experiment:
    """An Experiment from an Experiment, plain data, or a YAML path (overrides applied)."""
    if isinstance(spec, Experiment):
        if overrides:
            from .spec import apply_overrides

            return Experiment.from_dict(apply_overrides(spec.to_dict(), overrides))
        return spec
    if isinstance(spec, dict):
        from .spec import apply_overrides

        return Experiment.from_dict(apply_overrides(spec, overrides or []))
    return Experiment.from_yaml(spec, overrides)


def prepare(experiment: Experiment) -> Dataset:
    """Everything checkable without Ray: load the data, check the spec against it."""
    dataset = load_dataset(experiment.data.dataset, experiment.data.validation_fraction,
                           experiment.data.test_fraction, experiment.data.seed)
    check_experiment(experiment, dataset.info)
    return dataset


def _check_study_dir(experiment: Experiment, overwrite: bool) -> Path:
    study_dir = experiment.study_dir
    if study_dir.exists() and any(study_dir.iterdir()) and not overwrite:
        raise SpecError("output.dir", f"{study_dir} already holds a study", str(study_dir),
                        fix="pass --overwrite (overwrite=True) to replace it, or change "
                        "name or output.dir")
    return study_dir


def _tuner(experiment: Experiment, dataset: Dataset, max_concurrent: int) -> Any:
    from ray import tune

    trainable = tune.with_resources(
        tune.with_parameters(train_trial, data=dataset.training, experiment=experiment),
        {"cpu": experiment.resources.cpu, "gpu": experiment.resources.gpu},
    )
    tune_config = tune.TuneConfig(
        metric=experiment.objective.metric,
        mode=experiment.objective.mode,
        search_alg=make_searcher(experiment, max_concurrent),
        scheduler=make_scheduler(experiment),
        num_samples=experiment.search.num_samples,
        reuse_actors=experiment.resources.reuse,
        trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
    )
    run_config = tune.RunConfig(
        name=experiment.name,
        storage_path=str(experiment.study_dir.parent),
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=experiment.output.num_to_keep,
            checkpoint_score_attribute=experiment.objective.metric,
            checkpoint_score_order=experiment.objective.mode,
        ),
        failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        verbose=1,
    )
    return tune.Tuner(trainable, param_space=to_ray_space(experiment), tune_config=tune_config,
                      run_config=run_config)


def _quiet_ray_warnings() -> None:
    # Checkpointing each epoch with num_to_keep makes Ray snapshot often and warn about it
    # after every trial; the snapshots are small here, so the warning is only noise.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def run(spec: Union[Experiment, dict, str, Path], overrides: Optional[list[str]] = None, *,
        overwrite: bool = False) -> StudyResult:
    """Validate, start or join Ray, run every trial, and return the finished study.

    Every input problem raises :class:`SpecError` before any training starts.
    """
    experiment = as_experiment(spec, overrides)
    dataset = prepare(experiment)
    study_dir = _check_study_dir(experiment, overwrite)
    _quiet_ray_warnings()
    cluster = connect(experiment)
    try:
        check_fits(experiment, cluster)
        shutil.rmtree(study_dir, ignore_errors=True)
        study_dir.mkdir(parents=True)
        dump_yaml(experiment.to_dict(), study_dir / "spec.yaml")
        save_test_split(dataset, study_dir / "data")
        max_concurrent = concurrent_trials(experiment, cluster.cpus, cluster.gpus)
        tuner = _tuner(experiment, dataset, max_concurrent)
        started = time.perf_counter()
        tuner.fit()  # everything the summary needs is on disk; it reads it from there
        wall = time.perf_counter() - started
        info = {k: v for k, v in asdict(cluster).items() if k != "started_here"}
        return summarize(experiment, wall, {**info, "max_concurrent_trials": max_concurrent})
    finally:
        disconnect(cluster)
