"""Studies kept at a URI: a real S3 API (moto's server on 127.0.0.1) behind ``output.storage:
s3://...``. Ray Tune writes the trials there, tunefleet its own files; failure records and
retries work through it; the report and resume work from the URI alone."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import tiny_spec
from tunefleet import Experiment, SpecError, resume, run
from tunefleet.storage import (StudyStorage, cache_root, experiment_storage, split_study_location,
                               study_storage)


def test_locations_split_and_mirror(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEFLEET_CACHE", str(tmp_path / "cache"))
    uri = "s3://bucket/team/studies/mnist?endpoint_override=127.0.0.1:9000&scheme=http"
    root, name = split_study_location(uri)
    assert (root, name) == (("s3://bucket/team/studies?endpoint_override=127.0.0.1:9000"
                             "&scheme=http"), "mnist")
    storage = study_storage(uri)
    assert storage.remote and storage.reference == uri
    assert storage.location == "s3://bucket/team/studies/mnist"  # no query
    assert storage.local_dir.is_relative_to(cache_root() / "studies" / "s3")
    assert "endpoint_override" not in str(storage.local_dir)
    assert study_storage(storage.reference).local_dir == storage.local_dir
    local = StudyStorage(str(tmp_path / "results"), "digits")
    assert not local.remote and local.local_dir == tmp_path / "results" / "digits"
    monkeypatch.chdir(tmp_path)  # a relative path is resolved once, where the storage is made
    relative = StudyStorage("results", "digits")
    assert relative.root == str((tmp_path / "results").resolve())
    monkeypatch.chdir(tmp_path / "cache" if (tmp_path / "cache").is_dir() else "/")
    assert relative.local_dir == (tmp_path / "results" / "digits").resolve()
    assert local.ray_storage() == {"storage_path": str(tmp_path / "results")}
    assert split_study_location(f"file://{tmp_path}/results/digits") == (
        str(tmp_path / "results"), "digits")


def test_the_old_key_output_dir_still_reads(tmp_path):
    spec = tiny_spec(tmp_path)
    spec["output"] = {"dir": str(tmp_path / "old")}
    experiment = Experiment.from_dict(spec)
    assert experiment.output.storage == str(tmp_path / "old")
    assert experiment.to_dict()["output"]["storage"] == str(tmp_path / "old")


@pytest.fixture(scope="module")
def s3_endpoint():
    """A real S3 API on loopback, and a bucket in it."""
    server_module = pytest.importorskip("moto.server", reason="moto[s3] and flask (the test "
                                        "extra) provide the local S3 server")
    import pyarrow.fs as pafs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    query = f"endpoint_override={host}:{port}&scheme=http&region=us-east-1"
    fs, _ = pafs.FileSystem.from_uri(f"s3://bucket?{query}"
                                     "&allow_bucket_creation=true")
    fs.create_dir("bucket")
    yield fs, query
    server.stop()


def _keys(fs, prefix):
    import pyarrow.fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
    return {i.path.removeprefix(prefix + "/") for i in infos if i.type == pafs.FileType.File}


@pytest.mark.slow
def test_a_study_at_an_s3_uri_runs_retries_reports_and_resumes(ray_local, s3_endpoint, tmp_path,
                                                                monkeypatch):
    from typer.testing import CliRunner

    from tunefleet.cli import app

    fs, query = s3_endpoint
    monkeypatch.setenv("TUNEFLEET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)
    storage = f"s3://bucket/studies?{query}"
    spec = tiny_spec(
        tmp_path, name="remote",
        model={"builder": "tests.builders:flaky_mlp",
               "params": {"oom_on_units": 13, "crash_on_units": 16,
                          "marker": str(tmp_path / "crashed")}},
        search={"algorithm": "grid"},
        # The crashing trial first (one trial at a time): its retry's new process, which
        # replaces the one the crash killed, then trains the other two.
        search_space={"units": {"type": "grid", "values": [16, 13, 8]}},
        train={"epochs": 3, "batch_size": 64}, failure={"max_retries": 1},
        output={"storage": storage})
    result = run(spec)

    assert result.summary["location"] == "s3://bucket/studies/remote"
    rows = result.trials.set_index("config/units")
    ids = {u: rows.loc[u, "trial_id"] for u in (8, 13, 16)}
    keys = _keys(fs, "bucket/studies/remote")
    for name in ("spec.yaml", "data/test.npz", "summary.json", "trials.csv"):
        assert name in keys
    assert f"trial_{ids[8]}/result.json" in keys
    assert any(k.startswith(f"trial_{ids[8]}/checkpoint_") for k in keys)
    # Out of memory: recorded by the trial in the bucket, read there by the driver.
    assert rows.loc[13, "status"] == "failed" and rows.loc[13, "retries"] == 0
    assert "ran out of memory: MemoryError" in rows.loc[13, "reason"]
    assert f"trial_{ids[13]}/failure.json" in keys
    # The killed trial process: retried once from its checkpoint in the bucket.
    assert (tmp_path / "crashed").exists()
    assert rows.loc[16, "status"] == "completed" and rows.loc[16, "retries"] == 1
    assert f"trial_{ids[16]}/retries.json" in keys
    epochs = [json.loads(line)["epoch"] for line in
              (result.path / f"trial_{ids[16]}" / "result.json").read_text().splitlines()]
    assert epochs.count(1) == 1 and epochs[-1] == 3, epochs  # continued, not started over
    print(f"s3 storage: trial process killed after epoch 2, retried from its checkpoint in the "
          f"bucket; epochs reported {epochs}")
    assert not (tmp_path / "results").exists()  # nothing of the study on the local path

    with pytest.raises(SpecError, match=r"^output\.storage: s3://bucket/studies/remote already "
                                        r"holds a study"):
        run(spec)

    # Another machine: no local copy; the report reads the bucket and writes back to it.
    shutil.rmtree(tmp_path / "cache")
    reference = result.location
    out = CliRunner().invoke(app, ["report", reference])
    assert out.exit_code == 0, out.output
    assert "copied to: s3://bucket/studies/remote/report" in out.output
    assert "test: accuracy" in out.output
    assert "report/report.html" in _keys(fs, "bucket/studies/remote")

    # Resuming a finished study from the URI trains nothing again.
    before = {k: fs.get_file_info(f"bucket/studies/remote/{k}").size
              for k in keys if k.endswith("result.json")}
    again = resume(reference)
    assert again.summary["trials"]["total"] == 3 and again.summary["cluster"]["resumed"]
    assert {k: fs.get_file_info(f"bucket/studies/remote/{k}").size for k in before} == before


def test_an_unwritable_bucket_is_refused_before_training(ray_local, s3_endpoint, tmp_path,
                                                         monkeypatch):
    _, query = s3_endpoint
    monkeypatch.setenv("TUNEFLEET_CACHE", str(tmp_path / "cache"))
    spec = tiny_spec(tmp_path, name="nowhere",
                     output={"storage": f"s3://no-such-bucket/x?{query}"})
    with pytest.raises(SpecError, match=r"^output\.storage: cannot write to "
                                        r"s3://no-such-bucket/x/nowhere: .*Check the bucket exists"):
        run(spec)


@pytest.mark.parametrize("location, shown", [
    ("s3://AKIAEXAMPLE:s3cr3t@bucket/studies", "s3://***@bucket..."),
    ("gs://user:s3cr3t@bucket/studies?endpoint_override=x:1", "gs://***@bucket..."),
    # In the query, as pyarrow's option names (S3, GCS, Azure) or boto's and fsspec's.
    ("s3://bucket/studies?access_key=AKIAEXAMPLE&secret_key=s3cr3t&region=us-east-1",
     "s3://bucket/studies?access_key=***&secret_key=***&region=us-east-1"),
    ("s3://bucket/studies?endpoint_override=127.0.0.1:9000&session_token=s3cr3t",
     "s3://bucket/studies?endpoint_override=127.0.0.1:9000&session_token=***"),
    ("s3://bucket/studies?AWS_SECRET_ACCESS_KEY=s3cr3t", "s3://bucket/studies?AWS_SECRET_ACCESS_KEY=***"),
    ("gs://bucket/studies?access_token=s3cr3t", "gs://bucket/studies?access_token=***"),
    ("abfs://account.dfs.core.windows.net/c?client_id=app-id&client_secret=s3cr3t",
     "abfs://account.dfs.core.windows.net/c?client_id=app-id&client_secret=***"),
    ("abfs://account.dfs.core.windows.net/c?sv=2022-11-02&sig=s3cr3t",
     "abfs://account.dfs.core.windows.net/c?sv=2022-11-02&sig=***"),
])
def test_credentials_in_a_uri_are_refused_without_echoing_them(location, shown):
    with pytest.raises(SpecError, match=r"^output\.storage: credentials written in the URI \("
                                        + re.escape(shown) + r"\) would be saved in "
                                        r"spec\.yaml and printed; .*AWS_ACCESS_KEY_ID.*profile"
                       ) as caught:
        Experiment.from_dict({"name": "creds", "output": {"storage": location}})
    assert isinstance(caught.value, SpecError)
    assert "s3cr3t" not in str(caught.value) and "AKIAEXAMPLE" not in str(caught.value)
    study = location.replace("?", "/creds?") if "?" in location else location + "/creds"
    with pytest.raises(SpecError, match=r"^output\.storage: credentials written") as caught:
        study_storage(study)  # `tunefleet resume` and `report` URIs too
    assert "s3cr3t" not in str(caught.value)


def test_overwrite_deletes_a_study_only_never_other_objects(s3_endpoint, tmp_path, monkeypatch):
    fs, query = s3_endpoint
    monkeypatch.setenv("TUNEFLEET_CACHE", str(tmp_path / "cache"))
    with fs.open_output_stream("bucket/keep/precious/notes.txt") as stream:
        stream.write(b"not a study")
    spec = tiny_spec(tmp_path, name="precious", output={"storage": f"s3://bucket/keep?{query}"})
    with pytest.raises(SpecError, match=r"^output\.storage: s3://bucket/keep/precious is not a "
                                        r"tunefleet study \(no spec\.yaml or Ray Tune state; it "
                                        r"holds notes\.txt\), so --overwrite will not delete it"):
        run(spec, overwrite=True)
    assert _keys(fs, "bucket/keep/precious") == {"notes.txt"}
    storage = experiment_storage(Experiment.from_dict(spec))
    with fs.open_output_stream("bucket/keep/precious/spec.yaml") as stream:
        stream.write(b"name: precious\n")
    assert storage.is_study() is True
    storage.clear()  # a study (spec.yaml): deleted
    assert _keys(fs, "bucket/keep/precious") == set()


def test_a_study_at_a_uri_downloads_in_parallel_and_loads_once(s3_endpoint, tmp_path, monkeypatch):
    """Reports at scale: the mirror of a study at a URI is fetched several files at a time,
    holds the same bytes as the source (checkpoints of the best trial only), is read once, and
    a second load downloads nothing."""
    import threading
    import time

    import pandas as pd
    import pyarrow.fs as pafs

    import tunefleet.reports.load as load_module
    import tunefleet.storage as storage_module
    from tunefleet.reports import load_study
    from tunefleet.reports.synthetic import write_synthetic_study

    fs, query = s3_endpoint
    monkeypatch.setenv("TUNEFLEET_CACHE", str(tmp_path / "cache"))
    source = write_synthetic_study(tmp_path / "local", trials=30, epochs=3, name="wide",
                                   cut_fraction=0.0)
    for trial_dir in source.glob("trial_*"):  # every epoch checkpointed, each with a file
        rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
        for i, row in enumerate(rows):
            row["checkpoint_dir_name"] = f"checkpoint_{i:06d}"
            (trial_dir / row["checkpoint_dir_name"]).mkdir()
            (trial_dir / row["checkpoint_dir_name"] / "state.bin").write_bytes(bytes([i]) * 100)
        (trial_dir / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pafs.copy_files(str(source), "bucket/scale/wide", source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=fs)

    lock, state, copied = threading.Lock(), {"in_flight": 0, "peak": 0}, []
    copy_file, load_local = storage_module._copy_file, load_module._load_local

    def watched(filesystem, path, target):
        with lock:
            state["in_flight"] += 1
            state["peak"] = max(state["peak"], state["in_flight"])
        try:
            time.sleep(0.01)  # long enough for the other transfers to start
            copy_file(filesystem, path, target)
        finally:
            with lock:
                state["in_flight"] -= 1
                copied.append(path)

    loads = []
    monkeypatch.setattr(storage_module, "_copy_file", watched)
    monkeypatch.setattr(load_module, "_load_local",
                        lambda path: loads.append(path) or load_local(path))
    uri = f"s3://bucket/scale/wide?{query}"
    study = load_study(uri)
    assert len(loads) == 1 and study.storage is not None and study.storage.remote
    assert state["peak"] > 1  # parallel transfers
    best = study.best_trial()
    local = load_study(source)
    assert best["trial_id"] == local.best_trial()["trial_id"]

    def files(root, with_checkpoints_of):
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()
                and ("checkpoint_" not in str(p.relative_to(root))
                     or p.relative_to(root).parts[0] == with_checkpoints_of)}

    trial = f"trial_{best['trial_id']}"
    mirrored = files(study.path, trial)
    assert mirrored == files(source, trial) and len(mirrored) == 2 + 30 * 2 + 3
    assert not any("checkpoint_" in p.name for p in study.path.glob("trial_*/*")
                   if p.parent.name != trial)
    pd.testing.assert_frame_equal(study.history, local.history)
    assert best["checkpoint"] == str(study.path / trial / Path(local.best_trial()["checkpoint"]).name)
    assert study.trials.drop(columns="checkpoint").equals(local.trials.drop(columns="checkpoint"))

    copied.clear()
    load_study(uri)
    assert copied == []  # everything already here and unchanged
