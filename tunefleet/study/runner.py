"""Assemble a Ray Tune study from an Experiment, run it, and write its summary."""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import yaml

from ..cluster import check_fits, check_shared_storage, connect, disconnect, planned_concurrency
from ..cluster.devices import BACKEND_INSTALL, backend_missing, hide_driver_gpus
from ..data import DataNotFoundError, Dataset, RawData, load_dataset, save_test_split
from ..schedulers import make_scheduler
from ..search_spaces import make_searcher, to_ray_space, total_trials
from ..search_spaces.conditional import make_conditional_searcher
from ..search_spaces.continuation import continued
from ..search_spaces.hypermodel_space import SPACE_FILE, HypermodelSpace
from .budget import (budget_searcher, budget_spent_so_far, budget_trials, spent_budget_note,
                     spent_search_budget, with_budget)
from .failure_policy import INTERRUPTED, FailureTracker, budget_spent
from .resume_rules import RESUMABLE  # noqa: F401  (importable from here, as before)
from .resume_rules import added_samples as _added_samples
from .resume_rules import resume_overrides as _resume_overrides
from .resume_rules import same_study as _same_study
from .resume_rules import section_changes as _section_changes
from ..spec import Experiment, SpecError, dump_yaml
from ..storage import StudyStorage, experiment_storage, study_storage
from .ray_console import console_for, quiet_ray_output, startup_lines_filtered
from .ray_telemetry import users_callbacks_counted
from .worker_output import worker_output_filtered
from .summary import StudyResult, summarize
from .pruning import checkpoint_callbacks
from .checkpoint_keeper import finish as finish_keeping
from .checkpoint_keeper import keeper_callbacks
from .live_stopper import study_stopper
from .driver_memory import limit_arenas, memory_callbacks
from .trackers import check_trackers, tracker_callbacks
from ..trainables import train_trial
from ..trainables.checks import check_experiment
from ..trainables.keras_trainable import ship

__all__ = ["run", "resume", "prepare", "as_experiment", "Prepared"]


def as_experiment(spec: Union[Experiment, dict, str, Path],
                  overrides: Optional[list[str]] = None) -> Experiment:
    """An Experiment from an Experiment, plain data, or a YAML path (overrides applied), its
    ``output.storage`` made absolute here: trials run in directories of their own, where a
    relative path would name another place (their failure records would be lost)."""
    from ..spec import apply_overrides

    if isinstance(spec, Experiment):
        experiment = (Experiment.from_dict(apply_overrides(spec.to_dict(), overrides))
                      if overrides else spec)
    elif isinstance(spec, dict):
        experiment = Experiment.from_dict(apply_overrides(spec, overrides or []))
    else:
        experiment = Experiment.from_yaml(spec, overrides)
    data = experiment.data
    if data.dataset == "image_folder" and data.path:  # trials and the report read it too
        from ..data.image_folder import resolve_root

        if resolve_root(data.path) != data.path:
            experiment = experiment.model_copy(update={"data": data.model_copy(
                update={"path": resolve_root(data.path)})})
    root = experiment_storage(experiment).root  # absolute for a path (see StudyStorage)
    if root == experiment.output.storage:
        return experiment
    return experiment.model_copy(
        update={"output": experiment.output.model_copy(update={"storage": root})})


def _local_modules(experiment: Experiment) -> None:
    """A ``module:function`` builder or hypermodel in the current directory imports as it
    would under ``python -m``. Appended, not prepended: a ``yaml.py`` or ``keras.py`` here must
    not shadow the real package."""
    refs = (experiment.model.builder, experiment.model.hypermodel)
    if any(isinstance(r, str) and ":" in r for r in refs):
        here = os.getcwd()
        if here not in sys.path and "" not in sys.path and "." not in sys.path:
            sys.path.append(here)


