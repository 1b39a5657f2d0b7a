"""KerasTuner's tuners with KerasTuner's signatures, running each search as a tunefleet study on
Ray Tune: trials in parallel, cut early by a scheduler (ASHA unless told otherwise), kept on disk
in ``directory/project_name`` and continued when the tuner is created again."""

from __future__ import annotations

import warnings

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import yaml

from ..spec import Experiment, SpecError
from .arguments import KT_FIELDS, TunerArguments, hyperband_trials, refuse_unsupported
from .continuation import differences, ended_message, stored_result
from .declared import with_declared
from .inputs import search_inputs

__all__ = ["Tuner", "RandomSearch", "BayesianOptimization", "Hyperband", "GridSearch"]

@contextlib.contextmanager
def _kerastuner_fields(objective: Optional[dict[str, Any]] = None) -> Iterator[None]:
    """Spec errors named as the tuner's arguments (``max_trials``, not
    ``search.num_samples``); a missing default objective explained as KerasTuner does."""
    try:
        yield
    except SpecError as exc:
        if (objective or {}).get("metric") == "default_objective" and \
                exc.field == "objective.metric":
            raise SpecError("objective", "no objective was given, so (as in KerasTuner) "
                            "HyperModel.fit must return the value to minimise, as a float; "
                            f"this one does not ({exc.problem})",
                            fix="pass objective='val_loss' (or another metric the model "
                            "reports), or return a float from fit") from None
        if not exc.field:  # one validation pass: a line per problem, each "field: problem"
            lines = [line.partition(": ") for line in exc.problem.splitlines()]
            named = [(_argument(f) or f, rest) for f, _, rest in lines]
            if len(named) == 1 and named[0][0] != lines[0][0]:
                raise SpecError(named[0][0], named[0][1]) from None
            raise SpecError.many([f"{f}: {rest}" for f, rest in named]) from None
        field = _argument(exc.field)
        if field is None:
            raise
        raise SpecError(field, exc.problem, exc.value, fix=exc.fix) from None


def _argument(field: str) -> Optional[str]:
    """The tuner argument that sets spec ``field``; None for one no argument sets."""
    return next((kt for spec, kt in KT_FIELDS.items()
                 if field == spec or field.startswith(spec + ".")), None)


def _objective(objective: Any) -> dict[str, Any]:
    from ..study.hypermodel import _check_direction, _objective as as_spec

    if objective is None:  # KerasTuner: fit returns the value to minimise
        return {"metric": "default_objective", "mode": "min"}
    spec = as_spec(objective)
    _check_direction(spec)
    return spec


def _scheduler(scheduler: Union[str, dict, None]) -> dict[str, Any]:
    if scheduler is None:
        return {"name": "asha"}
    if isinstance(scheduler, str):
        return {"name": scheduler}
    if isinstance(scheduler, dict):
        return dict(scheduler)
    raise SpecError("scheduler", "must be a name ('asha', 'hyperband', 'median', 'fifo') or a "
                    "spec section such as {'name': 'asha', 'grace_period': 2}", scheduler)


