"""The Keras function trainable, its model builders, and what it reports."""

from .builders import BUILDERS, builder_parameters, resolve_builder
from .keras_trainable import derive_seed, train_trial
from .status import STOP_REASONS
from .settings import METRICS_BY_TASK, TrialSettings, reported_metrics, resolve_settings

__all__ = ["BUILDERS", "builder_parameters", "resolve_builder", "STOP_REASONS", "derive_seed",
           "train_trial", "METRICS_BY_TASK", "TrialSettings", "reported_metrics",
           "resolve_settings"]