@dataclass
class Prepared:
    """What a study needs besides its spec, all checked before Ray starts."""

    dataset: Dataset
    hypermodel: Any = None
    space: Optional[HypermodelSpace] = None
    fit_kwargs: Optional[dict[str, Any]] = None  # what tuner.search passes to every fit

    @property
    def info(self):
        return self.dataset.info

    def total_trials(self, experiment: Experiment) -> int:
        if experiment.search.budget is not None:  # the most it can start
            return budget_trials(experiment)
        if self.space is not None and experiment.search.algorithm == "grid":
            return self.space.grid_size() * experiment.search.num_samples
        return total_trials(experiment)


def _load_data(experiment: Experiment, data: Union[RawData, Dataset, None]) -> Dataset:
    if isinstance(data, Dataset):  # split and shaped by the caller (the KerasTuner drop-in)
        return data
    try:
        return load_dataset(experiment.data, data)
    except DataNotFoundError as exc:
        raise SpecError("data.path" if experiment.data.path else "data.dataset", str(exc)) from None
    except SpecError:  # already names its field (data.task, data.target)
        raise
    except (ValueError, OSError) as exc:
        field = "data.path" if experiment.data.path else "data.dataset"
        raise SpecError(field, str(exc), experiment.data.path or experiment.data.dataset) from None


def _hypermodel_space(experiment: Experiment, hypermodel: Any, dataset: Dataset,
                      fit_kwargs: Optional[dict[str, Any]] = None) -> tuple[Any, HypermodelSpace]:
    from ..search_spaces.hypermodel_space import UnsupportedHypermodel, discover_space
    from ..trainables.checks import check_hypermodel
    from ..trainables.fit_contract import UserCodeError
    from ..trainables.hypermodel import HypermodelError, probe_hypermodel, resolve_hypermodel
    from ..trainables.keras_tuner_fit import base_arguments

    ref = hypermodel if hypermodel is not None else experiment.model.hypermodel
    try:
        hm = resolve_hypermodel(ref)
        base = base_arguments(experiment, hm)
        # fit runs on a few real rows (model.fit does nothing there), as KerasTuner calls it.
        space = discover_space(lambda values: probe_hypermodel(
            hm, values, dataset.training, fit_kwargs, base))
        if experiment.search.algorithm == "grid":
            space.grid_size()  # raises for continuous Floats
    except (HypermodelError, UnsupportedHypermodel, UserCodeError) as exc:
        raise SpecError("model.hypermodel", str(exc), experiment.model.hypermodel) from None
    defaults = {p.name: p.hp.default for p in space.params}
    check_hypermodel(experiment, hm, dataset.training, space.active(defaults), fit_kwargs,
                     alternatives=space.working)
    return hm, space


def prepare(experiment: Experiment, data: Union[RawData, Dataset, None] = None,
            hypermodel: Any = None, fit_kwargs: Optional[dict[str, Any]] = None) -> Prepared:
    """Everything checkable without Ray: load the data, check the spec against it, and for a
    hypermodel discover its search space (``fit_kwargs``: see :func:`run`). TensorFlow in this
    process sees no GPU from here on: the GPUs are the trials'."""
    missing = backend_missing(experiment.train.backend)
    if missing and experiment.cluster.address == "local":  # the trials' environment is this one
        raise SpecError("train.backend", missing, experiment.train.backend,
                        fix=BACKEND_INSTALL[experiment.train.backend])
    limit_arenas()  # before TensorFlow's and Ray's threads (study/driver_memory.py)
    warning = hide_driver_gpus()
    if warning:
        warnings.warn(warning, RuntimeWarning, stacklevel=2)
    _local_modules(experiment)
    check_trackers(experiment)  # output.trackers' packages, before any data is loaded
    if experiment.data.dataset == "image_folder" and (experiment.model.hypermodel
                                                      or hypermodel is not None):
        raise SpecError("data.dataset", "an image folder streams to builders only; a "
                        "hypermodel is given arrays", "image_folder",
                        fix="use model.builder (cnn, or your own package.module:function), or "
                        "load the images as arrays and pass them with dataset: npz")
    dataset = _load_data(experiment, data)
    if experiment.model.hypermodel or hypermodel is not None:
        dataset = dataset.with_array_inputs()  # fit takes arrays: float32, shared by trials
        hm, space = _hypermodel_space(experiment, hypermodel, dataset, fit_kwargs)
        return Prepared(dataset, hm, space, fit_kwargs)
    check_experiment(experiment, dataset.info)
    return Prepared(dataset)


