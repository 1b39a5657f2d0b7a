"""A report of a real small study: tables, the exported model re-scored independently with
scikit-learn, the retrain path, and the HTML opened in a real headless browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from tests.conftest import tiny_spec
from tunefleet import run
from tunefleet.reports import build_study_report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study(ray_local, tmp_path_factory):
    """Six MLP trials on digits under ASHA; units=13 raises, so two trials error."""
    out = tmp_path_factory.mktemp("study")
    spec = tiny_spec(out, name="report_me",
                     model={"builder": "tests.builders:small_mlp", "params": {"fail_on_units": 13}},
                     search={"algorithm": "grid"},
                     search_space={"units": {"type": "grid", "values": [32, 13, 8]},
                                   "learning_rate": {"type": "grid", "values": [0.01, 0.001]}},
                     scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2},
                     train={"epochs": 4, "batch_size": 64},
                     failure={"max_retries": 0})  # retries are tests/test_failures.py's
    return run(spec)


@pytest.fixture(scope="module")
def report(study):
    return build_study_report(study.path)


def test_tables_have_the_expected_rows_columns_and_statuses(study, report):
    trials = pd.read_csv(report.files["trials"])
    assert len(trials) == 6
    for col in ("trial_id", "units", "learning_rate", "status", "reason", "epochs_trained", "time_s", "cpu",
                "gpu", "best_val_accuracy", "last_val_accuracy", "best_loss", "last_val_loss",
                "best_epoch", "checkpoint"):
        assert col in trials.columns, col
    errored = trials[trials["status"] == "errored"]
    assert sorted(errored["units"]) == [13, 13]
    assert errored["reason"].str.contains("deliberate failure").all()
    assert set(trials["status"]) - {"errored"} <= {"completed", "stopped_by_scheduler"}
    # The same statuses as the run's own summary: the report reads only the directory.
    assert dict(zip(trials["trial_id"], trials["status"], strict=True)) == dict(
        zip(study.trials["trial_id"], study.trials["status"], strict=True))
    history = pd.read_csv(report.files["history"])
    assert len(history) == trials["epochs_trained"].sum()
    assert {"trial_id", "epoch", "elapsed_s", "val_accuracy", "val_loss", "loss"} <= set(history.columns)


def test_test_metrics_match_an_independent_recomputation(study, report):
    import keras
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    saved = json.loads((report.out_dir / "test_metrics.json").read_text())
    model = keras.models.load_model(saved["model_path"])
    data = np.load(study.path / "data" / "test.npz")
    # The exported model takes raw pixels; the run saved the test images as read (digits: 0..16).
    predicted = model.predict(data["x_raw"], verbose=0).argmax(axis=1)
    assert saved["metrics"]["accuracy"] == pytest.approx(accuracy_score(data["y"], predicted))
    assert saved["metrics"]["f1_macro"] == pytest.approx(f1_score(data["y"], predicted, average="macro"))
    assert saved["confusion"] == confusion_matrix(data["y"], predicted, labels=range(10)).tolist()
    assert saved["n_test"] == len(data["y"]) and saved["trial_id"] == study.summary["best"]["trial_id"]
    assert saved["source"].startswith("checkpoint trial_")
    assert saved["metrics"]["accuracy"] > 0.5
    assert set(saved["per_class"]) == {str(i) for i in range(10)}


def test_report_documents_and_figures(report):
    for name in ("curves", "anytime", "effects", "parallel", "importance", "confusion"):
        assert report.figures[name].stat().st_size > 5000, name
    text = (report.out_dir / "report.md").read_text()
    assert "## Best model on the held-out test split" in text and "## Which hyperparameters mattered" in text
    assert text.count("![") == len(report.figures) == 6


def test_retrain_says_so(study, tmp_path):
    retrained = build_study_report(study.path, out_dir=tmp_path / "retrained", retrain=True)
    assert retrained.test.source.startswith("retrained on train+validation for")
    assert 0.0 < retrained.test.metrics["accuracy"] <= 1.0


def test_html_renders_with_every_image_in_a_real_browser(report, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (see .ci/run)")
        pytest.skip("no chromium here: install Debian's `chromium` package to run this check")
    html = report.files["html"]
    assert "http://" not in html.read_text() and "https://" not in html.read_text()
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
         f"file://{html}"], capture_output=True, text=True, timeout=120)
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', proc.stdout)
    assert loaded, proc.stderr[-2000:]
    assert loaded.group(1) == loaded.group(2) == str(len(report.figures))
    assert "<h1" in proc.stdout and "Best configuration" in proc.stdout
