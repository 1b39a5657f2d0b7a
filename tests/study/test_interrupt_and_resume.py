"""A study interrupted with Ctrl-C labels what it stopped, and `tunefleet resume` applies what
it is told (--address, --set failure.*), refuses what it cannot apply, and fails like a run."""

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
failure: {max_retries: 0, max_consecutive: 1}
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

    # Resumed with a new failure policy: 9 trains now, 13 runs out of memory, which trips
    # failure.max_consecutive=1 in the resumed run: the study fails, as a run would.
    out = CliRunner().invoke(app, ["resume", str(study), "--address", "local", "--no-report",
                                   "--set", "failure.max_retries=1"])
    assert out.exit_code == 1, out.output[-3000:]
    assert "stopped after 1 consecutive failed trials" in out.stderr
    rows = pd.read_csv(study / "trials.csv").set_index("config/units")
    assert rows.loc[9, "status"] == "completed" and rows.loc[13, "status"] == "failed"
    stored = yaml.safe_load((study / "spec.yaml").read_text())
    assert stored["failure"]["max_retries"] == 1 and stored["cluster"]["address"] == "local"


def test_resume_refuses_what_it_cannot_apply(tmp_path):
    out = CliRunner().invoke(app, ["resume", str(tmp_path / "nowhere"), "--set",
                                   "search.num_samples=9"])
    assert out.exit_code == 2
    assert ("--set search.num_samples: cannot change when a study resumes: its trials, searcher "
            "and scheduler continue with the spec it started with, got 'search.num_samples=9'"
            in " ".join(out.stderr.split()))
    # Allowed ones get as far as looking for the study.
    out = CliRunner().invoke(app, ["resume", str(tmp_path / "nowhere"), "--address", "auto",
                                   "--set", "failure.max_consecutive=2"])
    assert out.exit_code == 2 and "holds no study to resume" in out.stderr
