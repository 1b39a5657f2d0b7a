"""The same KerasTuner user code (tests/keras_tuner/user_code.py) run by KerasTuner itself and
by tunefleet.keras_tuner with only the import changed: both finish, the best model evaluates,
and the best hyperparameters build the model with the user's own code."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.keras_tuner import user_code
from tunefleet.spec import SpecError

pytestmark = pytest.mark.slow

MODULES = ["keras_tuner", "tunefleet.keras_tuner"]


def _case(name: str, kt):
    """(hypermodel, objective, labels one-hot?) of each case, built with module ``kt``."""
    return {
        "function": (user_code.build_model, "val_accuracy", True),
        "fit_override": (user_code.MyHyperModel(), "val_accuracy", False),
        "custom_loop": (user_code.CustomLoop(), kt.Objective("my_metric", direction="min"),
                        False),
    }[name]


# The same max_trials on both sides. The function case needs two trials: one uses a layer the
# other does not (units_1), the case in which a best trial's Int came back as a float, and the
# best must be told from another trial. The other two check what one trial shows (the space
# fit declares, a restored best epoch, a custom loop's metric), so run one, on both sides.
TRIALS = {"function": 2, "fit_override": 1, "custom_loop": 1}


def _search(module: str, case: str, directory: Path):
    kt = importlib.import_module(module)
    hypermodel, objective, one_hot = _case(case, kt)
    x, y, xv, yv = user_code.digits()
    if one_hot:
        y, yv = keras.utils.to_categorical(y, 10), keras.utils.to_categorical(yv, 10)
    # Only the import differs, except in the function case's two trials: there tunefleet runs
    # them in one trial process, one after the other (each process imports TensorFlow once;
    # parallel trials are the engine's own, tested with tunefleet's studies), and without
    # ASHA's cut, so that every trial meets the user's callback.
    ours = {"max_concurrent": 1, "scheduler": "fifo"} \
        if module.startswith("tunefleet") and case == "function" else {}
    tuner = kt.RandomSearch(hypermodel, objective=objective, max_trials=TRIALS[case], seed=3,
                            directory=str(directory), project_name=case, overwrite=True, **ours)
    if case == "function":
        # The user's callback runs inside the trials: no epoch after the first gains the
        # min_delta of 1.0, so it stops every trial after 2 of its 3 epochs.
        stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", min_delta=1.0, patience=1)
        tuner.search(x, y, epochs=3, validation_data=(xv, yv), callbacks=[stop])
    else:
        tuner.search(x, y, epochs=2, validation_data=(xv, yv))
    return tuner, (xv, yv)


@pytest.mark.parametrize("case", ["function", "fit_override", "custom_loop"])
def test_the_same_user_code_runs_under_keras_tuner_and_tunefleet(case, tmp_path, ray_local):
    found = {}
    for module in MODULES:
        tuner, (xv, yv) = _search(module, case, tmp_path / module)
        best_hp = tuner.get_best_hyperparameters()[0]
        assert type(best_hp).__name__ == "HyperParameters"
        # The user's own code builds the winner from the returned hyperparameters.
        hypermodel = _case(case, importlib.import_module(module))[0]
        rebuilt = hypermodel(best_hp) if callable(hypermodel) and not hasattr(
            hypermodel, "build") else hypermodel.build(best_hp)
        assert isinstance(rebuilt, keras.Model)
        model = tuner.get_best_models()[0]
        assert isinstance(model, keras.Model)
        if case == "custom_loop":  # the loop's model is uncompiled in both
            model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=["accuracy"])
        results = model.evaluate(xv, yv, verbose=0, return_dict=True)
        # Restored weights, not a fresh model: far above chance (0.1).
        assert results["accuracy"] > 0.3, (module, results)
        found[module] = (tuner, best_hp, results)
    tuner, best_hp, results = found["tunefleet.keras_tuner"]
    kt_tuner, kt_hp, _ = found["keras_tuner"]
    # tunefleet discovers the whole space up front; KerasTuner learns it trial by trial.
    assert {p.name for p in kt_hp.space} <= {p.name for p in best_hp.space}
    if case == "fit_override":  # declared only in fit
        assert {"normalize", "shuffle", "batch_size"} <= {p.name for p in best_hp.space}
    summary = json.loads((Path(tuner.project_dir) / "summary.json").read_text())
    assert summary["trials"]["total"] == TRIALS[case]
    assert summary["scheduler"] == ("fifo" if case == "function" else "asha")
    if case == "function":
        trials = tuner.result.trials
        assert list(trials["epochs_trained"]) == [2, 2]
        assert set(trials["status"]) == {"early_stopped"}
    if case != "custom_loop":  # the restored model is the best epoch's, measured again
        best = summary["best"]["metrics"]["val_accuracy"]
        assert results["accuracy"] == pytest.approx(best, abs=1e-4)
    for name, value in best_hp.values.items():
        declared = next(p for p in best_hp.space if p.name == name)
        kind = type(declared).__name__
        if kind == "Int":
            assert type(value) is int, (name, value)
        if kind == "Boolean":
            assert type(value) is bool, (name, value)


@pytest.fixture(scope="module")
def continued(tmp_path_factory, ray_local):
    """One study for two tests: 4 trials (BayesianOptimization, so TPE's state is what a
    continued search restores), searched with every kind of search argument; then a re-created
    tuner with max_trials=6 adds 2. Returns what each step left behind."""
    import tunefleet.keras_tuner as kt
    from tests.keras_tuner.recording import Recording, Seen

    root = tmp_path_factory.mktemp("continued")
    x, y, _, _ = user_code.digits()
    # One trial process per search (see _search): on 2 cores, two processes importing
    # TensorFlow side by side take longer than one running the trials in turn.
    args = dict(objective="val_accuracy", directory=str(root), project_name="cont",
                max_concurrent=1, scheduler="fifo", num_initial_points=2)

    def search(tuner, epochs=3):
        plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", factor=0.5,
                                                    patience=0, min_delta=1.0, mode="max")
        tuner.search(x, y, epochs=epochs, validation_split=0.25, shuffle=False, my_flag=True,
                     class_weight={i: 1.0 for i in range(10)}, sample_weight=np.ones(len(x)),
                     callbacks=[Seen(), plateau,
                                keras.callbacks.TensorBoard(log_dir=str(root / "tb"))])

    first = kt.BayesianOptimization(Recording(), max_trials=4, **args)
    search(first)
    study = Path(first.project_dir)
    before = {p.parent.name: p.read_bytes() for p in study.glob("trial_*/result.json")}
    params = {p.parent.name: p.read_bytes() for p in study.glob("trial_*/params.json")}
    history = pd_history(study)
    # A continued study may change its time budget and failure policy, as a resumed one may.
    again = kt.BayesianOptimization(Recording(), max_trials=6, time_budget_s=900,
                                    max_consecutive_failed_trials=5, **args)
    reloaded = (len(again.get_best_hyperparameters(10)),
                isinstance(again.get_best_models(1)[0], keras.Model))
    search(again)
    return dict(kt=kt, Recording=Recording, args=args, search=search, first=first,
                again=again, study=study, before=before, params=params, history=history,
                reloaded=reloaded, tb=root / "tb")


def test_search_arguments_and_callbacks_reach_every_trials_fit(continued):
    """class_weight, sample_weight, shuffle, an extra keyword and the user's callbacks reach
    each trial's fit (Recording.fit raises otherwise); the callbacks act inside the trials;
    TensorBoard logs each trial apart; a drawn seed is recorded; reload() reads it back."""
    import yaml

    first, history = continued["first"], continued["history"]
    trials = first.result.trials
    assert set(trials["status"]) == {"completed"}, trials[["status", "reason"]]
    assert list(history["user_callback_epochs"]) == [1.0, 2.0, 3.0] * 4
    for _, rows in history.groupby("trial_id"):  # no epoch gains 1.0: halved after epoch 2
        assert rows["lr"].iloc[2] == pytest.approx(rows["lr"].iloc[0] / 2)
    # Each trial logs into a folder of its own, as KerasTuner points TensorBoard.
    logged = {p.name for p in continued["tb"].iterdir()}
    assert set(trials["trial_id"]) <= logged and len(logged) == 6
    assert all((continued["tb"] / t / "execution0").is_dir() for t in trials["trial_id"])
    spec = yaml.safe_load((continued["study"] / "spec.yaml").read_text())
    assert type(spec["search"]["seed"]) is int
    reread = continued["kt"].BayesianOptimization(continued["Recording"](), max_trials=6,
                                                  **continued["args"])
    reread.reload()
    assert reread.get_best_hyperparameters(6)[0].values == \
        continued["again"].get_best_hyperparameters(6)[0].values


def test_a_recreated_tuner_continues_its_study(continued, capsys):
    """4 trials, then max_trials=6 on a re-created tuner: 2 new trials, the 4 old untouched."""
    kt, args, study = continued["kt"], continued["args"], continued["study"]
    before, params, again = continued["before"], continued["params"], continued["again"]
    assert len(before) == 4
    assert continued["reloaded"] == (4, True)  # reloaded before searching again
    after = {p.parent.name: p.read_bytes() for p in study.glob("trial_*/result.json")}
    assert len(after) == 6
    assert {k: after[k] for k in before} == before
    assert {k: (study / k / "params.json").read_bytes() for k in params} == params
    new = [json.loads((study / k / "params.json").read_text()) for k in after if k not in before]
    old = [json.loads(v) for v in params.values()]
    assert all(n not in old for n in new)
    assert len(again.get_best_hyperparameters(10)) == 6
    import yaml

    spec = yaml.safe_load((study / "spec.yaml").read_text())
    assert spec["search"]["time_budget_s"] == 900 and spec["failure"]["max_consecutive"] == 5
    assert spec["search"]["num_samples"] == 6 and spec["search"]["algorithm"] == "hyperopt"
    again.results_summary(2)
    out = capsys.readouterr().out
    assert f"Results summary\nResults in {again.project_dir}\nShowing 2 best trials\n" in out
    assert 'Objective(name="val_accuracy", direction="max")' in out
    assert out.count(" summary\nHyperparameters:\n") == 2 and out.count("Score: ") == 2
    report = again.report()
    assert (Path(report.out_dir) / "report.html").is_file()
    assert set(report.importance.names) <= {"units", "lr"}

    # overwrite=True: the re-created tuner starts without the old study, as in KerasTuner.
    fresh = kt.BayesianOptimization(continued["Recording"](), max_trials=6, overwrite=True,
                                    **args)
    assert fresh.get_best_hyperparameters() == [] and fresh.get_best_models() == []
    # A third tuner asking for what the study holds adds nothing.
    third = kt.BayesianOptimization(continued["Recording"](), max_trials=6, **args)
    continued["search"](third)
    assert len(list(study.glob("trial_*/result.json"))) == 6
    # Other settings are refused, naming the way out.
    with pytest.raises(SpecError, match="overwrite=True") as info:
        continued["search"](kt.BayesianOptimization(continued["Recording"](), max_trials=6,
                                                    **args), epochs=2)
    assert "train.epochs" in str(info.value)
    with pytest.raises(SpecError, match="already holds 6 trials") as fewer:
        continued["search"](kt.BayesianOptimization(continued["Recording"](), max_trials=5,
                                                    **args))
    assert fewer.value.field == "max_trials"
    assert np.isfinite(json.loads((study / "summary.json").read_text())["best"]["metrics"][
        "val_accuracy"])


def pd_history(study: Path):
    import pandas as pd

    rows = [json.loads(line) for p in sorted(study.glob("trial_*/result.json"))
            for line in p.read_text().splitlines() if line.strip()]
    return pd.DataFrame(rows).sort_values(["trial_id", "epoch"])
