"""The sections of an experiment spec other than the search space, one model each."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .base import StrictModel, suggest
from .directions import metric_direction
from .locations import check_location
from .methods import (
    TRIAL_SEED_KEY, AshaSpec, FifoSpec, GridSearchSpec, HyperBandSpec, HyperOptSearchSpec,
    MedianSpec, RandomSearchSpec, SchedulerSpec, SearchSpec,
)

__all__ = [
    "DataSpec", "ModelSpec", "EarlyStoppingSpec", "ReduceLROnPlateauSpec", "LRScheduleSpec",
    "TrainSpec", "GridSearchSpec", "RandomSearchSpec", "HyperOptSearchSpec", "SearchSpec",
    "FifoSpec", "AshaSpec", "HyperBandSpec", "MedianSpec", "SchedulerSpec", "ObjectiveSpec",
    "ResourcesSpec", "ClusterSpec", "OutputSpec", "FailureSpec", "DistributeSpec", "DATASETS", "BUILTIN_BUILDERS",
    "BUNDLED_DATASETS", "IMAGE_DATASET_NAMES", "FILE_FORMATS", "KERAS_BACKENDS",
    "metric_direction", "TRIAL_SEED_KEY", "TUNABLE_TRAIN_FIELDS",
]

# Built-in datasets (scikit-learn's, always offline; Keras' image sets, found offline first),
# and the file formats a spec can point at with data.path.
BUNDLED_DATASETS = ("digits", "breast_cancer", "diabetes")
IMAGE_DATASET_NAMES = ("mnist", "fashion_mnist", "cifar10", "cifar100")
FILE_FORMATS = ("csv", "npz", "idx")
# "arrays" is set by the Python API (``tunefleet.run(spec, data=...)``), not written in a spec.
# A folder of class sub-folders of image files, streamed by each trial (data/image_folder.py).
IMAGE_FOLDER = "image_folder"
DATASETS = (*BUNDLED_DATASETS, *IMAGE_DATASET_NAMES, *FILE_FORMATS, IMAGE_FOLDER, "arrays")
BUILTIN_BUILDERS = ("cnn", "mlp")
# Keras backends a trial can train on (train.backend); the first is the default.
KERAS_BACKENDS = ("tensorflow", "jax")
_BUILDER_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class DataSpec(StrictModel):
    """Which dataset, and how it is split. The split has its own seed so that studies which
    compare searchers under different search seeds still see the same data.

    ``test_fraction`` applies to datasets without an official test split; MNIST, Fashion-MNIST,
    CIFAR and files that carry a test split keep theirs.
    """

    dataset: Literal["digits", "breast_cancer", "diabetes", "mnist", "fashion_mnist",
                     "cifar10", "cifar100", "csv", "npz", "idx", "image_folder",
                     "arrays"] = "digits"
    path: Optional[str] = None
    target: str = "target"
    task: Optional[Literal["multiclass", "binary", "regression"]] = None
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    max_train_samples: Optional[int] = Field(None, ge=10)
    download: bool = True
    seed: int = 0
    split: Literal["random", "last"] = "random"  # last: Keras' validation_split, rows in order
    # image_folder only: every image is decoded, resized to image_size ([height, width]) with
    # `channels` channels, in each trial; `cache` keeps the decoded images of a trial in its
    # memory, on its node's disk, or nowhere (decoded again each epoch).
    image_size: Optional[tuple[Annotated[int, Field(ge=1, le=8192)],
                               Annotated[int, Field(ge=1, le=8192)]]] = None
    channels: Literal[1, 3] = 3
    cache: Literal["memory", "disk", "none"] = "none"

    @model_validator(mode="after")
    def _image_folder(self) -> "DataSpec":
        # Compared with the defaults, not the fields set: a saved spec.yaml holds every field.
        folder_only = [name for name, default in (("image_size", None), ("channels", 3),
                                                  ("cache", "none"))
                       if getattr(self, name) != default]
        if self.dataset != IMAGE_FOLDER:
            if folder_only:
                raise ValueError(f"data.{folder_only[0]} is only for dataset: image_folder, got "
                                 f"dataset: {self.dataset}; remove it")
            return self
        if not self.path:
            raise ValueError("dataset: image_folder reads a folder of class sub-folders; set "
                             "data.path to it")
        if self.image_size is None:
            raise ValueError("dataset: image_folder needs data.image_size: [height, width], the "
                             "size every image is resized to (the model's input size)")
        if self.split == "last":
            raise ValueError("data.split: last keeps the files' order, which is class by class "
                             "in an image folder (the last files are all of one class); use "
                             "split: random, or train/validation/test sub-folders")
        return self

    @model_validator(mode="after")
    def _fractions(self) -> "DataSpec":
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                "validation_fraction + test_fraction must leave at least 10% for training, got "
                f"{self.validation_fraction} + {self.test_fraction}; lower one of them"
            )
        if self.dataset in FILE_FORMATS and not self.path:
            raise ValueError(f"dataset: {self.dataset} reads a file; set data.path to it")
        if self.path and self.dataset in BUNDLED_DATASETS:
            raise ValueError(f"dataset: {self.dataset} is bundled with scikit-learn and takes no "
                             f"data.path (got {self.path!r}); use dataset: csv, npz or idx for "
                             "your own files")
        if self.task is not None and self.dataset not in (*FILE_FORMATS, "arrays"):
            raise ValueError(f"dataset: {self.dataset} has a known task; data.task is only for "
                             "csv, npz, idx and arrays")
        return self


class ModelSpec(StrictModel):
    """A built-in builder by name, or a user's ``package.module:function``; ``params`` are
    fixed keyword arguments of the builder (tunable ones go in ``search_space``).

    Or ``hypermodel: package.module:build_model`` (a KerasTuner ``build_model(hp)`` function or
    ``HyperModel`` class): it declares its own search space and compiles its own model.
    """

    builder: str = "cnn"
    params: dict[str, Any] = Field(default_factory=dict)
    hypermodel: Optional[str] = None

    @field_validator("builder")
    @classmethod
    def _known_builder(cls, value: str) -> str:
        if value in BUILTIN_BUILDERS or _BUILDER_PATH.match(value):
            return value
        from .base import suggest

        raise ValueError(
            f"unknown model builder '{value}'; {suggest(value, BUILTIN_BUILDERS)}"
            f"use one of {', '.join(BUILTIN_BUILDERS)} or your own as 'package.module:function'"
        )

    @field_validator("hypermodel")
    @classmethod
    def _hypermodel_path(cls, value: Optional[str]) -> Optional[str]:
        if value is None or _BUILDER_PATH.match(value) or value.startswith("<python object"):
            return value
        raise ValueError(f"hypermodel must be 'package.module:build_model' (a function or a "
                         f"keras_tuner.HyperModel class), got {value!r}")

    @model_validator(mode="after")
    def _one_model_source(self) -> "ModelSpec":
        if self.hypermodel and ("builder" in self.model_fields_set or self.params):
            raise ValueError("set either hypermodel or builder/params, not both: a hypermodel "
                             "builds its own model from its hyperparameters")
        return self


class EarlyStoppingSpec(StrictModel):
    """Stop a trial whose monitored metric has not improved for ``patience`` epochs."""

    monitor: str = "val_loss"
    patience: int = Field(3, ge=1)
    min_delta: float = Field(0.0, ge=0)
    mode: Literal["auto", "min", "max"] = "auto"


class ReduceLROnPlateauSpec(StrictModel):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement."""

    monitor: str = "val_loss"
    factor: float = Field(0.5, gt=0, lt=1)
    patience: int = Field(2, ge=1)
    min_lr: float = Field(1e-6, ge=0)
    mode: Literal["auto", "min", "max"] = "auto"