def _check_study_dir(experiment: Experiment, overwrite: bool) -> StudyStorage:
    storage = experiment_storage(experiment)
    if overwrite:
        storage.check_replaceable()  # a study, or nothing: never another directory
    elif storage.holds_anything():
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
        return (budget_searcher(experiment, max_concurrent)
                or make_searcher(experiment, max_concurrent))
    from ray.tune.search import ConcurrencyLimiter

    from ..spec.methods import UNLIMITED_SEARCHER_SCHEDULERS

    search = experiment.search
    searcher = make_conditional_searcher(
        prepared.space, search.algorithm, metric=experiment.objective.metric,
        mode=experiment.objective.direction, seed=search.seed, repeats=search.num_samples,
        n_initial_points=getattr(search, "n_initial_points", 20),
        gamma=getattr(search, "gamma", 0.25))
    if experiment.scheduler.name in UNLIMITED_SEARCHER_SCHEDULERS or not max_concurrent:
        return searcher
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def _trainable(experiment: Experiment, prepared: Prepared) -> Any:
    from ray import tune

    return tune.with_resources(
        # ship: a hypermodel unpickled before the trial chose its backend would import Keras.
        tune.with_parameters(train_trial, data=prepared.dataset.training, experiment=experiment,
                             hypermodel=ship(prepared.hypermodel, experiment),
                             fit_kwargs=ship(prepared.fit_kwargs, experiment)),
        {"cpu": experiment.resources.cpu, "gpu": experiment.resources.gpu},
    )


def _num_samples(experiment: Experiment, prepared: Prepared) -> int:
    """Ray's ``num_samples``: trials for a hypermodel's own searcher, repetitions of the
    space for Ray's grid and random search."""
    if prepared.space is not None or experiment.search.budget is not None:
        return prepared.total_trials(experiment)
    return experiment.search.num_samples


def _callbacks_and_stop(experiment: Experiment, storage: StudyStorage, tracker: Any,
                        console: Any = None, spent: float = 0.0) -> tuple[list[Any], Any]:
    """The run's Ray callbacks and its stopper, the same for a new study and a resumed one:
    the failure policy's ``tracker`` (callback and stopper) first, ``search.budget``'s stopper
    (study/budget.py; ``spent``: what a resumed study had spent already), the trackers, the
    ``console`` (if any), the checkpoints kept (``output.num_to_keep``) and pruned, and the
    driver's memory trim. The stopper pickles as a reference to this run's (live_stopper.py):
    Ray puts what its snapshot holds in place of the stopper a resumed run is given."""
    budget_callbacks, stop = with_budget(experiment, tracker, spent)
    keeper = keeper_callbacks(experiment.output.num_to_keep, remote=storage.remote)
    callbacks = [tracker, *budget_callbacks, *tracker_callbacks(experiment, storage),
                 *filter(None, [console]), *keeper, *checkpoint_callbacks(experiment),
                 *memory_callbacks()]
    return callbacks, study_stopper(stop)


