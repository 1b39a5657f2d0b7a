"""Reports built only from a results directory: tables, the best model on test data,
hyperparameter importance, figures, and comparisons of studies."""

from .compare import Comparison, build_comparison_report, collect_comparison
from .evaluate import TestReport, evaluate_best
from .importance import Importance, hyperparameter_importance, study_importance
from .load import StudyData, load_study
from .study import StudyReport, build_study_report

__all__ = ["Comparison", "build_comparison_report", "collect_comparison", "TestReport",
           "evaluate_best", "Importance", "hyperparameter_importance", "study_importance",
           "StudyData", "load_study", "StudyReport", "build_study_report"]
