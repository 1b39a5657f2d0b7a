"""Checks of an experiment against what the trainable can do, run before Ray starts:
the builder imports, every tuned name lands somewhere, metrics exist for the task."""

from __future__ import annotations

import warnings
from typing import Any, Iterable, Optional

from ..data import DataInfo, TrainingData
from ..spec import TUNABLE_TRAIN_FIELDS, Experiment, SpecError
from ..spec.base import suggest
from ..spec.space import entry_values
from .builders import BUILDERS, builder_parameters, resolve_builder
from .settings import METRICS_BY_TASK, reported_metrics

__all__ = ["check_experiment", "check_hypermodel"]


def check_experiment(experiment: Experiment, info: DataInfo) -> None:
    """Raise SpecError for the first thing the trainable could not do with this spec."""
    try:
        builder = resolve_builder(experiment.model.builder)
    except ValueError as exc:
        raise SpecError("model.builder", str(exc), experiment.model.builder) from None
    accepted, takes_any = builder_parameters(builder)

    for key in experiment.model.params:
        if key in TUNABLE_TRAIN_FIELDS:
            raise SpecError(f"model.params.{key}", "is a training option, not a builder "
                            "parameter", fix=f"set train.{key} (or tune it in search_space)")
        if not takes_any and key not in accepted:
            raise SpecError(f"model.params.{key}", f"builder '{experiment.model.builder}' has "
                            f"no such parameter", fix=f"{suggest(key, sorted(accepted))}"
                            f"its parameters: {', '.join(sorted(accepted))}")
    for key in experiment.search_space:
        if key in TUNABLE_TRAIN_FIELDS or takes_any or key in accepted:
            continue
        valid = sorted(accepted) + list(TUNABLE_TRAIN_FIELDS)
        raise SpecError(f"search_space.{key}", "is neither a training option nor a parameter "
                        f"of builder '{experiment.model.builder}'",
                        fix=f"{suggest(key, valid)}training options: "
                        f"{', '.join(TUNABLE_TRAIN_FIELDS)}; builder parameters: "
                        f"{', '.join(sorted(accepted)) or '(none)'}")

    if experiment.model.builder == "cnn" and len(info.input_shape) != 3:
        raise SpecError("model.builder", f"cnn needs images, but dataset '{info.name}' is "
                        f"tabular with input shape {info.input_shape}", "cnn",
                        fix="use builder: mlp")
    if experiment.model.builder == "cnn":
        _check_cnn_depth(experiment, info)
    if experiment.model.builder in BUILDERS:
        _check_builds(experiment, info)

    valid_metrics = METRICS_BY_TASK[info.task]
    for name in experiment.train.metrics or []:
        if name not in valid_metrics:
            raise SpecError("train.metrics", f"'{name}' is not available for a {info.task} "
                            f"task", name, fix=f"{suggest(name, valid_metrics)}choose from "
                            f"{', '.join(valid_metrics)}")
    reported = reported_metrics(experiment, info.task)
    for field, metric in _monitored(experiment):
        if metric not in reported:
            raise SpecError(field, "the trainable never reports this metric", metric,
                            fix=f"{suggest(metric, reported)}reported each epoch: "
                            f"{', '.join(reported)} (add more with train.metrics)")


