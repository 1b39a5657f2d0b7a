"""The `tunefleet` command. Studies and previews run in this process (typer's runner, the
session's Ray), which skips a TensorFlow import and a Ray start per test; only the console
script's own checks (modules in the current directory shadow no package, in the driver or in
its trials) run it in a subprocess, as a user does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path):
    """The same command in this process; ``.exit_code``, ``.stdout``, ``.stderr``."""
    from typer.testing import CliRunner

    from tunefleet.cli import app

    here = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        os.chdir(here)


@pytest.mark.slow
def test_run_example_spec_with_overrides(ray_local, tmp_path):
    proc = _cli("run", str(ROOT / "examples" / "digits_cnn.yaml"),
                "--set", "search.num_samples=2", "--set", "train.epochs=2",
                "--set", "scheduler.grace_period=1", "--set", f"output.storage={tmp_path}",
                cwd=tmp_path)
    assert proc.exit_code == 0, proc.output[-3000:]
    assert "best val_accuracy" in proc.stdout
    study = tmp_path / "digits_cnn"
    summary = json.loads((study / "summary.json").read_text())
    assert summary["trials"]["total"] == 2 and summary["search"] == "hyperopt"
    assert summary["best"]["metrics"]["val_accuracy"] > 0.3
    assert "num_samples: 2" in (study / "spec.yaml").read_text()
    # The run ends with its report: test metrics of the best model and the HTML.
    test = json.loads((study / "report" / "test_metrics.json").read_text())
    assert test["trial_id"] == summary["best"]["trial_id"] and 0 < test["metrics"]["accuracy"] <= 1
    assert "best model on the test split: accuracy" in proc.stdout
    assert (study / "report" / "report.html").exists()

    # `tunefleet report` regenerates it from the directory alone, with identical tables.
    before = (study / "report" / "trials.csv").read_bytes()
    again = _cli("report", str(study), cwd=tmp_path)
    assert again.exit_code == 0, again.output[-2000:]
    assert "test: accuracy" in again.stdout
    assert (study / "report" / "trials.csv").read_bytes() == before


def test_bad_spec_exits_2_with_one_clear_line(tmp_path):
    proc = _cli("run", str(ROOT / "examples" / "digits_cnn.yaml"),
                "--set", "objective.metric=val_acc", cwd=tmp_path)
    assert proc.exit_code == 2
    assert proc.exception is None or isinstance(proc.exception, SystemExit)
    assert "objective.metric: the trainable never reports this metric, got 'val_acc'" in proc.stderr
    assert not (tmp_path / "results").exists()


def test_preview_prints_the_plan_without_training(tmp_path):
    proc = _cli("preview", str(ROOT / "examples" / "digits_grid.yaml"),
                "--set", "search.num_samples=2", cwd=tmp_path)
    assert proc.exit_code == 0, proc.output
    out = proc.stdout
    spec_grid = 3 * 2  # learning_rate × batch_size values in digits_grid.yaml
    assert f"grid: {spec_grid * 2} trials (grid of {spec_grid} × num_samples)" in out
    assert "fifo" in out and "every trial trains its full budget" in out
    assert not (tmp_path / "results").exists()


def _preview(tmp_path, text):
    """`tunefleet preview` of a spec written from ``text`` (objective val_accuracy added): its
    output, after checking it exited 0."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(text + "objective: {metric: val_accuracy}\n")
    proc = _cli("preview", str(spec), cwd=tmp_path)
    assert proc.exit_code == 0, proc.output
    return proc.stdout


def test_preview_shows_a_hypermodels_discovered_space(tmp_path):
    out = _preview(tmp_path, "name: hm\nmodel: {hypermodel: 'tests.hypermodels:grid_mlp'}\n"
                   "train: {epochs: 2}\nsearch: {algorithm: grid}\n")
    assert "hypermodel tests.hypermodels:grid_mlp" in out
    assert "grid: 6 trials" in out
    assert "units_1" in out and "if num_layers in [2]" in out


def test_preview_shows_the_time_budget(tmp_path):
    out = _preview(tmp_path, "name: tb\ndata: {dataset: digits}\n"
                   "search: {algorithm: random, num_samples: 3, time_budget_s: 90}\n")
    assert "random: 3 trials; ends after 90 s (search.time_budget_s)" in out