class Tuner:
    """What the four tuners share. Not for subclassing with a custom ``run_trial``: trials run
    on Ray Tune; put custom training in ``HyperModel.fit``."""

    _algorithm = "random"

    def __init__(self, hypermodel: Any = None, *, objective: Any = None, max_trials: int = 10,
                 seed: Optional[int] = None, hyperparameters: Any = None,
                 tune_new_entries: bool = True, allow_new_entries: bool = True,
                 max_retries_per_trial: int = 0, max_consecutive_failed_trials: int = 3,
                 executions_per_trial: int = 1, directory: Union[str, Path, None] = None,
                 project_name: Optional[str] = None, overwrite: bool = False,
                 scheduler: Union[str, dict, None] = None,
                 resources_per_trial: Optional[dict] = None, max_concurrent: Optional[int] = None,
                 address: Optional[str] = None, time_budget_s: Optional[float] = None,
                 settings: Optional[list[str]] = None, _search: Optional[dict] = None,
                 _epochs: Optional[int] = None, **kwargs: Any):
        refuse_unsupported(kwargs)
        if type(self).run_trial is not Tuner.run_trial:
            raise SpecError("run_trial", f"{type(self).__name__} overrides run_trial; tunefleet "
                            "runs each trial on Ray Tune itself", fix="move the training into "
                            "HyperModel.fit(self, hp, model, x, y, **kwargs), which tunefleet "
                            "calls as KerasTuner does")
        if hypermodel is None:
            raise SpecError("hypermodel", "is required", fix="pass build_model (a function of "
                            "hp) or a keras_tuner.HyperModel")
        from ..trainables.hypermodel import HypermodelError, resolve_hypermodel

        try:
            resolved = resolve_hypermodel(hypermodel)
        except HypermodelError as exc:
            raise SpecError("hypermodel", str(exc), hypermodel) from None
        self.hypermodel = with_declared(resolved, hyperparameters, tune_new_entries,
                                        allow_new_entries)
        self._user_hypermodel = hypermodel
        self.directory = str(directory) if directory is not None else "."
        self.project_name = project_name or "untitled_project"
        self._seed_given = seed is not None
        self._args = TunerArguments(
            algorithm=self._algorithm, objective=_objective(objective), max_trials=max_trials,
            seed=seed, executions_per_trial=executions_per_trial,
            directory=os.path.abspath(self.directory) if "://" not in self.directory
            else self.directory,
            project_name=self.project_name, max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            scheduler=_scheduler(scheduler), resources=dict(resources_per_trial or {}),
            max_concurrent=max_concurrent, address=address, time_budget_s=time_budget_s,
            settings=list(settings or []), search_extra=dict(_search or {}), epochs=_epochs)
        self._overwrite = bool(overwrite)  # as KerasTuner: the old study is gone for this tuner
        self.result: Any = None  # the StudyResult of the last search
        self._study: Any = None
        # Every argument checked now, before any data is seen (search's epochs are not known
        # yet: a large count, so that only what search() gives can conflict with them).
        with _kerastuner_fields():
            Experiment.from_dict(self._args.spec(self.project_name, 10_000, "module:build"))

    # -- KerasTuner's methods ---------------------------------------------------------
    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("tunefleet runs each trial on Ray Tune (see HyperModel.fit)")

    @property
    def project_dir(self) -> str:
        return os.path.join(self.directory, self.project_name)

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """Run (or continue) the search with ``keras.Model.fit``'s arguments: ``x, y``,
        ``epochs``, ``validation_data`` or ``validation_split``, ``batch_size``, ``callbacks``,
        ``class_weight``, ``sample_weight``, ``shuffle``. Returns None, as KerasTuner's does;
        the study's result is ``tuner.result``."""
        from ..data.given import given_dataset
        from ..study.runner import run

        inputs = search_inputs(fit_args, fit_kwargs)
        for note in inputs.notes:
            print(f"tunefleet: {note}")
        data = given_dataset(inputs.x, inputs.y, inputs.validation)
        spec = self._args.spec(self.project_name, inputs.epochs, self._reference())
        stored = self._stored_spec()
        with _kerastuner_fields(self._args.objective):
            if stored is None:
                self.result = run(spec, overwrite=self._overwrite, data=data,
                                  hypermodel=self.hypermodel, fit_kwargs=inputs.fit_kwargs)
            else:
                self.result = self._continue(stored, spec, data, inputs.fit_kwargs)
        self._overwrite = False
        self._study = None

    def reload(self) -> None:
        """Read the study in ``directory/project_name`` again (as KerasTuner reloads it)."""
        self._study = None
        self._loaded()

    def get_best_hyperparameters(self, num_trials: int = 1) -> list[Any]:
        """The best trials' ``HyperParameters``, best first (fewer if fewer trials scored)."""
        from .results import ranked, trial_hyperparameters

        study = self._loaded()
        if study is None:
            return []
        return [trial_hyperparameters(study, row) for row in ranked(study, num_trials)]

    def get_best_models(self, num_models: int = 1) -> list[Any]:
        """The best trials' models, restored from the checkpoint of each trial's best epoch."""
        from .results import ranked, trial_model

        study = self._loaded()
        if study is None:
            return []
        return [trial_model(study, row, self.hypermodel) for row in ranked(study, num_models)]

    def results_summary(self, num_trials: int = 10) -> None:
        """Print the best trials as KerasTuner prints them."""
        from .results import ranked, trial_hyperparameters

        study = self._loaded()
        print("Results summary")
        print(f"Results in {self.project_dir}")
        print(f"Showing {num_trials} best trials")
        objective = self._args.objective
        print(f"Objective(name=\"{objective['metric']}\", direction=\"{self._direction()}\")")
        if study is None:
            return
        for row in ranked(study, num_trials):
            print()
            print(f"Trial {row['trial_id']} summary")
            print("Hyperparameters:")
            values = trial_hyperparameters(study, row).values
            for name, value in values.items():
                print(f"{name}: {value}")
            if not values:
                print("default configuration")
            print(f"Score: {float(row[f'best_{study.objective}'])}")
            if row["status"] != "completed":
                print(f"Status: {row['status']}")

    def search_space_summary(self, extended: bool = False) -> None:
        """Print the search space as KerasTuner prints it: the discovered one after a search,
        before it what ``build`` declares (``fit``'s own hyperparameters are found when
        ``search`` has data to call it with)."""
        hp = self._space()
        print("Search space summary")
        print(f"Default search space size: {len(hp.space)}")
        for p in hp.space:
            config = p.get_config()
            name = config.pop("name")
            print(f"{name} ({p.__class__.__name__})")
            print(config)

    # -- tunefleet's own --------------------------------------------------------------
    def report(self) -> Any:
        """Write the study's report (tables, figures, hyperparameter importance) into
        ``project_dir/report``. Without test metrics: ``search`` holds out no test split
        (evaluate ``get_best_models()[0]`` on your own test data)."""
        from ..reports import build_study_report

        if self._stored_spec() is None:
            raise SpecError("report", f"{self.project_dir} holds no study yet", fix="call "
                            "search() first")
        return build_study_report(self._storage(), hypermodel=self.hypermodel, evaluate=False)

    def __getattr__(self, name: str) -> Any:
        if name in ("oracle", "tuner_id", "logger", "distribution_strategy"):
            raise AttributeError(f"tunefleet's {type(self).__name__} has no {name!r}: results "
                                 "come from get_best_hyperparameters(), get_best_models(), "
                                 "results_summary() and the study directory "
                                 f"({self.project_dir})")
        raise AttributeError(name)

    # -- internals ----------------------------------------------------------------------
    def _direction(self) -> str:
        from ..spec.directions import metric_direction

        objective = self._args.objective
        return objective.get("mode") or metric_direction(objective["metric"]) or "max"

    def _reference(self) -> str:
        from ..trainables.hypermodel import hypermodel_reference

        return hypermodel_reference(self._user_hypermodel)

    def _storage(self) -> Any:
        from ..storage import study_storage

        return study_storage(os.path.join(self._args.directory, self.project_name))

    def _stored_spec(self) -> Optional[dict[str, Any]]:
        """The spec of the study in project_dir; None if there is none (or ``overwrite`` is
        pending: KerasTuner's overwrite=True starts the tuner without it)."""
        storage = self._storage()
        text = storage.read_text("spec.yaml")
        if text:
            return None if self._overwrite else yaml.safe_load(text)
        if storage.holds_anything():
            raise SpecError("project_name", f"{self.project_dir} holds files but no tunefleet "
                            "study (a KerasTuner project?); tunefleet neither reads nor deletes "
                            "them", fix="pass another project_name or directory, or delete "
                            "that directory yourself")
        return None

    def _loaded(self) -> Any:
        if self._study is None and self._stored_spec() is not None:
            from ..reports.load import load_study

            self._study = load_study(self._storage())
        return self._study

    def _space(self) -> Any:
        from .results import space_hyperparameters

        study = self._loaded()
        if study is not None:
            return space_hyperparameters(study.path)
        import keras_tuner as kt

        from ..cluster.devices import hide_driver_gpus
        from ..search_spaces.hypermodel_space import discover_space
        from ..trainables.hypermodel import probe_hypermodel

        warning = hide_driver_gpus()  # discovery builds models: the GPUs stay the trials'
        if warning:
            warnings.warn(warning, RuntimeWarning, stacklevel=2)
        space = discover_space(lambda values: probe_hypermodel(self.hypermodel, values))
        return kt.HyperParameters.from_config(space.to_json()["keras_tuner"] | {"values": {}})

    def _continue(self, stored: dict[str, Any], spec: dict[str, Any], data: Any,
                  fit_kwargs: dict[str, Any]) -> Any:
        """Continue the study in project_dir: add trials up to max_trials, or finish the
        unfinished ones; refused when the tuner's settings differ from the study's."""
        from ..study.runner import resume

        if not self._seed_given:  # a drawn seed: the study's own continues
            spec = {**spec, "search": {**spec["search"], "seed": stored["search"]["seed"]}}
        experiment = Experiment.from_dict(spec)
        given = experiment.to_dict()
        changed = [KT_FIELDS.get(f, f) for f in differences(given, stored)]
        info = json.loads(self._storage().read_text("data/info.json") or "{}")
        shape = list(data.info.input_shape)
        if info.get("input_shape") not in (None, shape):
            changed.append(f"x (examples shaped {shape}, the study's {info['input_shape']})")
        if changed:
            raise SpecError("project_name", f"{self.project_dir} holds a study started with "
                            f"other settings: {', '.join(changed)} differ; a continued search "
                            "may change max_trials, time_budget_s, address and "
                            "max_consecutive_failed_trials", fix="pass overwrite=True to "
                            "replace it, or another project_name or directory")
        have = int(stored["search"]["num_samples"])
        want = int(given["search"]["num_samples"])
        if want < have:
            raise SpecError("max_trials", f"{self.project_dir} already holds {have} trials and "
                            "keeps them", want, fix=f"pass max_trials={have} or more, or "
                            "overwrite=True to start again")
        summary = json.loads(self._storage().read_text("summary.json") or "{}")
        budget_changed = given["search"].get("time_budget_s") != \
            stored["search"].get("time_budget_s")
        ended = ended_message(summary, self.project_dir, have, budget_changed) \
            if want == have else None
        if ended is not None:
            print(f"tunefleet: {ended}")
            return stored_result(self._loaded(), summary, self._storage())
        return resume(self._storage(), data=data, hypermodel=self.hypermodel,
                      fit_kwargs=fit_kwargs, spec=experiment)