class LRScheduleSpec(StrictModel):
    """Learning rate by epoch: ``step`` multiplies by ``drop`` every ``every`` epochs,
    ``exponential`` by ``drop`` each epoch, ``cosine`` decays to ``min_factor``×lr."""

    type: Literal["step", "exponential", "cosine"] = "step"
    drop: float = Field(0.5, gt=0, le=1)
    every: int = Field(5, ge=1)
    min_factor: float = Field(0.0, ge=0, lt=1)


class DistributeSpec(StrictModel):
    """One trial spread over several devices with ``tf.distribute.MirroredStrategy``: each
    replica trains ``batch_size`` examples per step, so the global batch is batch_size ×
    replicas. ``cpu_devices`` splits the CPU into that many logical devices instead of using
    GPUs (to try a distributed setup on a laptop or in CI)."""

    strategy: Literal["mirrored"] = "mirrored"
    cpu_devices: Optional[int] = Field(None, ge=2, le=16)


class TrainSpec(StrictModel):
    """Fixed training settings; any of the scalar ones may be tuned from ``search_space``."""

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    optimizer: Literal["adam", "sgd", "rmsprop", "adamw"] = "adam"
    learning_rate: float = Field(1e-3, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(0.004, ge=0)
    metrics: Optional[list[str]] = None
    early_stopping: Optional[EarlyStoppingSpec] = None
    reduce_lr_on_plateau: Optional[ReduceLROnPlateauSpec] = None
    lr_schedule: Optional[LRScheduleSpec] = None
    shuffle: bool = True
    # Training steps per call into the compiled graph: fewer Python round trips, the same
    # math. 8 halves epoch time for small models on CPU; callbacks here are epoch-level.
    steps_per_execution: int = Field(8, ge=1)
    # Keras' mixed precision: float16/bfloat16 compute, float32 variables; mixed_float16 gets
    # Keras' loss scaling, and tunefleet's builders keep their output layer in float32.
    mixed_precision: Optional[Literal["mixed_float16", "mixed_bfloat16"]] = None
    # XLA: "auto" is Keras' choice (on when a GPU is present and every layer supports it).
    jit_compile: Union[bool, Literal["auto"]] = "auto"
    # Wall-clock limit of one attempt at a trial; a trial past it is ended and recorded as
    # failed (Ray has no such limit, and a hung trial reports nothing a scheduler could act on).
    trial_timeout_s: Optional[float] = Field(None, gt=0)
    distribute: Optional[DistributeSpec] = None
    # The Keras backend the trials train on (the driver's checks and report use TensorFlow;
    # models and checkpoints are the same on both). Set in each trial: cluster/devices.py.
    backend: Literal["tensorflow", "jax"] = "tensorflow"

    @field_validator("backend", mode="before")
    @classmethod
    def _known_backend(cls, value: Any) -> Any:
        valid = KERAS_BACKENDS
        if value in valid:
            return value
        hint = " (Keras' torch backend is not supported)" if value in ("torch", "pytorch") else ""
        raise ValueError(f"unknown value {value!r}{hint}; {suggest(str(value), list(valid))}"
                         f"valid: {', '.join(valid)}")

    @field_validator("jit_compile", mode="before")
    @classmethod
    def _jit_choice(cls, value: Any) -> Any:
        if isinstance(value, bool) or value == "auto":
            return value
        raise ValueError(f"jit_compile is true, false or 'auto', got {value!r}")

    @model_validator(mode="after")
    def _one_lr_controller(self) -> "TrainSpec":
        if self.reduce_lr_on_plateau is not None and self.lr_schedule is not None:
            raise ValueError(
                "reduce_lr_on_plateau and lr_schedule both set the learning rate; keep one of them"
            )
        return self


TUNABLE_TRAIN_FIELDS = (
    "epochs", "batch_size", "optimizer", "learning_rate", "momentum", "nesterov", "weight_decay",
)


class ObjectiveSpec(StrictModel):
    """The metric (as the trainable reports it, e.g. ``val_accuracy``) and its direction;
    ``mode`` defaults to the metric's own, inferred from its Keras name (max for accuracy,
    AUC, F1, R², min for losses and errors); a name with no known direction needs ``mode``."""

    metric: str = "val_loss"
    mode: Optional[Literal["min", "max"]] = None

    @field_validator("mode")
    @classmethod
    def _direction(cls, mode: Optional[str], info: ValidationInfo) -> Optional[str]:
        metric = info.data.get("metric")
        if metric is None:
            return mode  # the metric itself is invalid, and reported as such
        natural = metric_direction(metric)
        if mode is None and natural is None:
            raise ValueError(
                f"cannot tell whether {metric!r} is better higher or lower (it is not a metric "
                "or loss Keras names); set objective.mode: max or objective.mode: min")
        if mode is not None and natural is not None and mode != natural:
            raise ValueError(
                f"{metric} is better when {'higher' if natural == 'max' else 'lower'}, "
                f"got mode={mode!r}; use mode: {natural} (or leave mode out)")
        return mode or natural

    @property
    def direction(self) -> Literal["min", "max"]:
        """``mode`` as validation resolved it (given, or inferred from the metric's name)."""
        if self.mode is None:  # only a spec built without validation (model_construct)
            raise ValueError(f"objective.mode is unset for metric {self.metric!r}; build the "
                             "spec with validation (Experiment.from_dict or the constructor)")
        return self.mode


class ResourcesSpec(StrictModel):
    """Per-trial share of the cluster. ``reuse_processes``: ``auto`` keeps warm trial
    processes on CPU (TF imported once) and a fresh process per trial when GPUs are used."""

    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)
    # With a GPU fraction: cap each trial's TensorFlow at its share of the GPU's memory
    # (``limit``) or let it grow on demand (``growth``; co-located trials may then collide).
    gpu_memory: Literal["limit", "growth"] = "limit"
    reuse_processes: Union[Literal["auto"], bool] = "auto"

    @field_validator("gpu")
    @classmethod
    def _whole_above_one(cls, value: float) -> float:
        if value > 1 and not float(value).is_integer():
            raise ValueError(
                f"a trial can share one GPU (0 < gpu <= 1) or hold whole GPUs, got gpu={value}; "
                f"use {math.floor(value)} or {math.ceil(value)}"
            )
        return value

    @property
    def reuse(self) -> bool:
        """Whether trial processes are reused: the resolved value of ``reuse_processes``."""
        return self.gpu == 0 if self.reuse_processes == "auto" else bool(self.reuse_processes)