def test_preview_shows_asha_rungs(tmp_path):
    proc = _cli("preview", str(ROOT / "examples" / "digits_cnn.yaml"), cwd=tmp_path)
    assert proc.exit_code == 0, proc.output
    assert "asha: epoch budget 12; may stop trials at epochs 2, 6" in proc.stdout


def test_preview_shows_hyperbands_brackets_as_ray_fills_them(tmp_path):
    out = _preview(tmp_path, "name: hb\nmodel: {builder: cnn}\ntrain: {epochs: 12}\n"
                   "search: {algorithm: random, num_samples: 6}\n"
                   "scheduler: {name: hyperband, reduction_factor: 3}\n")
    assert "may pause or stop trials at epochs 1, 3, 4, 9" in out
    assert "17 trials a round" in out
    assert "bracket 1  3 of 3 trials: no cut, trained to epoch 12" in out
    assert "bracket 2  3 of 5 trials: at epoch 4 the best 2 go on; trained to epoch 12" in out
    assert ("bracket 3  0 of 9 trials: at epoch 1 the best 3 go on, at epoch 3 the best 1; "
            "stopped at epoch 9, below the budget") in out


@pytest.mark.slow
def test_exit_code_is_1_when_no_trial_finishes(no_trial_finishes):
    """A study whose trials all fail or error exits 1, names each trial's reason, and records
    no best trial (the study is conftest's, shared with tests/study/test_failures.py)."""
    proc, path = no_trial_finishes
    assert proc.exit_code == 1, proc.output[-2000:]
    assert "no trial finished" in proc.stderr
    assert "deliberate failure for units=9" in proc.stdout
    summary = json.loads((path / "results" / "all_fail" / "summary.json").read_text())
    assert summary["trials"]["errored"] == 1 and summary["trials"]["failed"] == 1
    assert summary["best"] is None


def test_report_of_a_directory_that_is_not_a_study(tmp_path):
    proc = _cli("report", str(tmp_path), cwd=tmp_path)
    assert proc.exit_code == 2 and "not a tunefleet study directory (no spec.yaml)" in proc.stderr


@pytest.mark.slow
def test_compare_runs_every_variant_to_the_same_budget(ray_local, tmp_path):
    """Grid and random search, 2 seeds each (the fewest with an interval, and fewer than 3: the
    warning), until 3 epochs are trained (2 per trial, one trial at a time: the budget stops
    each study in its second trial): every study spends the budget (an epoch or two past it,
    no more), the grid of 10 configurations is cut, and the run and the report give the
    budget, the seeds, the intervals, the verdict and the warning. Only the learning rate is
    tuned, so that the reused trial process keeps its compiled model. The full-size exercise
    (3 seeds, 96 epochs) is examples/compare_grid_random.yaml."""
    import re

    import pandas as pd
    import yaml

    from tests.conftest import tiny_spec
    from tunefleet.spec import dump_yaml

    budget = 3  # 2 epochs a trial: the budget's stopper, not the trial count, ends each study
    base = tiny_spec(tmp_path, train={"epochs": 2, "batch_size": 64}, search_space={
        "learning_rate": {"type": "choice", "values": [2e-3, 3e-3, 4e-3, 6e-3, 8e-3, 1e-2,
                                                       1.5e-2, 2e-2, 3e-2, 4e-2]}})
    # One trial at a time: one trial process per study (its start-up, TensorFlow's import,
    # is most of a study's cost here), which trains every trial of it in turn.
    base["search"] = {"max_concurrent": 1}
    dump_yaml({"name": "cmp", "budget": {"epochs": budget}, "seeds": [0, 1], "base": base,
               "variants": [{"name": "grid", "set": {"search": {"algorithm": "grid"}}},
                            {"name": "random", "set": {"search": {"algorithm": "random"}}}]},
              tmp_path / "cmp.yaml")
    proc = _cli("compare", str(tmp_path / "cmp.yaml"), cwd=tmp_path)
    assert proc.exit_code == 0, proc.output[-3000:]
    assert "warning: seeds: 2 seeds per variant (fewer than 3)" in proc.stderr
    assert (f"verdict: No significant difference between the variants at {budget} epochs"
            in proc.stderr)
    out = tmp_path / "results" / "cmp"
    table = pd.read_csv(out / "comparison.csv")
    assert list(table["variant"]) == ["grid", "grid", "random", "random"]
    assert list(table["seed"]) == [0, 1, 0, 1]
    for _, row in table.iterrows():  # equal budgets: each study spent 3 epochs, a few past
        study = tmp_path / "results" / row["study"]
        summary = json.loads((study / "summary.json").read_text())
        assert isinstance(summary["epochs_total"], int)
        assert summary["epochs_total"] == row["epochs"] == row["spent"]
        assert budget <= row["epochs"] <= budget + 2, row.to_dict()
        assert summary["stopped"] == f"the budget (search.budget: {budget} epochs) was spent"
        ran = yaml.safe_load((study / "spec.yaml").read_text())["search"]  # the study's own
        assert (ran["seed"], ran["budget"], ran["algorithm"]) == (
            row["seed"], {"epochs": budget}, row["variant"])
        trials = pd.read_csv(study / "trials.csv")
        assert set(trials["status"]) <= {"completed", "stopped_by_study"}
        assert 0 < row["best val_accuracy"] <= 1 and 0 < row["test accuracy"] <= 1
    grid = pd.read_csv(tmp_path / "results" / "cmp-grid-seed0" / "trials.csv")
    assert len(grid) < 10  # the budget cut the grid of 10
    saved = json.loads((out / "comparison.json").read_text())
    assert saved["budget"] == {"unit": "epochs", "amount": float(budget), "declared": True}
    text = (out / "report.md").read_text()
    assert saved["verdict"].startswith("No significant difference") and "**Verdict.**" in text
    assert f"Compared at **{budget} epochs**: every variant ran until this budget was spent" in text
    # Each variant's row: its 2 seeds, and its best at the budget with the interval over them.
    for variant in ("grid", "random"):
        assert re.search(rf"\| {variant} +\| +2 \| +\d\.\d{{4}} \(\d\.\d{{4}}–\d\.\d{{4}}\) +\|",
                         text), text
    assert "of the grid's 10 configurations per seed, truncated in an order drawn at random" in text
    assert "Warning: grid ran 2 seeds (fewer than 3)" in text
    assert (out / "report.html").stat().st_size > 0


