"""HyperModel.fit written the ways KerasTuner's guides write it runs unchanged: discovery finds
hyperparameters declared in fit, custom training loops report however they hand results back,
the user's callbacks run inside trials, and errors in user code name the user's own line."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import keras_tuner as kt
import pandas as pd
import pytest

from tests import hypermodels
from tests.conftest import one_trial_at_a_time
from tunefleet import report, run
from tunefleet.data import load_dataset
from tunefleet.keras_tuner.declared import DeclaredHyperModel
from tunefleet.keras_tuner.results import ranked, trial_model
from tunefleet.reports.load import load_study
from tunefleet.search_spaces.hypermodel_space import discover_space
from tunefleet.spec import Experiment, SpecError
from tunefleet.trainables.fit_contract import convert_result
from tunefleet.study.runner import prepare
from tunefleet.trainables.hypermodel import (HypermodelError, hypermodel_reference,
                                             probe_hypermodel, resolve_hypermodel)


def _spec(tmp_path, name, ref, **sections):
    spec = {"name": name, "data": {"dataset": "digits"}, "model": {"hypermodel": ref},
            "train": {"epochs": 2},
            "search": {"algorithm": "grid", "num_samples": 1, "seed": 0},
            "scheduler": {"name": "fifo"}, "objective": {"metric": "val_accuracy"},
            "resources": {"cpu": 1}, "output": {"storage": str(tmp_path / "results")}}
    spec.update(sections)
    return one_trial_at_a_time(spec)


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


def test_instance_with_user_early_stopping_and_two_executions(ray_local, tmp_path, digits):
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
    # get_best_models' model: the execution whose checkpointed weights score best, as
    # KerasTuner keeps the best epoch across executions (before: always execution 0's).
    study = load_study(result.path)
    x_val, y_val = digits.training.x_val, digits.training.y_val
    for row in ranked(study, 2):
        model = trial_model(study, row, None)
        accuracy = model.evaluate(x_val, y_val, verbose=0, return_dict=True)["accuracy"]
        rows = _rows(result, row["trial_id"]).drop_duplicates("epoch", keep="last")
        rows = rows.set_index("epoch")
        epoch = json.loads((Path(row["checkpoint"]) / "execution_1" / "meta.json").read_text())[
            "epoch"]
        # Execution 0 ran first (one-call mode): its weights there are its final epoch's.
        recorded = [rows["execution_0/val_accuracy"].iloc[-1],
                    rows.loc[epoch, "execution_1/val_accuracy"]]
        assert abs(accuracy - max(recorded)) < 1e-6, (accuracy, recorded)
    stored = Experiment.from_yaml(result.path / "spec.yaml")
    assert stored.model.hypermodel == "tests.hypermodels:fit_instance"
    built = report(result.path)  # rebuilds the best model from the instance, not the class
    assert isinstance(built.test.metrics["accuracy"], float)
    assert 0.0 <= built.test.metrics["accuracy"] <= 1.0


@pytest.fixture(scope="module")
def one_call_cases(ray_local, tmp_path_factory):
    """One study (FIFO, two trials at a time) whose grid over ``contract`` (declared in build
    and fit) covers KerasTuner's one-call ``fit`` contract, in this order: ``too_large``
    (FailedTrialError), CustomLoop's six ways of handing a result back, ``bystander`` and
    ``fatal`` (FatalError, last: it stops the study while the bystander still waits).
    kt.Objective("my_metric", "min"), ``fit_kwargs={}`` as tuner.search passes them."""
    spec = _spec(tmp_path_factory.mktemp("one_call"), "one_call", "tests.hypermodels:OneCallCases",
                 objective={"metric": "my_metric", "mode": "min"}, failure={"max_retries": 1},
                 search={"algorithm": "grid", "num_samples": 1, "seed": 0, "max_concurrent": 2})
    return run(spec, fit_kwargs={})


def test_custom_loops_report_a_float_a_dict_or_callbacks_only(one_call_cases):
    """KerasTuner's custom-loop guide: an uncompiled model, kt.Objective("my_metric", "min"),
    and each trial handing its result back another way (the shared study's trials over
    CustomLoop's ``contract`` values, declared in fit)."""
    result = one_call_cases
    trials = result.trials.set_index("config/contract")
    assert sorted(trials.index) == sorted(hypermodels.OneCallCases.contracts)
    loops = list(hypermodels.CustomLoop.contracts)
    assert sorted(loops) == ["callbacks", "dict", "fit_dict", "fit_float", "float", "hard_coded"]
    assert set(trials.loc[loops, "status"]) == {"completed"}
    best = result.summary["best"]["trial_id"]
    assert trials.set_index("trial_id").loc[best, "status"] == "completed"
    epochs = {"callbacks": [1, 2], "hard_coded": [1, 3]}
    for contract, trial_id in trials.loc[loops, "trial_id"].items():
        rows = _rows(result, trial_id)
        assert rows["stop_reason"].iloc[-1] == "completed"
        assert (rows["my_metric"] > 0).all() and (rows["my_metric"] < 4).all()
        # A loop that calls on_epoch_end reports every epoch; a returned value, the end.
        assert rows["epoch"].tolist() == epochs.get(contract, [2])
    # model.fit(x, y, **kwargs) then `return float(...)` (KerasTuner's HyperRegressor) or a
    # dict: the epochs' logs lack the objective, so only the end is reported, the returned
    # value merged into the last epoch's logs (Ray ended the whole study here before).
    for contract in ("fit_float", "fit_dict"):
        last = _rows(result, trials.loc[contract, "trial_id"]).iloc[-1]
        assert isinstance(last["loss"], float) and isinstance(last["my_metric"], float)
    # A loop that logs its training loss (+1) as the objective for a hard-coded 3 epochs and
    # returns its best validation loss is scored by what it returned, as KerasTuner scores it
    # (before: by the epoch that reached train.epochs, the returned value dropped).
    rows = _rows(result, trials.loc["hard_coded", "trial_id"])
    assert rows["my_metric"].iloc[0] > 1.0
    assert rows["my_metric"].iloc[-1] == rows["best_val"].iloc[-1] < rows["my_metric"].iloc[0]
    assert trials.loc["hard_coded", "best_my_metric"] == rows["best_val"].iloc[-1]
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


def test_errors_inside_tunefleets_wrapper_name_the_users_hypermodel_and_line(digits):
    """KerasTuner's hyperparameters=/tune_new_entries wrap the hypermodel: the error still names
    the user's hypermodel and line (before: tunefleet/keras_tuner/declared.py's)."""
    wrapped = DeclaredHyperModel(resolve_hypermodel(hypermodels.broken_build),
                                 kt.HyperParameters(), tune_new_entries=False)
    with pytest.raises(HypermodelError, match=(
            r"hypermodel tests\.hypermodels:broken_build: build_model\(hp\) raised ValueError: "
            r"no model for this configuration at \S+tests/hypermodels\.py:\d+: raise "
            r"ValueError\(\"no model for this configuration\"\) \(hyperparameters: "
            r"\{'units': 8\}\)")) as caught:
        probe_hypermodel(wrapped, {}, digits.training)
    assert "tunefleet/" not in str(caught.value)


def test_failed_trial_error_is_part_of_the_space_and_the_check_trains_another(tmp_path):
    """KerasTuner's "handle failed trials" guide: build raises FailedTrialError for a model too
    large. Discovery keeps exploring (before: a SpecError refused the search) and the driver's
    check trains a configuration that builds instead of the failing default; when every
    configuration fails, the check is skipped with a warning."""
    prepared = prepare(Experiment.from_dict(_spec(tmp_path, "big", "tests.hypermodels:TooLarge")))
    assert prepared.space.names == ["units"]
    assert prepared.space["units"].values == [64, 8, 16]
    assert prepared.space.failed >= 1
    assert {"units": 8} in prepared.space.working and {"units": 64} not in prepared.space.working
    with pytest.warns(UserWarning, match=r"always_too_large marked every configuration tried "
                      r"as failed \(FailedTrialError\).*Model too large!"):
        again = prepare(Experiment.from_dict(_spec(tmp_path, "all",
                                                   "tests.hypermodels:always_too_large")))
    assert again.space.names == ["units"] and again.space.working == ()


def test_failed_trial_error_fails_a_trial_and_fatal_error_stops_the_study(one_call_cases):
    """In trials, FailedTrialError is a failure (its message the reason, not retried) and the
    study goes on; FatalError fails its trial and stops the study, whose summary names it.
    The shared study, two trials at a time: ``too_large`` first (FailedTrialError in build,
    the trials after it complete), then ``fatal`` last (FatalError in fit) while
    ``bystander`` still runs beside it; ``failure.max_retries: 1`` allows a retry."""
    result = one_call_cases
    trials = result.trials
    by_case = trials.set_index("config/contract")
    assert by_case.loc["too_large", "status"] == "failed"
    assert by_case.loc["too_large", "reason"] == "Model too large! It contains 4810 params."
    # The study went on: the trials after it in the grid (two at a time) complete.
    later = list(hypermodels.CustomLoop.contracts)
    assert set(by_case.loc[later, "status"]) == {"completed"}
    assert by_case.loc["fatal", "status"] == "failed"
    assert by_case.loc["fatal", "reason"] == (
        "FatalError: contract=fatal needs a licence this machine lacks")
    assert [int(r) for r in trials["retries"]] == [0] * len(trials)  # none retried
    assert "errored" not in set(trials["status"])
    stopped = result.summary["stopped"]
    assert "FatalError: contract=fatal needs a licence this machine lacks" in stopped
    # The trial running when the FatalError came was stopped by the study, not finished.
    assert by_case.loc["bystander", "status"] == "stopped_by_study"
    assert (trials["status"] == "stopped_by_study").any()


def test_one_call_trials_pause_and_resume_under_hyperband(ray_local, tmp_path):
    """Synchronous HyperBand pauses one-call trials (a fit override) and resumes them from
    their checkpoints with initial_epoch: epochs run 1..n once each, and every status is what
    happened to the trial (5 trials: conftest's hyperband_spec, whose second bracket pauses)."""
    spec = _spec(tmp_path, "hb", "tests.hypermodels:BatchSizeHyperModel", train={"epochs": 3},
                 search={"algorithm": "random", "num_samples": 5, "seed": 3},
                 scheduler={"name": "hyperband", "reduction_factor": 2.5})
    result = run(spec)
    resumed = 0
    for trial in result.trials.itertuples():
        rows = _rows(result, trial.trial_id)
        assert rows["epoch"].tolist() == list(range(1, len(rows) + 1))
        assert (rows["epoch"] == rows["training_iteration"]).all()
        resumed += bool((rows["iterations_since_restore"] < rows["training_iteration"]).any())
        done = rows["stop_reason"].iloc[-1] == "completed"
        assert trial.status == ("completed" if done else "stopped_by_scheduler")
        assert (rows["epoch"].iloc[-1] == 3) == done
    assert resumed >= 1, "HyperBand paused no trial, so nothing was resumed"
    assert (result.trials["status"] == "stopped_by_scheduler").any()


def test_asha_cuts_a_one_call_trial_as_stopped_by_scheduler(ray_local, tmp_path):
    """A one-call trial (fit_kwargs, as the drop-in Tuner passes) that ASHA cuts ends as
    stopped_by_scheduler: one trial at a time, the second barely learns (lr 1e-7)."""
    spec = _spec(tmp_path, "asha", "tests.hypermodels:lr_choice", train={"epochs": 3},
                 search={"algorithm": "grid", "num_samples": 1, "seed": 0, "max_concurrent": 1},
                 scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2})
    result = run(spec, fit_kwargs={})
    trials = result.trials.set_index("config/lr")
    assert trials.loc[0.02, "status"] == "completed"
    assert trials.loc[1e-7, "status"] == "stopped_by_scheduler"
    assert trials.loc[1e-7, "reason"] == "stopped at epoch 1"
