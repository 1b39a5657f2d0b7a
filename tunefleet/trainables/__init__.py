"""The Keras function trainable, its model builders, and what it reports.

Names load on first use (PEP 562): importing ``tunefleet.trainables.builders`` or
``.compile`` does not load the trainable and what it reports through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:
    from .builders import BUILDERS, builder_parameters, resolve_builder
    from .keras_trainable import derive_seed, train_trial
    from .settings import METRICS_BY_TASK, TrialSettings, reported_metrics, resolve_settings
    from .status import STOP_REASONS

__all__ = ["BUILDERS", "builder_parameters", "resolve_builder", "STOP_REASONS", "derive_seed",
           "train_trial", "METRICS_BY_TASK", "TrialSettings", "reported_metrics",
           "resolve_settings"]

# public name -> the module that defines it
_LAZY = {"BUILDERS": ".builders", "builder_parameters": ".builders",
         "resolve_builder": ".builders", "derive_seed": ".keras_trainable",
         "train_trial": ".keras_trainable", "STOP_REASONS": ".status",
         "METRICS_BY_TASK": ".settings", "TrialSettings": ".settings",
         "reported_metrics": ".settings", "resolve_settings": ".settings"}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__, globals())
