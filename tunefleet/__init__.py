"""tunefleet: hyperparameter tuning of Keras models on Ray Tune, from a laptop to a cluster.

The public names load on first use (PEP 562), so ``import tunefleet.trainables.builders`` or
``tunefleet.spec`` does not import the study machinery (pandas, Ray's entry points): a
trial's model code runs where only Keras and its backend are installed
(scripts/gpu_check.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

from ._lazy import lazy_names

if TYPE_CHECKING:
    from .spec import Experiment, SpecError
    from .study import StudyResult, best_hyperparameters, resume, run, tune_hypermodel

__all__ = ["Experiment", "SpecError", "StudyResult", "run", "report", "compare",
           "tune_hypermodel", "best_hyperparameters", "resume"]

# public name -> the subpackage that defines it
_LAZY = {"Experiment": ".spec", "SpecError": ".spec", "StudyResult": ".study", "run": ".study",
         "resume": ".study", "tune_hypermodel": ".study", "best_hyperparameters": ".study"}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__, globals())


def report(study_dir: Union[str, Path], retrain: bool = False, hypermodel=None):
    """Write the report of a finished study (``study_dir/report/``) and return it.

    ``study_dir`` is a study directory or URI (``s3://bucket/studies/NAME``: read through a
    local mirror, and the report uploaded to ``URI/report/``).

    ``hypermodel``: the study's KerasTuner hypermodel, when its module cannot be imported here.
    """
    from .reports import build_study_report

    return build_study_report(study_dir, retrain=retrain, hypermodel=hypermodel)


def compare(study_dirs: list[Union[str, Path]], out_dir: Union[str, Path],
            target: Optional[float] = None):
    """Compare finished studies (directories or URIs) side by side into ``out_dir``; returns
    the comparison."""
    from .reports import build_comparison_report

    return build_comparison_report(study_dirs, out_dir, target=target)
__version__ = "0.1.0"
