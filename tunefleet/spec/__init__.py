"""The experiment spec: validated once, before Ray starts, then read by every component."""

from .errors import SpecError
from .experiment import Experiment
from .sections import BUILTIN_BUILDERS, DATASETS, TRIAL_SEED_KEY, TUNABLE_TRAIN_FIELDS
from .yaml_io import apply_overrides, dump_yaml, load_yaml

__all__ = [
    "Experiment", "SpecError", "load_yaml", "dump_yaml", "apply_overrides",
    "DATASETS", "BUILTIN_BUILDERS", "TUNABLE_TRAIN_FIELDS", "TRIAL_SEED_KEY",
]
