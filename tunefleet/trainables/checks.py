"""Checks of an experiment against what the trainable can do, run before Ray starts:
the builder imports, every tuned name lands somewhere, metrics exist for the task."""

from __future__ import annotations

from ..data import DataInfo
from ..spec import TUNABLE_TRAIN_FIELDS, Experiment, SpecError
from ..spec.base import suggest
from ..spec.space import entry_values
from .builders import builder_parameters, resolve_builder
from .settings import METRICS_BY_TASK, reported_metrics

__all__ = ["check_experiment"]


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

    valid_metrics = METRICS_BY_TASK[info.task]
    for name in experiment.train.metrics or []:
        if name not in valid_metrics:
            raise SpecError("train.metrics", f"'{name}' is not available for a {info.task} "
                            f"task", name, fix=f"{suggest(name, valid_metrics)}choose from "
                            f"{', '.join(valid_metrics)}")
    reported = reported_metrics(experiment, info.task)
    monitored = [("objective.metric", experiment.objective.metric)]
    if experiment.train.early_stopping:
        monitored.append(("train.early_stopping.monitor", experiment.train.early_stopping.monitor))
    if experiment.train.reduce_lr_on_plateau:
        monitored.append(("train.reduce_lr_on_plateau.monitor",
                          experiment.train.reduce_lr_on_plateau.monitor))
    for field, metric in monitored:
        if metric not in reported:
            raise SpecError(field, "the trainable never reports this metric", metric,
                            fix=f"{suggest(metric, reported)}reported each epoch: "
                            f"{', '.join(reported)} (add more with train.metrics)")


def _check_cnn_depth(experiment: Experiment, info: DataInfo) -> None:
    space = experiment.search_space
    params = experiment.model.params
    poolings = entry_values(space["pooling"]) if "pooling" in space else [params.get("pooling", "max")]
    if all(p == "none" for p in poolings):
        return  # no trial pools, so any depth keeps the image size
    blocks = max(entry_values(space["conv_blocks"])) if "conv_blocks" in space else params.get(
        "conv_blocks", 2)
    size = min(info.input_shape[:2])
    if 2 ** int(blocks) > size:
        field = "search_space.conv_blocks" if "conv_blocks" in space else "model.params.conv_blocks"
        raise SpecError(field, f"{blocks} pooled conv blocks shrink the {info.input_shape[0]}x"
                        f"{info.input_shape[1]} images of '{info.name}' below one pixel", blocks,
                        fix=f"use at most {size.bit_length() - 1} blocks, or pooling: none")