def _tuner(experiment: Experiment, prepared: Prepared, storage: StudyStorage,
           max_concurrent: int, tracker: Any, console: Any = None) -> Any:
    from ray import tune

    hypermodel = prepared.space is not None
    callbacks, stop = _callbacks_and_stop(experiment, storage, tracker, console)
    tune_config = tune.TuneConfig(
        metric=experiment.objective.metric,
        mode=experiment.objective.mode,
        search_alg=_searcher(experiment, prepared, max_concurrent),
        scheduler=make_scheduler(experiment),
        num_samples=_num_samples(experiment, prepared),
        reuse_actors=experiment.resources.reuse,
        trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
    )
    run_config = tune.RunConfig(
        name=experiment.name,
        **storage.ray_storage(),
        # num_to_keep=None: Ray keeps them all and never rewrites its experiment state for a
        # checkpoint; keeper_callbacks keeps output.num_to_keep (study/checkpoint_keeper.py).
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=None,
            checkpoint_score_attribute=experiment.objective.metric,
            checkpoint_score_order=experiment.objective.mode,
        ),
        # Errors are retried from the trial's last checkpoint; failures are not (see
        # failure_policy.py). fail_fast would end the study at the first error.
        failure_config=tune.FailureConfig(max_failures=experiment.failure.max_retries,
                                          fail_fast=False),
        callbacks=callbacks,
        stop=stop,
        verbose=1 if console is None else 0,  # the console replaces Ray's reporter
    )
    space = {} if hypermodel else to_ray_space(experiment)
    return tune.Tuner(_trainable(experiment, prepared), param_space=space,
                      tune_config=tune_config, run_config=run_config)


def _fit(tuner: Any, experiment: Experiment, storage: StudyStorage, cluster: Any,
         extra: dict[str, Any], tracker: Any, earlier: Optional[str] = None,
         console: Any = None) -> StudyResult:
    """Run the tuner, then summarise the study from what it wrote (reports/load.py's reading).
    Ray ends the run on a first Ctrl-C itself and returns; a second one raises here.
    ``earlier``: why the study had stopped (its failure policy, or a budget spent) before
    it was resumed."""
    started = time.perf_counter()
    fitted = False
    try:
        with quiet_ray_output(console), users_callbacks_counted():
            tuner.fit()
        fitted = True
    except KeyboardInterrupt:
        tracker.interrupt()
        raise
    finally:
        finish_keeping(fitted)  # Ray's final snapshot is on storage only if fit returned
    wall = time.perf_counter() - started
    info = {k: v for k, v in asdict(cluster).items() if k != "started_here"}
    stopped = tracker.stopped
    if tracker.interrupted:
        stopped += f"; continue it with `tunefleet resume {storage.location}`"
    elif stopped is None and earlier:
        stopped = _stopped_before(earlier, experiment)
    return summarize(experiment, wall, {**info, **extra}, stopped=stopped, storage=storage)


def _stopped_before(earlier: str, experiment: Experiment) -> str:
    """A resumed study's ``stopped`` when this run stopped nothing: why it had stopped
    (``earlier``, a resume may have said it already), and what running more takes."""
    if spent_search_budget(earlier):
        note = spent_budget_note(experiment.search.budget)
    else:
        note = (" (before it was resumed; the trials it stopped are not run again: start a new "
                "study to run them)")
    return earlier if earlier.endswith(note) else earlier + note


@contextmanager
def _connected(experiment: Experiment, verbose: bool) -> Iterator[Any]:
    """Ray connected for the block (``connect``), disconnected after it; unless ``verbose``,
    the tracebacks of Ray ending trial processes and its restore notes are dropped from what
    Ray prints here until then (study/worker_output.py): they can arrive after the study's
    last step."""
    cluster = connect(experiment)
    with worker_output_filtered(not verbose):
        try:
            yield cluster
        finally:
            disconnect(cluster)