class RandomSearch(Tuner):
    """KerasTuner's RandomSearch: configurations sampled at random (seeded), on Ray Tune."""

    _algorithm = "random"

    def __init__(self, hypermodel: Any = None, objective: Any = None, max_trials: int = 10,
                 seed: Optional[int] = None, hyperparameters: Any = None,
                 tune_new_entries: bool = True, allow_new_entries: bool = True,
                 max_retries_per_trial: int = 0, max_consecutive_failed_trials: int = 3,
                 **kwargs: Any):
        super().__init__(hypermodel, objective=objective, max_trials=max_trials, seed=seed,
                         hyperparameters=hyperparameters, tune_new_entries=tune_new_entries,
                         allow_new_entries=allow_new_entries,
                         max_retries_per_trial=max_retries_per_trial,
                         max_consecutive_failed_trials=max_consecutive_failed_trials, **kwargs)


class BayesianOptimization(Tuner):
    """KerasTuner's BayesianOptimization, run as TPE (HyperOpt's Bayesian optimisation), not a
    Gaussian process: ``num_initial_points`` random trials, then TPE proposals. The Gaussian
    process's ``alpha`` and ``beta`` have no TPE counterpart and are refused if changed."""

    _algorithm = "hyperopt"

    def __init__(self, hypermodel: Any = None, objective: Any = None, max_trials: int = 10,
                 num_initial_points: Optional[int] = None, alpha: float = 1e-4,
                 beta: float = 2.6, seed: Optional[int] = None, hyperparameters: Any = None,
                 tune_new_entries: bool = True, allow_new_entries: bool = True,
                 max_retries_per_trial: int = 0, max_consecutive_failed_trials: int = 3,
                 **kwargs: Any):
        for name, value, default in (("alpha", alpha, 1e-4), ("beta", beta, 2.6)):
            if value != default:
                raise SpecError(name, "belongs to KerasTuner's Gaussian process; tunefleet's "
                                "BayesianOptimization is TPE (HyperOpt), which has no such "
                                "parameter", value, fix=f"remove {name}= (TPE's own knobs: "
                                "settings=['search.gamma=0.25'])")
        search = {} if num_initial_points is None else {"n_initial_points": num_initial_points}
        super().__init__(hypermodel, objective=objective, max_trials=max_trials, seed=seed,
                         hyperparameters=hyperparameters, tune_new_entries=tune_new_entries,
                         allow_new_entries=allow_new_entries,
                         max_retries_per_trial=max_retries_per_trial,
                         max_consecutive_failed_trials=max_consecutive_failed_trials,
                         _search=search, **kwargs)