def _check_builds(experiment: Experiment, info: DataInfo, limit: int = 60) -> None:
    """Build the model (no training) with the fixed params, then with each tuned builder
    parameter at each listed value or range end, so a value the builder rejects is reported
    here rather than by every trial. A value counts as rejected only if it fails beside every
    value of the other tuned parameters tried (a deep CNN may need ``pooling: none``)."""
    import keras

    builder = BUILDERS[experiment.model.builder]
    base = dict(experiment.model.params)
    tuned: dict[str, list[Any]] = {}
    for key, entry in experiment.search_space.items():
        if key in TUNABLE_TRAIN_FIELDS:
            continue
        if entry.type == "fixed":
            base[key] = entry.value
        else:
            tuned[key] = entry_values(entry)
    budget = [limit]

    def builds(kwargs: dict[str, Any]) -> Exception | None:
        if budget[0] <= 0:
            return None  # out of checks: let it pass rather than stall the start
        budget[0] -= 1
        try:
            builder(info, **kwargs)
            return None
        except (ValueError, TypeError) as exc:
            return exc
        finally:
            # Many builds in a row: a full gc.collect() each time costs more than the build
            # in a large driver process, and Python's own collector frees the models anyway.
            keras.backend.clear_session(free_memory=False)

    error = builds(base)
    if error is not None and all(builds({**base, key: value}) is not None
                                 for key, values in tuned.items() for value in values):
        raise SpecError("model.params", f"builder '{experiment.model.builder}' rejects them: "
                        f"{error}", base) from None
    for key, values in tuned.items():
        for value in values:
            first = builds({**base, key: value})
            if first is None:
                continue
            others = ({**base, key: value, other: w} for other, ws in tuned.items()
                      if other != key for w in ws)
            if all(builds(kwargs) is not None for kwargs in others):
                raise SpecError(f"search_space.{key}", f"builder '{experiment.model.builder}' "
                                f"rejects it: {first}", value) from None


def _check_cnn_depth(experiment: Experiment, info: DataInfo) -> None:
    space = experiment.search_space
    params = experiment.model.params
    poolings = entry_values(space["pooling"]) if "pooling" in space else [params.get("pooling", "max")]
    if all(p == "none" for p in poolings):
        return  # no trial pools, so any depth keeps the image size
    blocks = max(entry_values(space["conv_blocks"])) if "conv_blocks" in space else params.get(
        "conv_blocks", 2)
    size = min(info.input_shape[:2])
    pools = int(blocks) - (0 if params.get("pool_last", True) else 1)
    if 2 ** pools > size:
        field = "search_space.conv_blocks" if "conv_blocks" in space else "model.params.conv_blocks"
        raise SpecError(field, f"{blocks} pooled conv blocks shrink the {info.input_shape[0]}x"
                        f"{info.input_shape[1]} images of '{info.name}' below one pixel", blocks,
                        fix=f"use at most {size.bit_length() - 1} blocks, or pooling: none")


def check_hypermodel(experiment: Experiment, hypermodel: Any, data: TrainingData,
                     config: dict[str, Any],
                     fit_kwargs: Optional[dict[str, Any]] = None,
                     alternatives: Iterable[dict[str, Any]] = ()) -> list[str]:
    """Train the default configuration for one epoch on a few rows, in the driver, calling
    ``hypermodel.fit`` as KerasTuner (and the trials) do, to learn the metric names it reports:
    what its callbacks saw plus what it returned (a History, a dict, or the objective as a
    float). The objective must be in what a trial's last report holds (its last epoch's logs
    merged with what ``fit`` returned), every monitored metric among the names. A default the
    user's code marks failed (``FailedTrialError``) is replaced by the first of
    ``alternatives`` (configurations discovery built) that is not; if all are, the check is
    skipped with a warning. Returns the names (empty when skipped)."""
    from .fit_contract import UserCodeError, copy_callbacks, failed_trial_error
    from .hypermodel import hypermodel_reference

    name = experiment.model.hypermodel or hypermodel_reference(hypermodel)
    try:
        copy_callbacks((fit_kwargs or {}).get("callbacks"))
    except UserCodeError as exc:
        raise SpecError("callbacks", str(exc), (fit_kwargs or {}).get("callbacks"),
                        fix="pass Keras callback objects") from None
    tried: list[str] = []
    for candidate in [config, *(c for c in alternatives if c != config)][:8]:
        try:
            logs, result, compiled = _train_once(experiment, hypermodel, data, candidate,
                                                 fit_kwargs, name)
        except failed_trial_error() as exc:
            tried.append(f"{candidate}: {exc}")
            continue
        return _check_reported(experiment, name, logs, result, compiled)
    warnings.warn(f"model.hypermodel: {name} marked every configuration tried as failed "
                  f"(FailedTrialError), so the objective's name was not checked before the "
                  f"study: {'; '.join(tried)}", stacklevel=2)
    return []


