"""tunefleet: hyperparameter tuning of Keras models on Ray Tune, from a laptop to a cluster."""

from .runner import run
from .spec import Experiment, SpecError
from .summary import StudyResult

__all__ = ["Experiment", "SpecError", "StudyResult", "run"]
__version__ = "0.1.0"