def _shadowing_directory(path):
    """A `yaml.py` and a `keras.py` that fail if imported, beside a builder the spec names by
    `module:function` (`localnets:net`), which must still be found there."""
    for name in ("yaml", "keras"):
        (path / f"{name}.py").write_text(f"raise ImportError('the {name}.py here was imported')\n")
    (path / "localnets.py").write_text(
        "def net(info, units=8):\n"
        "    import keras\n"
        "    inputs = keras.Input(shape=info.input_shape)\n"
        "    x = keras.layers.Dense(units, activation='relu')(keras.layers.Flatten()(inputs))\n"
        "    return keras.Model(inputs, keras.layers.Dense(info.num_outputs, "
        "activation='softmax')(x))\n")


def test_modules_in_the_current_directory_do_not_shadow_packages(tmp_path):
    # The console script, as users run it (`python -m` would put the directory first itself).
    _shadowing_directory(tmp_path)
    (tmp_path / "spec.yaml").write_text("name: shadow\nmodel: {builder: 'localnets:net'}\n"
                                        "train: {epochs: 1}\nsearch: {algorithm: random, "
                                        "num_samples: 1}\n")
    script = Path(sys.executable).parent / "tunefleet"
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(script), "preview", "spec.yaml"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "localnets:net" in proc.stdout and "was imported" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_trials_import_the_users_module_without_shadowing_packages(tmp_path_factory):
    # A study run, as users run it: the trials find the user's module in the current
    # directory, and the `yaml.py` and `keras.py` there shadow no installed package inside
    # them (on PYTHONPATH, or where Ray puts the driver's directory, they would: the study
    # never ran). The run is tests/study/test_console.py's 12-trial study (its builder,
    # chatty.py, imports keras), which runs once for both tests: no PYTHONPATH, no report
    # (by the report, the driver has imported yaml and keras long since; the preview test
    # above checks the driver's imports).
    from tests.study.test_console import twelve_trial_run

    proc = twelve_trial_run(tmp_path_factory)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "was imported" not in proc.stdout + proc.stderr
    summary = json.loads((proc.path / "results" / "twelve" / "summary.json").read_text())
    assert summary["trials"]["completed"] == 11 and isinstance(summary["trials"]["completed"], int)
    assert summary["best"]["metrics"]["val_accuracy"] > 0