class Hyperband(Tuner):
    """KerasTuner's Hyperband on Ray Tune's ASHA (asynchronous successive halving: no trial
    waits for a bracket to fill): ``max_t=max_epochs``, ``reduction_factor=factor``, the
    smallest budget of KerasTuner's brackets as ``grace_period``, and as many trials as
    KerasTuner's brackets start (times ``hyperband_iterations``), sampled at random.
    ``scheduler='hyperband'`` runs Ray's synchronous HyperBand instead. ``search(epochs=)`` is
    replaced by ``max_epochs``, as in KerasTuner."""

    _algorithm = "random"

    def __init__(self, hypermodel: Any = None, objective: Any = None, max_epochs: int = 100,
                 factor: int = 3, hyperband_iterations: int = 1, seed: Optional[int] = None,
                 hyperparameters: Any = None, tune_new_entries: bool = True,
                 allow_new_entries: bool = True, max_retries_per_trial: int = 0,
                 max_consecutive_failed_trials: int = 3, **kwargs: Any):
        for name, value, low in (("max_epochs", max_epochs, 1), ("factor", factor, 2),
                                 ("hyperband_iterations", hyperband_iterations, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise SpecError(name, f"must be an integer of at least {low}", value)
        trials, smallest = hyperband_trials(max_epochs, factor, hyperband_iterations)
        given = _scheduler(kwargs.pop("scheduler", None))
        name = given.get("name", "asha")
        if name == "asha":
            scheduler = {"name": "asha", "max_t": max_epochs, "reduction_factor": factor,
                         "grace_period": smallest, **given}
        elif name == "hyperband":
            scheduler = {"name": "hyperband", "max_t": max_epochs, "reduction_factor": factor,
                         **given}
        else:
            raise SpecError("scheduler", "Hyperband is itself a scheduler: 'asha' (default) or "
                            "'hyperband'", name, fix="use RandomSearch(scheduler=...) for "
                            "another scheduler")
        self.max_epochs, self.factor = max_epochs, factor
        super().__init__(hypermodel, objective=objective, max_trials=trials, seed=seed,
                         hyperparameters=hyperparameters, tune_new_entries=tune_new_entries,
                         allow_new_entries=allow_new_entries,
                         max_retries_per_trial=max_retries_per_trial,
                         max_consecutive_failed_trials=max_consecutive_failed_trials,
                         scheduler=scheduler, _epochs=max_epochs, **kwargs)


class GridSearch(Tuner):
    """KerasTuner's GridSearch: every configuration of the (discrete) space once, in parallel.
    ``max_trials`` smaller than the grid is refused: tunefleet runs the whole grid."""

    _algorithm = "grid"

    def __init__(self, hypermodel: Any = None, objective: Any = None,
                 max_trials: Optional[int] = None, seed: Optional[int] = None,
                 hyperparameters: Any = None, tune_new_entries: bool = True,
                 allow_new_entries: bool = True, max_retries_per_trial: int = 0,
                 max_consecutive_failed_trials: int = 3, **kwargs: Any):
        if max_trials is not None:
            raise SpecError("max_trials", "tunefleet's GridSearch runs every configuration of "
                            "the grid once and cannot stop part-way", max_trials,
                            fix="remove max_trials=, or use RandomSearch(max_trials=...) to "
                            "sample part of the space")
        super().__init__(hypermodel, objective=objective, max_trials=1, seed=seed,
                         hyperparameters=hyperparameters, tune_new_entries=tune_new_entries,
                         allow_new_entries=allow_new_entries,
                         max_retries_per_trial=max_retries_per_trial,
                         max_consecutive_failed_trials=max_consecutive_failed_trials, **kwargs)
