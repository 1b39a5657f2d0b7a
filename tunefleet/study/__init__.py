"""The study lifecycle: prepare and check a spec, run or resume it on Ray Tune, apply the failure
policy, summarise what happened, preview the plan, and run comparisons of several studies.

Imports point down: cli → study → reports → trainables → cluster → {data, search_spaces,
schedulers, storage} → spec.
"""

from .hypermodel import best_hyperparameters, tune_hypermodel
from .runner import Prepared, as_experiment, prepare, resume, run
from .summary import StudyResult, summarize

__all__ = ["run", "resume", "prepare", "as_experiment", "Prepared", "StudyResult", "summarize",
           "tune_hypermodel", "best_hyperparameters"]
