"""Reports of large studies without Ray or Keras: a report run reads its study once and hands
it to every consumer (tables, analyses, figures, the comparison); the curves of many trials are
a sample over bands; importance fits its trees on samples. URI downloads: tests/test_storage.py."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import tunefleet.reports.importance as importance_module
import tunefleet.reports.load as load_module
from tunefleet.cli import _report_or_warn, app
from tunefleet.reports import build_study_report, load_study
from tunefleet.reports.figures import MAX_CURVES, collect_curves, collect_parallel
from tunefleet.reports.plots import plot_curves, plot_parallel
from tunefleet.reports.synthetic import write_synthetic_study
from tunefleet.spec import Experiment, load_yaml
from tunefleet.storage import StudyStorage
from tunefleet.study.summary import summarize


@pytest.fixture
def reads(monkeypatch):
    """How many times each study was loaded, and how many trial directories were read."""
    counts: Counter[str] = Counter()
    load_local, read_trial = load_module._load_local, load_module._read_trial

    def counting_load(path):
        counts[Path(path).name] += 1
        return load_local(path)

    def counting_read(trial_dir):
        counts["trial directories"] += 1
        return read_trial(trial_dir)

    monkeypatch.setattr(load_module, "_load_local", counting_load)
    monkeypatch.setattr(load_module, "_read_trial", counting_read)
    return counts


def test_one_report_loads_its_study_once(tmp_path, reads):
    path = write_synthetic_study(tmp_path, trials=12, epochs=4, name="one")
    report = build_study_report(path)  # evaluation tried too: no checkpoint, noted
    assert reads == {"one": 1, "trial directories": 12}
    assert "kept no checkpoint" in report.test_note
    assert set(report.figures) == {"curves", "anytime", "effects", "parallel", "importance"}
    assert list(report.timings)[:3] == ["load", "tables", "evaluate"]
    assert all(isinstance(v, float) and v >= 0 for v in report.timings.values())
    # A study already loaded is not read again.
    again = build_study_report(report.study, out_dir=tmp_path / "again")
    assert reads["one"] == 1 and again.study is report.study
    assert (tmp_path / "again" / "trials.csv").read_bytes() == report.files["trials"].read_bytes()


def test_report_of_two_studies_and_their_comparison_loads_each_once(tmp_path, reads):
    a = write_synthetic_study(tmp_path, trials=10, epochs=4, name="a", seed=1)
    b = write_synthetic_study(tmp_path, trials=10, epochs=4, name="b", seed=2)
    result = CliRunner().invoke(app, ["report", str(a), str(b), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    assert reads == {"a": 1, "b": 1, "trial directories": 20}
    # Why each best model was not scored is said on the terminal too, not only in the report.
    assert result.output.count("test: not evaluated: ") == 2
    assert "kept no checkpoint" in result.output and "--retrain" in result.output
    assert (a / "report" / "report.html").is_file() and (b / "report" / "report.html").is_file()
    table = (tmp_path / "cmp" / "comparison.csv").read_text()
    assert table.count("\n") == 3 and "\na," in table and "\nb," in table


def test_a_run_summary_and_its_report_load_the_study_once(tmp_path, reads):
    """The tail of `tunefleet run`: summarize, then the report, from one load."""
    path = write_synthetic_study(tmp_path, trials=8, epochs=3, name="ran")
    experiment = Experiment.from_dict(load_yaml(path / "spec.yaml"))
    result = summarize(experiment, 1.5, {}, storage=StudyStorage(str(tmp_path), "ran"))
    assert reads["ran"] == 1
    _report_or_warn(str(path), result.study)
    assert reads == {"ran": 1, "trial directories": 8}
    # The report read the summary the run had just written, as a fresh load would.
    assert result.study.summary == json.loads((path / "summary.json").read_text())
    assert "wall time 1.5 s" in (path / "report" / "report.md").read_text()


def test_many_trials_draw_a_sample_over_bands_of_all(tmp_path):
    study = load_study(write_synthetic_study(tmp_path, trials=60, epochs=6, cut_fraction=0.0))
    every = collect_curves(study, max_lines=100)
    assert every.drawn is None and every.bands == {} and len(every.trials) == 60
    curves = collect_curves(study, max_lines=20)
    assert len(curves.trials) == 60 and len(curves.drawn) == 20 == len(set(curves.drawn))
    assert curves.drawn == collect_curves(study, max_lines=20).drawn  # seeded
    for metric in curves.metrics:
        band = curves.bands[metric]
        assert band["epoch"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        assert (band["low"] <= band["median"]).all() and (band["median"] <= band["high"]).all()
        at_3 = study.history.loc[study.history["epoch"] == 3, metric].to_numpy(dtype=float)
        assert band["median"][2] == pytest.approx(np.median(at_3))
    # The report's default: 200 lines past 200 trials, drawn over the bands.
    many = load_study(write_synthetic_study(tmp_path, trials=230, epochs=2, name="many"))
    default = collect_curves(many)
    assert len(default.drawn) == MAX_CURVES == 200 and set(default.bands) == set(default.metrics)
    png = plot_curves(default, tmp_path / "curves.png")
    assert png.stat().st_size > 5000
    # Per trial, the same arrays a group of the history holds.
    first = study.history[study.history["trial_id"] == curves.trials[7]["trial_id"]]
    assert curves.trials[7]["epoch"].tolist() == first["epoch"].tolist()
    assert curves.trials[7]["val_accuracy"].dtype == np.float64


def test_many_trials_draw_the_best_and_a_sample_in_parallel_coordinates(tmp_path):
    study = load_study(write_synthetic_study(tmp_path, trials=60, epochs=3, cut_fraction=0.0))
    assert collect_parallel(study).drawn is None  # 60 trials: all drawn
    info = collect_parallel(study, max_lines=20)
    assert info.values.shape == (60, 4) and len(info.objective) == 60
    assert len(info.drawn) == 20 == len(set(info.drawn.tolist())) and info.drawn_best == 2
    best_two = np.argsort(-info.objective)[:2]
    assert set(best_two.tolist()) <= set(info.drawn.tolist())
    assert info.drawn.tolist() == collect_parallel(study, max_lines=20).drawn.tolist()  # seeded
    assert plot_parallel(info, tmp_path / "parallel.png").stat().st_size > 5000


def test_importance_on_many_trials_fits_trees_on_samples(tmp_path, monkeypatch):
    monkeypatch.setattr(importance_module, "TREE_SAMPLES", 40)
    path = write_synthetic_study(tmp_path, trials=90, epochs=5, seed=3, cut_fraction=0.0)
    report = build_study_report(path, evaluate=False)
    result = report.importance
    assert result.tree_samples == 40 and result.n_trials == 90
    assert result.names[0] == "learning_rate" and result.share[0] > 0.6
    assert "bootstrap sample of 40 of the 90 trials" in (report.out_dir / "report.md").read_text()
