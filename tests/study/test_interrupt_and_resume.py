"""A study interrupted with Ctrl-C labels what it stopped, and `tunefleet resume` applies what
it is told (--address, --set failure.max_consecutive), refuses what it cannot apply, and fails like a run."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tunefleet.cli import app

SPEC = """
name: interrupted
data: {dataset: digits}
model:
  builder: "tests.study.signalling_builders:interrupting_mlp"
  params: {interrupt_on_units: 9, oom_on_units: 13, driver_pid: %(pid)d, marker: "%(marker)s"}
train: {epochs: 2, batch_size: 64}
search_space:
  units: {type: grid, values: [9, 13]}
search: {algorithm: grid, max_concurrent: 1}
failure: {max_retries: 0, max_consecutive: 2}
output: {storage: results}
"""


@pytest.mark.slow
def test_an_interrupted_study_is_stopped_by_study_and_its_resume_fails_like_a_run(
        ray_local, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(SPEC % {"pid": os.getpid(),
                                                "marker": tmp_path / "interrupted_once"})
    study = tmp_path / "results" / "interrupted"

    # Trial 9 sends Ctrl-C while it runs; Ray ends the run and returns; 13 never started.
    first = CliRunner().invoke(app, ["run", "spec.yaml", "--no-report"])
    assert first.exit_code == 1, first.output[-3000:]
    assert "the study was interrupted (Ctrl-C)" in first.stderr
    assert f"tunefleetresume{study}`" in "".join(first.stderr.split())  # rich wraps lines
    trials = pd.read_csv(study / "trials.csv")
    assert trials["status"].tolist() == ["stopped_by_study"], trials[["status", "reason"]]
    assert trials["reason"][0].startswith("the study was interrupted (Ctrl-C)")

    # `run SPEC --resume` with a changed search is refused, not silently ignored.
    changed = CliRunner().invoke(app, ["run", "spec.yaml", "--resume", "--no-report",
                                       "--set", "train.epochs=3"])
    assert changed.exit_code == 2
    assert "--set train.epochs: cannot change when a study resumes" in " ".join(
        changed.stderr.split())

    # A retry budget cannot change: Ray keeps it with each trial it restores.
    retries = CliRunner().invoke(app, ["resume", str(study), "--no-report",
                                       "--set", "failure.max_retries=1"])
    assert retries.exit_code == 2
    assert "Ray keeps each trial's retry budget with the trial" in " ".join(
        retries.stderr.split())

    # Resumed from the SPEC, edited to a stricter failure policy, which `run --resume` applies
    # rather than ignores: 9 trains now, 13 runs out of memory, which trips
    # failure.max_consecutive=1 (the study's 2 would not): the study fails, as a run would.
    (tmp_path / "spec.yaml").write_text((tmp_path / "spec.yaml").read_text().replace(
        "max_consecutive: 2", "max_consecutive: 1"))
    out = CliRunner().invoke(app, ["run", "spec.yaml", "--resume", "--address", "local",
                                   "--no-report"])
    assert out.exit_code == 1, out.output[-3000:]
    assert "stopped after 1 consecutive failed trials" in out.stderr
    rows = pd.read_csv(study / "trials.csv").set_index("config/units")
    assert rows.loc[9, "status"] == "completed" and rows.loc[13, "status"] == "failed"
    stored = yaml.safe_load((study / "spec.yaml").read_text())
    assert stored["failure"]["max_consecutive"] == 1 and stored["cluster"]["address"] == "local"
    assert stored["failure"]["max_retries"] == 0


def test_resume_refuses_what_it_cannot_apply(tmp_path):
    out = CliRunner().invoke(app, ["resume", str(tmp_path / "nowhere"), "--set",
                                   "search.seed=9"])
    assert out.exit_code == 2
    assert ("--set search.seed: cannot change when a study resumes: its trials, searcher "
            "and scheduler continue with the spec it started with, got 'search.seed=9'"
            in " ".join(out.stderr.split()))
    # Allowed ones get as far as looking for the study.
    out = CliRunner().invoke(app, ["resume", str(tmp_path / "nowhere"), "--address", "auto",
                                   "--set", "failure.max_consecutive=2"])
    assert out.exit_code == 2 and "holds no study to resume" in out.stderr


def test_a_resumes_spec_changes_are_applied_where_allowed_and_refused_elsewhere():
    from tunefleet import Experiment, SpecError
    from tunefleet.study.runner import _resume_overrides, _section_changes

    stored = Experiment.from_dict({"name": "s", "failure": {"max_consecutive": 2}})
    given = Experiment.from_dict({"name": "s", "failure": {"max_consecutive": 1},
                                  "cluster": {"address": "auto"}})
    changes = _resume_overrides(_section_changes(stored, given))
    assert sorted(changes) == ['cluster.address="auto"', "failure.max_consecutive=1"]
    more_retries = Experiment.from_dict({"name": "s", "failure": {"max_consecutive": 2,
                                                                   "max_retries": 3}})
    with pytest.raises(SpecError, match="failure.max_retries: cannot change when a study "
                       "resumes: Ray keeps each trial's retry budget"):
        _resume_overrides(_section_changes(stored, more_retries))
