"""Importance, comparisons and report regeneration on synthetic studies (no Ray, no Keras)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from tunefleet import SpecError
from tunefleet.reports import build_comparison_report, build_study_report, load_study
from tunefleet.reports.importance import hyperparameter_importance, study_importance
from tunefleet.reports.synthetic import write_synthetic_study


def test_importance_ranks_the_only_hyperparameter_that_matters_first(tmp_path):
    study = load_study(write_synthetic_study(tmp_path, trials=80, epochs=12, seed=3))
    result = study_importance(study)
    assert result.names[0] == "learning_rate"
    assert result.share[0] > 0.6 and result.surrogate_r2 > 0.5
    assert result.caveat is None
    # Measured at one common epoch reached by at least half of the trials.
    assert 1 <= result.at_epoch <= 12 and result.n_trials >= 40


def test_importance_says_when_trials_are_too_few(tmp_path):
    study = load_study(write_synthetic_study(tmp_path, trials=6, epochs=4))
    result = study_importance(study)
    assert result.caveat and "only" in result.caveat and "scored trials" in result.caveat


def test_importance_handles_categorical_log_scale_and_inactive_values():
    rng = np.random.default_rng(0)
    n = 60
    layers = rng.integers(1, 4, n)
    configs = pd.DataFrame({
        "optimizer": rng.choice(["adam", "sgd", "rmsprop"], n),
        "learning_rate": 10 ** rng.uniform(-4, -1, n),
        "layers": layers,
        # units_2 exists only when layers >= 2: inactive trials leave it missing.
        "units_2": np.where(layers >= 2, rng.choice([32, 64], n), np.nan),
    })
    objective = pd.Series(np.where(configs["optimizer"] == "sgd", 0.6, 0.9) + rng.normal(0, 0.01, n))
    result = hyperparameter_importance(configs, objective, log_scale={"learning_rate"})
    assert result.names[0] == "optimizer" and result.share[0] > 0.7
    assert set(result.names) == set(configs.columns)


def test_regenerated_report_has_identical_tables(tmp_path):
    path = write_synthetic_study(tmp_path, trials=30, epochs=8)
    first = build_study_report(path, evaluate=False)
    tables = {k: first.out_dir.joinpath(f"{k}.csv").read_bytes()
              for k in ("trials", "history", "importance")}
    second = build_study_report(path)  # evaluation finds no checkpoint: noted, tables unchanged
    for k, content in tables.items():
        assert second.out_dir.joinpath(f"{k}.csv").read_bytes() == content, k
    assert second.test is None
    assert "Not evaluated: " in (second.out_dir / "report.md").read_text()
    assert "kept no checkpoint" in second.test_note


@pytest.mark.parametrize("n_seeds", [1, 2])
def test_comparison_of_studies(tmp_path, n_seeds):
    paths = []
    for search in ("random", "hyperopt"):
        for seed in range(n_seeds):
            paths.append(write_synthetic_study(tmp_path, trials=20, epochs=10, seed=seed + 10 * (search == "hyperopt"),
                                               name=f"{search}_{seed}", search=search))
    comparison = build_comparison_report(paths, tmp_path / "cmp")
    table = comparison.table
    assert len(table) == 2 * n_seeds
    assert set(table["search"]) == {"random", "hyperopt"}
    assert {len(v) for v in comparison.groups.values()} == {n_seeds}
    # The default target is the worst study's best, so every study reaches it.
    assert comparison.target == pytest.approx(table["best val_accuracy"].min())
    assert table["time to target (s)"].notna().all() and table["epochs to target"].notna().all()
    assert (table["epochs to target"] <= table["epochs"]).all()
    for name in ("comparison.csv", "anytime.png", "report.md", "report.html"):
        assert (tmp_path / "cmp" / name).exists()


def test_comparison_refuses_different_objectives(tmp_path):
    a = write_synthetic_study(tmp_path, trials=5, epochs=3, name="a")
    b = write_synthetic_study(tmp_path, trials=5, epochs=3, name="b")
    spec = (b / "spec.yaml").read_text().replace("metric: val_accuracy", "metric: val_loss")
    (b / "spec.yaml").write_text(spec.replace("mode: max", "mode: min"))
    with pytest.raises(SpecError, match=r"^b: these studies optimise a different objective than a"):
        build_comparison_report([a, b], tmp_path / "cmp")


def test_report_of_a_study_whose_trials_all_failed_before_reporting(tmp_path):
    path = write_synthetic_study(tmp_path, trials=3, epochs=2)
    for results in path.glob("trial_*/result.json"):
        results.write_text("")
    report = build_study_report(path)
    assert list(report.study.trials["status"]) == ["errored"] * 3
    assert report.test is None and "no trial reported" in report.test_note
    assert (report.out_dir / "report.html").exists()


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_report_and_comparison_count_the_epochs_actually_trained(tmp_path):
    """Two executions per trial and one trial retried from epoch 2: report.md, the comparison's
    epochs column and its anytime axis count every epoch each execution trained, like
    summary.json's epochs_total; an older study (no per-row count) counts one per row."""
    twice = write_synthetic_study(tmp_path, trials=8, epochs=6, seed=2, name="twice", executions=2,
                                  cut_fraction=0.0)
    retried = sorted(twice.glob("trial_*/result.json"))[0]
    rows = _rows(retried)
    _write_rows(retried, rows + [dict(r) for r in rows[2:]])  # epochs 3..6 trained again
    older = write_synthetic_study(tmp_path, trials=5, epochs=4, seed=3, name="older", cut_fraction=0.0)
    for results in older.glob("trial_*/result.json"):
        _write_rows(results, [{k: v for k, v in r.items() if k != "executions_trained"}
                              for r in _rows(results)])
    expected = {"twice": 2 * (8 * 6 + 4), "older": 5 * 4}
    reached = {"twice": 8 * 6, "older": 5 * 4}  # the last epoch reached, summed

    for name, path in (("twice", twice), ("older", older)):
        study = load_study(path)
        assert int(study.trials["epochs_trained"].sum()) == reached[name]
        assert study.epochs_run == expected[name] and isinstance(study.epochs_run, int)
        # The history keeps one row per epoch, each carrying the work of that epoch's repeats.
        assert len(study.history) == reached[name]
        assert int(study.history["epochs_run"].sum()) == expected[name]
        report = build_study_report(path, evaluate=False)
        text = (report.out_dir / "report.md").read_text()
        assert f"; {expected[name]} epochs trained." in text

    comparison = build_comparison_report([twice, older], tmp_path / "cmp")
    table = comparison.table.set_index("study")
    for name in ("twice", "older"):
        assert table.loc[name, "epochs"] == expected[name]
        assert isinstance(table.loc[name, "epochs"], (int, np.integer))
        assert table.loc[name, "epochs to target"] <= expected[name]
    runs = {run.label: run for members in comparison.groups.values() for run in members}
    assert {k: int(r.epochs[-1]) for k, r in runs.items()} == expected
    assert "| twice " in (tmp_path / "cmp" / "report.md").read_text()


