"""HyperModel.fit written the ways KerasTuner's guides write it runs unchanged: discovery finds
hyperparameters declared in fit, custom training loops report however they hand results back,
the user's callbacks run inside trials, and errors in user code name the user's own line."""

from __future__ import annotations

import json

import keras
import pandas as pd
import pytest

from tests import hypermodels
from tunefleet import report, run
from tunefleet.data import load_dataset
from tunefleet.search_spaces.hypermodel_space import discover_space
from tunefleet.spec import Experiment, SpecError
from tunefleet.trainables.fit_contract import convert_result
from tunefleet.trainables.hypermodel import (hypermodel_reference, probe_hypermodel,
                                             resolve_hypermodel)


def _spec(tmp_path, name, ref, **sections):
    spec = {"name": name, "data": {"dataset": "digits"}, "model": {"hypermodel": ref},
            "train": {"epochs": 2},
            "search": {"algorithm": "grid", "num_samples": 1, "seed": 0},
            "scheduler": {"name": "fifo"}, "objective": {"metric": "val_accuracy"},
            "resources": {"cpu": 1}, "output": {"storage": str(tmp_path / "results")}}
    spec.update(sections)
    return spec


def _rows(result, trial_id):
    text = (result.path / f"trial_{trial_id}" / "result.json").read_text()
    return pd.DataFrame([json.loads(line) for line in text.splitlines() if line.strip()])


@pytest.fixture(scope="module")
def digits():
    return load_dataset(Experiment.from_dict({"name": "d", "data": {"dataset": "digits"}}).data)


@pytest.mark.parametrize("ref, in_fit, in_build, without_data", [
    # fit(self, hp, model, x, y, **kwargs): raised TypeError in discovery before
    ("tests.hypermodels:FitXY", {"normalize", "shuffle"}, set(), set()),
    # validation_data=None, callbacks=None named: raised TypeError in discovery before
    ("tests.hypermodels:fit_instance", {"batch_size"}, set(), set()),
    # fit(self, hp, model, *args, **kwargs): found before too, also without data
    ("tests.hypermodels:BatchSizeHyperModel", {"batch_size"}, {"units"}, {"units", "batch_size"}),
    # a custom loop over the data's first rows, with an uncompiled model
    ("tests.hypermodels:CustomLoop", {"contract"}, set(), set()),
])
def test_fit_signatures_discover_hyperparameters_declared_only_in_fit(digits, ref, in_fit,
                                                                      in_build, without_data):
    hm = resolve_hypermodel(ref)
    space = discover_space(lambda values: probe_hypermodel(hm, values, digits.training))
    assert set(space.names) == in_fit | in_build
    # Without data (a Tuner's search_space_summary before search), fit is called only when
    # it can be called without x and y, and a fit that needs them is no error.
    assert set(discover_space(lambda values: probe_hypermodel(hm, values)).names) == without_data


def test_instance_reference_round_trips():
    ref = hypermodel_reference(hypermodels.fit_instance)
    assert ref == "tests.hypermodels:fit_instance"  # not the class, which needs units=
    again = resolve_hypermodel(ref)
    assert again is hypermodels.fit_instance and again.units == 12
    assert hypermodel_reference(hypermodels.FitXY()) == "tests.hypermodels:FitXY"


def test_fit_results_convert_as_keras_tuner_converts_them():
    history = keras.callbacks.History()
    history.history = {"loss": [2.0, 1.0], "val_loss": [2.5, 1.5]}
    assert convert_result(history, "val_loss") == [{"loss": 2.0, "val_loss": 2.5},
                                                   {"loss": 1.0, "val_loss": 1.5}]
    assert convert_result(0.25, "my_metric") == [{"my_metric": 0.25}]
    assert convert_result({"my_metric": 1, "note": "x"}, "m") == [{"my_metric": 1.0}]
    assert convert_result([{"a": 1.0}, {"a": 3.0}], "a") == [{"a": 2.0}]
    assert convert_result(None, "a") == []


