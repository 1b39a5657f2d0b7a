"""The drop-in tuners' arguments: KerasTuner's that map onto the spec, and the ones refused
with a message that says why (never ignored); search()'s inputs; reload(). No Ray: nothing
trains but the driver's one-epoch check, where a search is refused by it."""

from __future__ import annotations

import re

import keras_tuner
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tunefleet.keras_tuner as kt
from tests.keras_tuner import user_code
from tunefleet.keras_tuner.inputs import search_inputs
from tunefleet.spec import Experiment, SpecError


def _spec(tuner, epochs: int = 2) -> dict:
    return Experiment.from_dict(tuner._args.spec(tuner.project_name, epochs, "m:f")).to_dict()


def test_the_names_a_script_uses_are_keras_tuners_own():
    assert kt.HyperModel is keras_tuner.HyperModel
    assert kt.HyperParameters is keras_tuner.HyperParameters
    assert kt.Objective is keras_tuner.Objective
    with pytest.raises(AttributeError, match="SklearnTuner"):
        kt.SklearnTuner  # noqa: B018


def test_keras_tuner_arguments_map_onto_the_spec(tmp_path):
    tuner = kt.RandomSearch(user_code.build_model, objective="val_accuracy", max_trials=7,
                            seed=11, executions_per_trial=2, max_retries_per_trial=1,
                            max_consecutive_failed_trials=4, directory=tmp_path,
                            project_name="p", resources_per_trial={"cpu": 2},
                            max_concurrent=3, time_budget_s=60, address="auto",
                            settings=["output.num_to_keep=3"])
    spec = _spec(tuner, epochs=5)
    assert spec["cluster"]["address"] == "auto"
    assert spec["output"]["num_to_keep"] == 3
    assert spec["search"]["algorithm"] == "random"
    assert spec["search"]["num_samples"] == 7 and type(spec["search"]["num_samples"]) is int
    assert spec["search"]["seed"] == 11
    assert spec["search"]["executions_per_trial"] == 2
    assert spec["search"]["max_concurrent"] == 3
    assert spec["search"]["time_budget_s"] == 60
    assert spec["failure"] == {"max_retries": 1, "max_consecutive": 4}
    assert spec["resources"]["cpu"] == 2.0
    assert spec["train"]["epochs"] == 5
    assert spec["scheduler"]["name"] == "asha"
    assert spec["output"]["storage"] == str(tmp_path)
    assert tuner.project_dir == str(tmp_path / "p")


def test_bayesian_optimization_is_tpe_and_hyperband_is_asha(tmp_path):
    bo = kt.BayesianOptimization(user_code.build_model, objective="val_accuracy", max_trials=4,
                                 num_initial_points=2, directory=tmp_path)
    assert _spec(bo)["search"]["algorithm"] == "hyperopt"
    assert _spec(bo)["search"]["n_initial_points"] == 2
    unset = kt.BayesianOptimization(user_code.build_model, objective="val_accuracy",
                                    directory=tmp_path)
    assert _spec(unset)["search"]["n_initial_points"] == 5  # tunefleet's, as the README says
    hb = kt.Hyperband(user_code.build_model, objective="val_accuracy", max_epochs=9, factor=3,
                      directory=tmp_path)
    spec = _spec(hb, epochs=100)  # search(epochs=) gives way to max_epochs, as in KerasTuner
    oracle = keras_tuner.oracles.HyperbandOracle(
        objective=keras_tuner.Objective("val_accuracy", "max"), max_epochs=9, factor=3)
    brackets = range(oracle._get_num_brackets())
    assert spec["search"]["num_samples"] == sum(oracle._get_size(b, 0) for b in brackets) == 17
    assert spec["train"]["epochs"] == 9
    assert spec["scheduler"] == {"name": "asha", "max_t": 9, "reduction_factor": 3.0,
                                 "grace_period": 1, "brackets": 1}
    twice = kt.Hyperband(user_code.build_model, objective="val_accuracy", max_epochs=9,
                         hyperband_iterations=2, scheduler="hyperband", directory=tmp_path)
    assert _spec(twice)["search"]["num_samples"] == 34
    assert _spec(twice)["scheduler"]["name"] == "hyperband"
    tuned = kt.Hyperband(user_code.build_model, objective="val_accuracy", max_epochs=9,
                         scheduler={"name": "asha", "grace_period": 2}, directory=tmp_path)
    assert _spec(tuned)["scheduler"]["grace_period"] == 2
    assert _spec(tuned)["scheduler"]["max_t"] == 9