class ClusterSpec(StrictModel):
    """``local`` starts an embedded Ray; ``auto`` joins RAY_ADDRESS or a running ``ray start``
    cluster; anything else is a Ray address (``ray://host:10001`` or ``host:6379``)."""

    address: str = "local"
    num_cpus: Optional[int] = Field(None, ge=1)
    num_gpus: Optional[int] = Field(None, ge=0)
    # The autoscaling cluster's YAML (what `ray up` was given), read for its node types where
    # the autoscaler's own cannot be found (autoscaler v2, KubeRay, a driver off the head).
    autoscaler_config: Optional[str] = None

    @model_validator(mode="after")
    def _local_only_sizes(self) -> "ClusterSpec":
        if self.address != "local" and (self.num_cpus is not None or self.num_gpus is not None):
            raise ValueError(
                f"num_cpus/num_gpus size an embedded local Ray only, got address='{self.address}'; "
                "remove them (a running cluster has its own size)"
            )
        if self.address == "local" and self.autoscaler_config is not None:
            raise ValueError(
                f"autoscaler_config names an autoscaling cluster's YAML, got "
                f"'{self.autoscaler_config}' with address='local' (an embedded Ray cannot "
                "grow); remove it, or set address to the cluster's")
        return self


class FailureSpec(StrictModel):
    """What a failing trial does to the study.

    An exception in a trial (or a lost trial process or node) is an *error*: the trial is
    retried from its last checkpoint up to ``max_retries`` times. A NaN loss, running out of
    memory, or passing ``train.trial_timeout_s`` is a *failure*: recorded with its reason and
    not retried. ``max_consecutive`` stops the study after that many trials in a row failed or
    errored (a broken spec or cluster), keeping every result so far.
    """

    max_retries: int = Field(1, ge=0)
    max_consecutive: Optional[int] = Field(None, ge=1)