def _quiet_ray_warnings() -> None:
    # A study resumed from a snapshot older tunefleet wrote keeps Ray's num_to_keep, which
    # snapshots after every checkpoint and warns about it after every trial: only noise.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def run(spec: Union[Experiment, dict, str, Path], overrides: Optional[list[str]] = None, *,
        overwrite: bool = False, data: Union[RawData, Dataset, None] = None,
        hypermodel: Any = None, fit_kwargs: Optional[dict[str, Any]] = None,
        verbose: bool = False) -> StudyResult:
    """Validate, start or join Ray, run every trial, and return the finished study.

    ``data`` (see :func:`tunefleet.data.arrays_as_raw`) supplies arrays for ``dataset: arrays``;
    ``hypermodel`` a KerasTuner hypermodel object instead of ``model.hypermodel``'s import path;
    ``fit_kwargs`` what ``tuner.search`` passes to every ``HyperModel.fit`` besides the data and
    epochs (``callbacks``, ``class_weight``, ``sample_weight`` aligned with the training rows,
    ...): given (even ``{}``), trials call ``fit`` once per execution as KerasTuner does.
    Every input problem raises :class:`SpecError` before any training starts. Progress shows
    in tunefleet's compact console (study/console.py); ``verbose=True`` shows Ray Tune's own
    reporter instead.
    """
    experiment = as_experiment(spec, overrides)
    with startup_lines_filtered(not verbose):  # TensorFlow's start-up lines, in this process
        prepared = prepare(experiment, data, hypermodel, fit_kwargs)
    storage = _check_study_dir(experiment, overwrite)
    _quiet_ray_warnings()
    with _connected(experiment, verbose) as cluster:
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
        max_concurrent = planned_concurrency(experiment, cluster)
        tracker = FailureTracker(storage, experiment.failure.max_consecutive,
                                 experiment.search.time_budget_s)
        console = console_for(experiment, storage, tracker, verbose)
        tuner = _tuner(experiment, prepared, storage, max_concurrent, tracker, console)
        return _fit(tuner, experiment, storage, cluster,
                    {"max_concurrent_trials": max_concurrent or None}, tracker, console=console)


def _restored_tuner(ray_path: str, fs: Any, experiment: Experiment, prepared: Prepared,
                    tracker: Any, search_alg: Any = None, console: Any = None,
                    spent: float = 0.0) -> Any:
    """Ray Tune's restore, with this run's failure policy: Ray restores the run's callbacks
    from the study's state, where the old tracker writes to where the study was and reports
    its stop to nobody (its stopper is this run's: live_stopper.py). ``search_alg``, if given, replaces the study's own search
    algorithm (before Ray restores its state into it): a continued study's. ``spent``: what
    the study had spent of its ``search.budget`` before (study/budget.py)."""
    from ray import tune

    tuner = tune.Tuner.restore(ray_path, trainable=_trainable(experiment, prepared),
                               resume_unfinished=True, resume_errored=False,
                               restart_errored=False, storage_filesystem=fs)
    local = getattr(tuner, "_local_tuner", None)  # None only through Ray Client (ray://)
    if local is None:
        raise SpecError("cluster.address", "a study cannot be resumed through Ray Client",
                        experiment.cluster.address, fix="run `tunefleet resume` on the "
                        "cluster (--address auto), or submit it as a job")
    run_config = local.get_run_config()
    run_config.callbacks, run_config.stop = _callbacks_and_stop(
        experiment, tracker.storage, tracker, console, spent)
    run_config.verbose = 1 if console is None else 0
    run_config.failure_config = tune.FailureConfig(
        max_failures=experiment.failure.max_retries, fail_fast=False)
    if search_alg is not None:
        local._tune_config.search_alg = search_alg
    return tuner