def test_a_nan_loss_epoch_is_never_the_best(tmp_path):
    """A trial whose loss went NaN at epoch 4 with the best-looking objective: the row stays in
    the history, but the best epoch is the best checkpointed one before it."""
    path = write_synthetic_study(tmp_path, trials=2, epochs=3, seed=1, cut_fraction=0.0)
    trial_dir = sorted(path.glob("trial_*"))[0]
    rows = _rows(trial_dir / "result.json")
    for i, row in enumerate(rows):
        row["checkpoint_dir_name"] = f"checkpoint_{i:06d}"
        (trial_dir / row["checkpoint_dir_name"]).mkdir()
    best_before = max(rows, key=lambda r: r["val_accuracy"])
    nan_row = {**rows[-1], "epoch": 4, "training_iteration": 4, "loss": math.nan,
               "val_accuracy": 0.999, "stop_reason": "nan_loss", "checkpoint_dir_name": None}
    _write_rows(trial_dir / "result.json", rows + [nan_row])

    study = load_study(path)
    trial = study.trials.set_index("trial_id").loc[trial_dir.name.removeprefix("trial_")]
    assert trial["status"] == "failed" and trial["epochs_trained"] == 4
    assert trial["best_epoch"] == best_before["epoch"]
    assert isinstance(trial["best_epoch"], (int, np.integer))
    assert trial["best_val_accuracy"] == best_before["val_accuracy"]
    assert trial["checkpoint"] == str(trial_dir / best_before["checkpoint_dir_name"])
    assert trial["last_val_accuracy"] == 0.999  # still in the history
    kept = study.history[study.history["trial_id"] == trial.name]
    assert kept["epoch"].tolist() == [1, 2, 3, 4]
