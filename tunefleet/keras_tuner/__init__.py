"""KerasTuner's API on Ray Tune: ``import tunefleet.keras_tuner as kt`` and the tuners of a
KerasTuner script (RandomSearch, BayesianOptimization, Hyperband, GridSearch) run its
hypermodels unchanged, with trials in parallel and ASHA cutting the poor ones early.

The names a KerasTuner script uses besides the tuners (``HyperModel``, ``HyperParameters``,
``Objective``, ``errors``, ``applications``) are KerasTuner's own, re-exported."""

from __future__ import annotations

from typing import Any

from keras_tuner import HyperModel, HyperParameters, Objective, applications, errors

from .tuners import BayesianOptimization, GridSearch, Hyperband, RandomSearch, Tuner

__all__ = ["RandomSearch", "BayesianOptimization", "Hyperband", "GridSearch", "Tuner",
           "HyperModel", "HyperParameters", "Objective", "errors", "applications"]

_NOT_HERE = {
    "SklearnTuner": "tunefleet tunes Keras models; use keras_tuner.SklearnTuner for "
                    "scikit-learn models",
    "Oracle": "tunefleet's searches are Ray Tune searchers; pick one by tuner class "
              "(RandomSearch, BayesianOptimization, Hyperband, GridSearch)",
    "oracles": "tunefleet's searches are Ray Tune searchers; pick one by tuner class",
}


def __getattr__(name: str) -> Any:
    if name in _NOT_HERE:
        raise AttributeError(f"tunefleet.keras_tuner has no {name}: {_NOT_HERE[name]}")
    raise AttributeError(f"module 'tunefleet.keras_tuner' has no attribute {name!r}")