def test_instance_with_user_early_stopping_and_two_executions(ray_local, tmp_path):
    """``model.hypermodel: tests.hypermodels:fit_instance`` (an instance with a constructor
    argument, fit with named validation_data/callbacks and batch_size declared in fit), the
    user's EarlyStopping passed as tuner.search passes it, two executions per trial."""
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=10.0, patience=1)
    spec = _spec(tmp_path, "instance", "tests.hypermodels:fit_instance", train={"epochs": 4},
                 search={"algorithm": "grid", "num_samples": 1, "seed": 0,
                         "executions_per_trial": 2})
    result = run(spec, fit_kwargs={"callbacks": [stop], "verbose": 0})
    trials = result.trials
    assert sorted(trials["config/batch_size"]) == [16, 64]  # each trial's own value
    assert set(trials["status"]) == {"early_stopped"}
    for trial_id in trials["trial_id"]:
        rows = _rows(result, trial_id)
        assert rows["epoch"].tolist() == [1, 2]  # 4 asked; the user's EarlyStopping ended it
        assert rows["stop_reason"].iloc[-1] == "early_stopping"
        for metric in ("val_loss", "val_accuracy"):  # both executions, and their mean
            both = rows[[f"execution_{k}/{metric}" for k in (0, 1)]].to_numpy()
            assert (abs(rows[metric].to_numpy() - both.mean(axis=1)) < 1e-9).all()
        assert rows["executions_trained"].tolist() == [2, 2]
    stored = Experiment.from_yaml(result.path / "spec.yaml")
    assert stored.model.hypermodel == "tests.hypermodels:fit_instance"
    built = report(result.path)  # rebuilds the best model from the instance, not the class
    assert isinstance(built.test.metrics["accuracy"], float)
    assert 0.0 <= built.test.metrics["accuracy"] <= 1.0


def test_custom_loops_report_a_float_a_dict_or_callbacks_only(ray_local, tmp_path):
    """KerasTuner's custom-loop guide: an uncompiled model, kt.Objective("my_metric", "min"),
    and each trial handing its result back another way (a grid over ``contract``, declared in
    fit)."""
    spec = _spec(tmp_path, "loops", "tests.hypermodels:CustomLoop",
                 objective={"metric": "my_metric", "mode": "min"})
    result = run(spec, fit_kwargs={})
    trials = result.trials.set_index("config/contract")
    assert sorted(trials.index) == ["callbacks", "dict", "float"]
    assert set(trials["status"]) == {"completed"}
    best = result.summary["best"]["trial_id"]
    assert trials.set_index("trial_id").loc[best, "status"] == "completed"
    for contract, trial_id in trials["trial_id"].items():
        rows = _rows(result, trial_id)
        assert rows["stop_reason"].iloc[-1] == "completed"
        assert rows["epoch"].iloc[-1] == 2
        assert (rows["my_metric"] > 0).all() and (rows["my_metric"] < 3).all()
        # A loop that calls on_epoch_end reports every epoch; a returned value, the end.
        assert rows["epoch"].tolist() == ([1, 2] if contract == "callbacks" else [2])
    assert result.best_metrics["my_metric"] == trials["best_my_metric"].min()


@pytest.mark.parametrize("ref, pattern", [
    ("broken_build", (r"hypermodel tests\.hypermodels:broken_build: build_model\(hp\) raised "
                     r"ValueError: no model for this configuration at \S+hypermodels\.py:\d+: "
                     r"raise ValueError\(\"no model for this configuration\"\) "
                     r"\(hyperparameters: \{'units': 8\}\)")),
    ("FitRaises", (r"hypermodel tests\.hypermodels:FitRaises: fit\(\) raised ValueError: cannot "
                  r"reshape .* at \S+hypermodels\.py:\d+: return model\.fit\(x\.reshape\(-1, 7 "
                  r"\* scale\).* \(hyperparameters: \{'scale': 2\}\)")),
    ("FitWithoutHp", (r"hypermodel tests\.hypermodels:FitWithoutHp: fit\(\) cannot be called as "
                     r"KerasTuner calls it, fit\(hp, model, x, y, .*\(its signature: \(model, "
                     r"x, y\)\); write it as KerasTuner calls it: def fit\(self, hp, model, x, y")),
    ("FitReturnsNothing", (r"FitReturnsNothing's fit returned NoneType and never called "
                          r"on_epoch_end of the callbacks it was given")),
])
def test_errors_in_user_code_name_the_hypermodel_values_and_line(tmp_path, ref, pattern):
    with pytest.raises(SpecError, match=pattern) as caught:
        run(_spec(tmp_path, "bad", f"tests.hypermodels:{ref}"))
    assert caught.value.field == "model.hypermodel"
    error = caught.value  # no chained traceback through tunefleet's internals
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert "tunefleet/" not in str(caught.value)  # the user's frame, never tunefleet's
