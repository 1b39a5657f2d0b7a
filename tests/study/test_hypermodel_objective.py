"""``tune_hypermodel(objective=...)`` takes the objective as KerasTuner defines it: a metric name,
a ``keras_tuner.Objective``, or a list of one; its direction comes from the Objective, from the
metric's Keras name, or from the user when neither says (no Ray here: all fail or resolve before
any study starts)."""

from __future__ import annotations

import keras_tuner as kt
import numpy as np
import pytest

from tests import hypermodels
from tunefleet import tune_hypermodel
from tunefleet.spec import Experiment, SpecError
from tunefleet.study.hypermodel import _objective

X = np.zeros((40, 8, 8, 1), dtype="float32")
Y = np.arange(40) % 10


def _direction(objective):
    spec = {"name": "objective", "data": {"dataset": "digits"},
            "model": {"hypermodel": "tests.hypermodels:metric_object_mlp"},
            "objective": _objective(objective)}
    section = Experiment.from_dict(spec).objective
    return section.metric, section.direction


@pytest.mark.parametrize("objective, metric, direction", [
    ("val_loss", "val_loss", "min"),
    ("val_accuracy", "val_accuracy", "max"),
    # The name Keras reports for a compiled SparseCategoricalAccuracy() metric object.
    ("val_sparse_categorical_accuracy", "val_sparse_categorical_accuracy", "max"),
    ("val_auc_1", "val_auc_1", "max"),
    (kt.Objective("val_f1", direction="max"), "val_f1", "max"),
    (kt.Objective("val_my_score", direction="min"), "val_my_score", "min"),
    ([kt.Objective("val_my_score", direction="max")], "val_my_score", "max"),
    (["val_loss"], "val_loss", "min"),
])
def test_objective_forms_keras_tuner_accepts(objective, metric, direction):
    assert _direction(objective) == (metric, direction)


@pytest.mark.parametrize("objective, match", [
    # No direction from the name or from an Objective: ask for one, the KerasTuner way.
    ("val_my_score", (r"objective: cannot tell whether this metric is better higher or lower.*"
                      r"got 'val_my_score'.*keras_tuner\.Objective\('val_my_score', "
                      r"direction='max'\)")),
    ([kt.Objective("val_loss", "min"), kt.Objective("val_accuracy", "max")],
     (r"objective: tunefleet optimises one objective, not a list of 2 .*multi-objective.*"
      r"\['val_loss', 'val_accuracy'\].*objective='val_loss'")),
    ([], r"objective: tunefleet optimises one objective, not a list of 0"),
    (kt.Objective("val_f1", direction="up"),
     (r"keras_tuner\.Objective\('val_f1'\) needs direction 'min' or 'max', got 'up'\. "
      r"Pass keras_tuner\.Objective\('val_f1', direction='max'\)")),
    (42, r"objective: must be a metric name or a keras_tuner\.Objective, got 42"),
])
def test_objective_problems_are_spec_errors_before_any_study(tmp_path, objective, match):
    with pytest.raises(SpecError, match=match):
        tune_hypermodel(hypermodels.metric_object_mlp, X, Y, objective=objective,
                        directory=tmp_path, max_trials=1, epochs=1, report=False)
    assert not any(tmp_path.iterdir())  # nothing was started


def test_a_mode_setting_answers_for_an_unknown_name():
    from tunefleet.study.hypermodel import _check_direction

    _check_direction({"metric": "val_my_score", "mode": "max"})  # given: no error
    with pytest.raises(SpecError, match=r"keras_tuner\.Objective\('val_my_score'"):
        _check_direction({"metric": "val_my_score"})