class OutputSpec(StrictModel):
    """Where results go: ``storage/<name>/``, ``storage`` being a path (local, or on a
    filesystem every node of a cluster mounts) or a URI (``s3://bucket/path``,
    ``gs://bucket/path``).

    Checkpoints: ``checkpoint_every: auto`` checkpoints what the scheduler needs: every epoch
    under HyperBand (it pauses trials and resumes them from their checkpoint), otherwise only
    at an epoch that improves the trial's objective and at its last epoch; an integer N also
    checkpoints every N epochs. A trial keeps the ``num_to_keep`` best of its checkpoints and
    always its latest, for resuming (study/checkpoint_keeper.py). ``keep_checkpoints:
    best_trials`` deletes the checkpoints of finished trials that can no longer be among the
    study's ``BEST_TRIALS_KEPT`` best."""

    renamed: ClassVar[dict[str, str]] = {"dir": "storage"}
    BEST_TRIALS_KEPT: ClassVar[int] = 3

    storage: str = "results"
    checkpoint_every: Union[Literal["auto"], int] = "auto"
    keep_checkpoints: Literal["all", "best_trials"] = "all"

    @field_validator("checkpoint_every", mode="before")
    @classmethod
    def _auto_or_epochs(cls, value: Any) -> Any:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)
                               and value >= 1):
            return value
        raise ValueError(f"checkpoint_every is auto or a whole number of epochs >= 1, got "
                         f"{value!r}; use auto (what the scheduler needs) or e.g. 1")

    @field_validator("storage")
    @classmethod
    def _path_or_uri(cls, value: str) -> str:
        return check_location(value)
    num_to_keep: int = Field(1, ge=1)
    # Experiment trackers the study also logs to (tunefleet/study/trackers.py), by name.
    known_trackers: ClassVar[tuple[str, ...]] = ("tensorboard", "mlflow", "wandb")
    trackers: list[str] = Field(default_factory=list)

    @field_validator("trackers", mode="before")
    @classmethod
    def _known_trackers(cls, value: Any) -> Any:
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, (list, tuple)):
            raise ValueError(f"trackers is a list of names, got {value!r}; write e.g. "
                             f"trackers: [{', '.join(cls.known_trackers)}]")
        valid = cls.known_trackers
        for name in names:
            if name not in valid:
                raise ValueError(f"unknown tracker {name!r}; {suggest(str(name), list(valid))}"
                                 f"valid: {', '.join(valid)}")
            if list(names).count(name) > 1:
                raise ValueError(f"{name!r} is listed twice; list each tracker once")
        return list(names)