def test_grid_search_is_a_grid_search_of_each_configuration_once(tmp_path):
    grid = kt.GridSearch(user_code.MyHyperModel(), objective="val_accuracy", seed=4,
                         directory=tmp_path)
    spec = _spec(grid)
    assert spec["search"]["algorithm"] == "grid"
    # Each configuration once: the trials are the grid's size (Prepared.total_trials) × 1.
    assert spec["search"]["num_samples"] == 1 and type(spec["search"]["num_samples"]) is int
    assert spec["search"]["seed"] == 4


def test_grid_search_over_a_continuous_float_is_refused_before_ray_starts(tmp_path):
    """KerasTuner's GridSearch needs a discrete space too; the refusal names the Float."""
    x, y, xv, yv = user_code.digits()
    grid = kt.GridSearch(user_code.build_model, objective="val_accuracy", directory=tmp_path,
                         project_name="g")
    with pytest.raises(SpecError) as info:
        grid.search(x, tf.one_hot(y, 10).numpy(), epochs=1,
                    validation_data=(xv, tf.one_hot(yv, 10).numpy()))
    assert info.value.field == "model.hypermodel"
    assert re.search(r"\blr\b", info.value.problem) and "grid" in str(info.value), str(info.value)
    assert not (tmp_path / "g").exists()  # refused before the study was written


def test_the_objective_as_keras_tuner_takes_it(tmp_path):
    f1 = kt.RandomSearch(user_code.build_model, objective=kt.Objective("val_f1", "max"),
                         directory=tmp_path)
    assert _spec(f1)["objective"] == {"metric": "val_f1", "mode": "max"}
    loss = kt.RandomSearch(user_code.build_model, objective=["val_loss"], directory=tmp_path)
    assert _spec(loss)["objective"]["metric"] == "val_loss"
    assert Experiment.from_dict(loss._args.spec("p", 1, "m:f")).objective.direction == "min"
    default = kt.RandomSearch(user_code.CustomLoop(), directory=tmp_path)
    assert _spec(default)["objective"] == {"metric": "default_objective", "mode": "min"}


@pytest.mark.parametrize("make, field, pattern", [
    (lambda: kt.RandomSearch(user_code.build_model, optimizer="adam"), "optimizer",
     "compile it there"),
    (lambda: kt.RandomSearch(user_code.build_model, metrics=["mae"]), "metrics",
     "add the metrics there"),
    (lambda: kt.RandomSearch(user_code.build_model, max_model_size=10), "max_model_size",
     "parameter count"),
    (lambda: kt.RandomSearch(user_code.build_model, distribution_strategy=object()),
     "distribution_strategy", "train.distribute"),
    (lambda: kt.RandomSearch(user_code.build_model, tuner_id="chief"), "tuner_id",
     "max_concurrent"),
    (lambda: kt.BayesianOptimization(user_code.build_model, alpha=0.1), "alpha", "TPE"),
    (lambda: kt.GridSearch(user_code.build_model, max_trials=3), "max_trials", "whole|every"),
    (lambda: kt.Hyperband(user_code.build_model, factor=1), "factor", "at least 2"),
    (lambda: kt.Hyperband(user_code.build_model, scheduler="median"), "scheduler",
     "itself a scheduler"),
    (lambda: kt.RandomSearch(user_code.build_model, resources_per_trial={"GPU": 1}),
     "resources_per_trial", "'cpu' and 'gpu'"),
    (lambda: kt.RandomSearch(user_code.build_model, objective=["val_loss", "val_accuracy"]),
     "objective", "one objective"),
    (lambda: kt.RandomSearch(user_code.build_model, objective="val_my_score"), "objective",
     "direction"),
    (lambda: kt.RandomSearch(None), "hypermodel", "required"),
    # Checked when the tuner is created, named as the argument the user wrote.
    (lambda: kt.RandomSearch(user_code.build_model, max_trials=0), "max_trials", "greater"),
    (lambda: kt.RandomSearch(user_code.build_model, project_name="a b"), "project_name",
     "directory name"),
    (lambda: kt.RandomSearch(user_code.build_model, time_budget_s=-1), "time_budget_s",
     "greater"),
    (lambda: kt.RandomSearch(user_code.build_model, max_consecutive_failed_trials=0),
     "max_consecutive_failed_trials", "greater"),
])
def test_arguments_tunefleet_cannot_honour_are_refused(make, field, pattern):
    with pytest.raises(SpecError, match=pattern) as info:
        make()
    assert info.value.field == field