def resume(location: Union[str, Path, StudyStorage], overrides: Optional[list[str]] = None, *,
           data: Union[RawData, Dataset, None] = None, hypermodel: Any = None,
           spec: Optional[Experiment] = None,
           fit_kwargs: Optional[dict[str, Any]] = None, verbose: bool = False) -> StudyResult:
    """Continue a study whose driver died or was stopped (Ray Tune's restore), or add trials to
    it: finished trials are kept, unfinished ones continue from their last checkpoint, and the
    searcher and scheduler carry on from their saved state. ``location`` is the study's
    directory or URI (``output.storage/<name>``); ``overrides`` may change ``cluster.*``,
    ``failure.max_consecutive``, ``search.time_budget_s`` (a budget for this run) and
    ``search.num_samples``: a larger number adds new trials until the study holds that many
    (× the grid for grid search), the same number adds none, a smaller one is refused; anything
    else is refused. ``spec``, the spec the caller meant to run, must match the study's own
    except in those fields; ``data``/``hypermodel``/``fit_kwargs`` as for :func:`run`, when the study was
    started with Python objects rather than names; ``verbose`` as for :func:`run`."""
    from ray import tune

    from ..spec import apply_overrides

    overrides = _resume_overrides(list(overrides or []))
    storage = study_storage(location)
    spec_text = storage.read_text("spec.yaml")
    ray_storage = storage.ray_storage()
    ray_path = f"{ray_storage['storage_path']}/{storage.name}"
    fs = ray_storage.get("storage_filesystem")
    if spec_text is None or not tune.Tuner.can_restore(ray_path, storage_filesystem=fs):
        raise SpecError(storage.location, "holds no study to resume (no spec.yaml or no Ray Tune "
                        "state)", fix="pass the directory or URI `tunefleet run` wrote: "
                        "output.storage/<name>, or start it again with `tunefleet run`")
    original = yaml.safe_load(spec_text)
    # The study may have been moved (or copied from a cluster): it continues where it is.
    output = original.setdefault("output", {})
    output.pop("dir", None)
    output["storage"] = storage.root
    stored = apply_overrides(original, overrides)
    if stored.get("name") != storage.name:
        raise SpecError(storage.location, f"its spec is named {stored.get('name')!r}, but Ray "
                        "Tune keeps a study in a directory of the same name",
                        fix=f"rename the directory back to {stored.get('name')!r}")
    experiment = Experiment.from_dict(stored)
    if spec is not None:
        _same_study(experiment, spec)
        changes = _resume_overrides(_section_changes(experiment, spec))
        if changes:
            overrides = [*overrides, *changes]
            experiment = Experiment.from_dict(apply_overrides(stored, changes))
    more = _added_samples(Experiment.from_dict(original), experiment, overrides,
                          storage.location)
    # A study the failure policy stopped stays stopped: Ray ended its trials and its searcher,
    # and so does one whose search.budget was spent (the study is what the budget bought). One
    # whose time budget (search.time_budget_s) ran out also starts the trials it had not
    # created yet.
    earlier = json.loads(storage.read_text("summary.json") or "{}").get("stopped")
    if earlier and earlier.startswith(INTERRUPTED):
        earlier = None
    reopen = budget_spent(earlier)
    with startup_lines_filtered(not verbose):
        prepared = prepare(experiment, data, hypermodel, fit_kwargs)
    _quiet_ray_warnings()
    with _connected(experiment, verbose) as cluster:
        check_fits(experiment, cluster)
        _check_storage(storage, cluster)
        if overrides:  # the study's record says what it continued with
            storage.local_dir.mkdir(parents=True, exist_ok=True)
            dump_yaml(experiment.to_dict(), storage.local_dir / "spec.yaml")
            storage.upload("spec.yaml")
        tracker = FailureTracker(storage, experiment.failure.max_consecutive,
                                 experiment.search.time_budget_s)
        search_alg = None
        if more or reopen:
            max_concurrent = planned_concurrency(experiment, cluster)
            search_alg = continued(_searcher(experiment, prepared, max_concurrent),
                                   _num_samples(experiment, prepared), reopen)
        spent = budget_spent_so_far(experiment, storage)
        console = console_for(experiment, storage, tracker, verbose, spent)
        tuner = _restored_tuner(ray_path, fs, experiment, prepared, tracker, search_alg, console,
                                spent)
        return _fit(tuner, experiment, storage, cluster, {"resumed": True}, tracker, earlier,
                    console=console)