def _train_once(experiment: Experiment, hypermodel: Any, data: TrainingData,
                config: dict[str, Any], fit_kwargs: Optional[dict[str, Any]],
                name: str) -> tuple[list[dict[str, Any]], Any, bool]:
    """One epoch on a few rows: (the callbacks' logs, what fit returned, compiled?)."""
    import keras

    from .fit_contract import (EpochRecorder, UserCodeError, call_user, copy_callbacks,
                               fit_call, recorder_callback)
    from .compile import precision_policy
    from .first_trace import build_on_first_fit
    from .hypermodel import HypermodelError, build_hypermodel
    from .keras_tuner_fit import base_arguments

    rows = min(len(data.y_train), 64)
    recorder = EpochRecorder()
    callbacks = copy_callbacks((fit_kwargs or {}).get("callbacks"))
    try:
        keras.utils.set_random_seed(0)
        with precision_policy(experiment.train):  # as the trials build it
            model, hp = build_hypermodel(hypermodel, config, checked=True)
        build_on_first_fit(model)  # as the trials train it
        args, kwargs = fit_call(data, fit_kwargs, base_arguments(experiment, hypermodel), 1,
                                [*callbacks, recorder_callback(recorder)], rows=rows)
        result = call_user(hypermodel, "fit", hp, model, *args, **kwargs)
        return recorder.logs, result, bool(getattr(model, "compiled", False))
    except (HypermodelError, UserCodeError) as exc:
        raise SpecError("model.hypermodel", f"training the default configuration for one "
                        f"epoch on {rows} rows failed: {exc}", name,
                        fix="fix build_model (or fit) so that it trains on this data") from None
    finally:
        keras.backend.clear_session()


def _check_reported(experiment: Experiment, name: str, logs: list[dict[str, Any]], result: Any,
                    compiled: bool) -> list[str]:
    from .fit_contract import convert_result, merge_result

    objective = experiment.objective.metric
    final = merge_result(logs, result, objective)
    seen = [k for entry in [*logs, *convert_result(result, objective)] for k in entry]
    if not seen:
        raise SpecError("model.hypermodel", f"{name}'s fit returned {type(result).__name__} "
                        "and never called on_epoch_end of the callbacks it was given, so no "
                        "trial could report a metric", name, fix="return model.fit(...)'s "
                        "History, a dict of metrics, or the objective's value as a float, or "
                        "call callback.on_epoch_end(epoch, logs) for each callback in "
                        "callbacks (KerasTuner's contract)")
    reported = [*dict.fromkeys(seen), "epoch"]
    whose = "'s compiled model" if compiled else ""
    for field, metric in _monitored(experiment):
        if metric not in reported:
            raise SpecError(field, f"the hypermodel{whose} never reports this metric",
                            metric, fix=f"{suggest(metric, reported)}it reports: "
                            f"{', '.join(reported)} (add metrics in its model.compile, or "
                            "return or log them from its fit)")
    last = [k for k in (final[-1] if final else {})]
    if objective not in last:  # a trial's last report would lack it: Ray would end the study
        raise SpecError("objective.metric", "the hypermodel's fit does not hand this metric "
                        "back at its end (it is in neither its last epoch's logs nor what "
                        "fit returned)", objective, fix=f"return it from fit (a float, or a "
                        f"dict holding '{objective}'), or log it in every epoch; its last "
                        f"report holds: {', '.join(last) or '(nothing)'}")
    return reported


def _monitored(experiment: Experiment) -> list[tuple[str, str]]:
    monitored = [("objective.metric", experiment.objective.metric)]
    if experiment.train.early_stopping:
        monitored.append(("train.early_stopping.monitor", experiment.train.early_stopping.monitor))
    if experiment.train.reduce_lr_on_plateau:
        monitored.append(("train.reduce_lr_on_plateau.monitor",
                          experiment.train.reduce_lr_on_plateau.monitor))
    return monitored