def test_unknown_arguments_and_custom_run_trial_are_errors():
    with pytest.raises(TypeError, match="max_trails"):
        kt.RandomSearch(user_code.build_model, max_trails=3)

    class Custom(kt.RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            return 1.0

    with pytest.raises(SpecError, match="HyperModel.fit"):
        Custom(user_code.build_model)


def test_search_takes_fit_arguments_as_keras_binds_them():
    x, y, xv, yv = user_code.digits()
    weights = np.linspace(0.5, 1.5, len(x))
    early = tf.keras.callbacks.EarlyStopping(patience=1)
    got = search_inputs((x, y), {"epochs": 3, "validation_split": 0.25, "batch_size": 16,
                                 "sample_weight": weights, "class_weight": {0: 2.0},
                                 "callbacks": [early], "shuffle": False})
    cut = int(np.floor(len(x) * 0.75))  # Keras' split: the last rows, unshuffled
    assert np.array_equal(got.x, x[:cut]) and np.array_equal(got.validation[0], x[cut:])
    assert np.array_equal(got.fit_kwargs["sample_weight"], weights[:cut])
    assert got.epochs == 3 and type(got.epochs) is int
    assert got.fit_kwargs["batch_size"] == 16 and got.fit_kwargs["shuffle"] is False
    assert got.fit_kwargs["class_weight"] == {0: 2.0}
    assert got.fit_kwargs["callbacks"] == [early]
    assert got.fit_kwargs["verbose"] == 0
    # Keywords keras.Model.fit does not take reach the user's HyperModel.fit, as in KerasTuner.
    assert search_inputs((x, y), {"validation_split": 0.2, "my_flag": True}).fit_kwargs[
        "my_flag"] is True
    frame = search_inputs((pd.DataFrame(x.reshape(len(x), -1)), pd.Series(y)),
                          {"validation_data": (xv.reshape(len(xv), -1), yv)})
    assert isinstance(frame.x, np.ndarray) and frame.x.shape == (len(x), 64)
    # Python lists, as np.asarray reads them.
    listed = search_inputs((x[:8].tolist(), y[:8].tolist()),
                           {"validation_data": (xv[:4].tolist(), yv[:4].tolist())})
    assert isinstance(listed.x, np.ndarray) and listed.x.shape == (8, 8, 8, 1)
    assert np.array_equal(listed.y, y[:8]) and np.array_equal(listed.validation[1], yv[:4])


def test_a_small_tf_data_dataset_is_read_into_arrays_and_an_endless_one_refused():
    x, y, xv, yv = user_code.digits()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    got = search_inputs((dataset,), {"validation_data": (xv, yv)})
    assert np.array_equal(got.x, x) and np.array_equal(got.y, y)
    assert any("1,152 examples" in note for note in got.notes)
    with pytest.raises(SpecError, match="infinite or unknown") as info:
        search_inputs((dataset.repeat(),), {"validation_data": (xv, yv)})
    assert "NumPy" in str(info.value)


def test_a_tf_data_dataset_that_is_not_x_y_pairs_or_too_large_is_refused(monkeypatch):
    from tunefleet.keras_tuner import inputs

    x, y, xv, yv = user_code.digits()
    with pytest.raises(SpecError, match=r"must yield \(x, y\) pairs of tensors") as info:
        search_inputs((tf.data.Dataset.from_tensor_slices(x).batch(32),),
                      {"validation_data": (xv, yv)})
    assert info.value.field == "x, y" and "pass numpy arrays instead" in str(info.value).lower()
    monkeypatch.setattr(inputs, "MAX_DATASET_BYTES", x[:10].nbytes)  # 2 GiB in real use
    with pytest.raises(SpecError, match="the tf.data.Dataset holds more than") as info:
        search_inputs((tf.data.Dataset.from_tensor_slices((x, y)).batch(32),),
                      {"validation_data": (xv, yv)})
    assert info.value.field == "x, y" and "pass numpy arrays instead" in str(info.value).lower()


def test_no_objective_needs_fit_to_return_a_float(tmp_path):
    """As in KerasTuner, no objective means fit returns the value to minimise; a fit that
    returns Keras' History is refused by the driver's one-epoch check, before Ray starts."""
    x, y, xv, yv = user_code.digits()
    tuner = kt.RandomSearch(user_code.MyHyperModel(), max_trials=1, directory=tmp_path,
                            project_name="p")
    with pytest.raises(SpecError) as info:
        tuner.search(x, y, epochs=1, validation_data=(xv, yv))
    assert info.value.field == "objective"
    assert str(info.value).startswith(
        "objective: no objective was given, so (as in KerasTuner) HyperModel.fit must return "
        "the value to minimise, as a float; this one does not")
    assert "Pass objective='val_loss'" in str(info.value)
    assert not (tmp_path / "p").exists()  # refused before the study was written


@pytest.mark.parametrize("kwargs, field, pattern", [
    ({}, "validation_data", "validation_split=0.2"),
    ({"validation_split": 0.2, "validation_freq": 2}, "validation_freq", "every epoch"),
    ({"validation_split": 0.2, "steps_per_epoch": 3}, "steps_per_epoch", "whole epochs"),
    ({"validation_split": 0.2, "epochs": 0}, "epochs", "positive"),
    ({"validation_data": (np.zeros((3, 8, 8, 1)), np.zeros(3), np.ones(3))}, "validation_data",
     "sample weights"),
    ({"validation_data": (np.zeros((3, 64)), np.zeros(3))}, "validation_data", "shaped as x"),
    ({"validation_split": 0.2, "batch_size": 0}, "batch_size", "positive"),
    ({"validation_split": 0.2, "callbacks": 3}, "callbacks", "keras.callbacks.Callback"),
])
def test_search_inputs_tunefleet_cannot_take_are_refused(kwargs, field, pattern):
    x, y, _, _ = user_code.digits()
    with pytest.raises(SpecError, match=pattern) as info:
        search_inputs((x, y), kwargs)
    assert info.value.field == field


def test_a_list_of_inputs_is_refused_with_a_message():
    x, y, _, _ = user_code.digits()
    with pytest.raises(SpecError, match="multi-input") as info:
        search_inputs(([x, x], y), {"validation_split": 0.2})
    assert info.value.field == "x, y x"


def test_a_keras_tuner_project_directory_is_neither_read_nor_deleted(tmp_path):
    project = tmp_path / "untitled_project"
    project.mkdir()
    (project / "oracle.json").write_text("{}")
    x, y, xv, yv = user_code.digits()
    for overwrite in (False, True):
        tuner = kt.RandomSearch(user_code.build_model, objective="val_accuracy",
                                directory=tmp_path, overwrite=overwrite)
        with pytest.raises(SpecError, match="KerasTuner project") as info:
            tuner.search(x, y, validation_data=(xv, yv)) if overwrite else tuner.reload()
        assert info.value.field == "project_name" or overwrite
    assert (project / "oracle.json").read_text() == "{}"


def test_the_logger_argument_is_ignored_with_keras_tuners_warning(tmp_path):
    with pytest.warns(DeprecationWarning, match="logger"):
        kt.RandomSearch(user_code.build_model, objective="val_accuracy", logger=object(),
                        directory=tmp_path)


def _discovered(hypermodel) -> dict:
    from tunefleet.search_spaces.hypermodel_space import discover_space
    from tunefleet.trainables.hypermodel import probe_hypermodel

    space = discover_space(lambda values: probe_hypermodel(hypermodel, values))
    return {p.name: p for p in space.params}


def test_declared_hyperparameters_override_the_code_as_in_keras_tuner(tmp_path):
    hp = kt.HyperParameters()
    hp.Fixed("lr", 0.005)
    hp.Int("num_layers", 1, 2)  # narrower than the code's 1..3
    tuner = kt.RandomSearch(user_code.build_model, objective="val_accuracy",
                            hyperparameters=hp, directory=tmp_path)
    params = _discovered(tuner.hypermodel)
    assert params["lr"].kind == "fixed" and params["lr"].hp.value == 0.005
    assert params["num_layers"].values == [1, 2]
    assert "units_2" not in params  # only a third layer would declare it
    assert params["activation"].kind == "choice"  # undeclared: still tuned

    frozen = kt.RandomSearch(user_code.build_model, objective="val_accuracy",
                             hyperparameters=hp, tune_new_entries=False, directory=tmp_path)
    params = _discovered(frozen.hypermodel)
    assert params["activation"].kind == "fixed"
    assert params["activation"].hp.value == "relu"  # the code's default
    assert params["num_layers"].values == [1, 2]

    strict = kt.RandomSearch(user_code.build_model, objective="val_accuracy",
                             hyperparameters=hp, allow_new_entries=False, directory=tmp_path)
    from tunefleet.trainables.hypermodel import HypermodelError

    with pytest.raises(HypermodelError, match=(
            r"allow_new_entries is False, but the hypermodel declares \['activation', 'dropout', "
            r"'units_0'\], which hyperparameters= does not: declare them there, or "
            r"allow_new_entries=True")):
        _discovered(strict.hypermodel)


def test_search_space_summary_before_a_search_and_no_oracle(tmp_path, capsys):
    tuner = kt.RandomSearch(user_code.build_model, objective="val_accuracy", directory=tmp_path)
    tuner.search_space_summary()
    out = capsys.readouterr().out
    assert out.startswith("Search space summary\nDefault search space size: ")
    assert "num_layers (Int)" in out and "lr (Float)" in out and "'sampling': 'log'" in out
    with pytest.raises(AttributeError, match="get_best_hyperparameters"):
        tuner.oracle  # noqa: B018
    assert tuner.get_best_hyperparameters() == [] and tuner.get_best_models() == []


def test_a_scheduler_for_more_epochs_than_one_is_checked_against_searchs_epochs(tmp_path):
    """search(epochs=) is unknown when the tuner is created: a grace period of 2 is fine then,
    and refused only for a search of fewer epochs."""
    tuner = kt.RandomSearch(user_code.build_model, objective="val_accuracy", directory=tmp_path,
                            scheduler={"name": "asha", "grace_period": 2})
    spec = tuner._args.spec("p", 1, "m:f")
    with pytest.raises(SpecError, match="grace_period"):
        Experiment.from_dict(spec)



# A stored study's summary.json ``stopped`` (None: it ran every trial), and what a re-created
# tuner asking for the trials it holds prints instead of resuming it.
ENDED = [
    (None, r"already holds the 2 trials asked for; raise max_trials"),
    ("the time budget (search.time_budget_s=60) was spent",
     (r"p ended: the time budget \(search\.time_budget_s=60\) was spent, and a search with "
      r"the same max_trials and time_budget_s does not resume it; pass another time_budget_s")),
    # search.budget: a tuner sets num_samples, which a budget excludes; read as the runner does.
    ("the budget (search.budget: 12 epochs) was spent",
     (r"p ended: the budget \(search\.budget: 12 epochs\) was spent, and the study is what "
      r"that budget bought; pass overwrite=True")),
    (("the study stopped after 3 consecutive failed trials (failure.max_consecutive=3): "
      "p_00000 failed: out of memory"),
     (r"p stopped: the study stopped after 3 consecutive failed trials .*; the trials it "
      r"stopped are not run again: fix the cause, then raise max_trials")),
    (("the study stopped because trial p_00001 raised FatalError (a KerasTuner FatalError "
      "ends the search)"), r"p stopped: the study stopped because trial p_00001 raised Fatal"),
]


def _stored_study(tmp_path, stopped):
    """A tuner and the 2-trial study it started in its project directory (synthetic: no Ray,
    nothing trained), whose summary.json says why it ended (``stopped``; "no summary": none
    written); and the tuner's search() arguments."""
    import json

    import yaml

    from tunefleet.reports.synthetic import write_synthetic_study

    tuner = kt.RandomSearch(user_code.build_model, objective="val_accuracy", max_trials=2,
                            seed=3, directory=tmp_path, project_name="p", time_budget_s=60)
    study = write_synthetic_study(tmp_path, trials=2, epochs=2, name="p", cut_fraction=0.0)
    spec = Experiment.from_dict(tuner._args.spec("p", 2, tuner._reference())).to_dict()
    (study / "spec.yaml").write_text(yaml.safe_dump(spec))
    (study / "summary.json").unlink()
    if stopped == "killed continuation":  # the summary of the search before, of 1 trial
        (study / "summary.json").write_text(json.dumps(
            {"name": "p", "trials": {"total": 1}, "best": None, "stopped": None}))
    elif stopped != "no summary":
        (study / "summary.json").write_text(json.dumps(
            {"name": "p", "trials": {"total": 2}, "best": None, "stopped": stopped}))
    x, y, xv, yv = user_code.digits()
    return tuner, study, (x, y), {"epochs": 2, "validation_data": (xv, yv)}


@pytest.mark.parametrize("stopped, message", ENDED, ids=["done", "time_budget", "search_budget",
                                                         "failure_policy", "fatal_error"])
def test_a_study_that_ended_by_itself_is_not_resumed_by_a_recreated_tuner(tmp_path, capsys,
                                                                          stopped, message):
    """The same max_trials on a study that ran every trial, spent its budget or was stopped
    by its failure policy: the tuner says so and returns the study's result, resuming nothing
    (a resume would run another time budget, or nothing)."""
    from tunefleet.study.summary import StudyResult

    tuner, study, args, kwargs = _stored_study(tmp_path, stopped)
    files = {p: p.read_bytes() for p in study.rglob("*") if p.is_file()}
    tuner.search(*args, **kwargs)
    out = capsys.readouterr().out
    assert re.search(f"^tunefleet: {re.escape(tuner.project_dir)}[ /]", out, re.M), out
    assert re.search(message, out), out
    assert isinstance(tuner.result, StudyResult)
    assert tuner.result.summary["stopped"] == stopped
    assert list(tuner.result.trials["trial_id"]) == ["p_00000", "p_00001"]
    assert {p: p.read_bytes() for p in study.rglob("*") if p.is_file()} == files  # untouched


@pytest.mark.parametrize("stopped, time_budget_s", [
    (("the study was interrupted (Ctrl-C) or its driver stopped; continue it with "
      "`tunefleet resume results/p`"), 60),
    ("no summary", 60),  # the driver was killed before it wrote one
    # max_trials raised from 1 to 2 (spec.yaml says 2), and that driver killed: the summary
    # is the finished 1-trial search's.
    ("killed continuation", 60),
    ("the time budget (search.time_budget_s=60) was spent", 120),  # a new budget for this run
], ids=["interrupted", "killed_driver", "killed_continuation", "new_time_budget"])
def test_a_study_cut_short_is_resumed_by_a_recreated_tuner(tmp_path, capsys, stopped,
                                                           time_budget_s):
    """The synthetic study has no Ray Tune state, so the resume says it cannot resume it:
    proof that the tuner went on to resume, with no Ray started."""
    tuner, _, args, kwargs = _stored_study(tmp_path, stopped)
    again = kt.RandomSearch(user_code.build_model, objective="val_accuracy", max_trials=2,
                            seed=3, directory=tmp_path, project_name="p",
                            time_budget_s=time_budget_s)
    with pytest.raises(SpecError, match="holds no study to resume"):
        again.search(*args, **kwargs)
    assert f"tunefleet: {tuner.project_dir}" not in capsys.readouterr().out


def test_reload_reads_the_study_again(tmp_path):
    """A tuner keeps the study it read; reload() reads what is on disk now (here the study
    gained a trial, as one continued from another process would)."""
    import json
    import shutil

    import yaml

    from tunefleet.reports.synthetic import write_synthetic_study
    from tunefleet.search_spaces.hypermodel_space import SPACE_FILE

    def space() -> None:  # the discovered space (empty here: the values are the trials')
        (study / SPACE_FILE).write_text(json.dumps({"params": [], "keras_tuner": {"space": []}}))

    tuner, study, _, _ = _stored_study(tmp_path, None)
    space()
    assert len(tuner.get_best_hyperparameters(10)) == 2
    spec = yaml.safe_load((study / "spec.yaml").read_text())
    spec["search"]["num_samples"] = 3
    for path in [study / "summary.json", *study.glob("trial_*")]:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    write_synthetic_study(tmp_path, trials=3, epochs=2, name="p", cut_fraction=0.0)
    (study / "spec.yaml").write_text(yaml.safe_dump(spec))
    space()
    assert len(tuner.get_best_hyperparameters(10)) == 2  # still the study it read
    tuner.reload()
    assert len(tuner.get_best_hyperparameters(10)) == 3


def test_search_space_summary_of_a_searched_study_is_its_discovered_space(tmp_path, capsys):
    """After a search, the summary is the space the study recorded (search_space.json), not
    one discovered again."""
    from tunefleet.search_spaces.hypermodel_space import discover_space
    from tunefleet.trainables.hypermodel import probe_hypermodel

    tuner, study, _, _ = _stored_study(tmp_path, None)
    # A space other than the tuner's own build_model's: MyHyperModel's build (no data here,
    # so its fit is not probed) declares one Int.
    space = discover_space(lambda values: probe_hypermodel(user_code.MyHyperModel(), values))
    space.write(study)
    tuner.search_space_summary()
    out = capsys.readouterr().out
    assert out.startswith("Search space summary\nDefault search space size: 1\nunits (Int)\n")
    assert "'min_value': 16, 'max_value': 64, 'step': 16" in out
    assert "num_layers" not in out
