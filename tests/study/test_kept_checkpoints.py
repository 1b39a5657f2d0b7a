"""Lean checkpoints in real studies: what each scheduler's trials checkpoint by default
(output.checkpoint_every: auto), an explicit interval, and keep_checkpoints: best_trials
(which deletes the checkpoints of finished trials that cannot be among the best, and leaves the
best trial's for the report). The per-scheduler checks read the session's shared studies
(tests/conftest.py); one small study of its own covers the rest."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import tiny_spec
from tunefleet import run
from tunefleet.spec.sections import OutputSpec
from tunefleet.study.pruning import CheckpointPruner


def _rows(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()
            if line.strip()]


def _trial_dirs(path: Path) -> list[Path]:
    return sorted(p for p in Path(path).glob("trial_*") if (p / "result.json").exists())


def _expected_auto(rows: list[dict], metric: str, mode: str) -> list[int]:
    """Epochs that improve on the trial's best so far, and the one that ended it."""
    best, due = None, []
    for row in rows:
        value = row.get(metric)
        improved = value is not None and math.isfinite(value) and (
            best is None or (value > best if mode == "max" else value < best))
        if improved:
            best = value
        if improved or row.get("stop_reason"):
            due.append(row["epoch"])
    return due


@pytest.mark.parametrize("fixture", ["asha_study", "breast_cancer_study"])
def test_fifo_and_asha_checkpoint_at_improvements_and_the_end(request, fixture):
    study = request.getfixturevalue(fixture)
    objective = study.spec["objective"]
    dirs = _trial_dirs(study.result.path)
    assert len(dirs) >= 4
    for trial_dir in dirs:
        rows = _rows(trial_dir)
        saved = [r["epoch"] for r in rows if r.get("checkpoint_dir_name")]
        assert saved == _expected_auto(rows, objective["metric"], objective["mode"]), trial_dir
    if fixture == "asha_study":  # 6 epochs: some epoch did not improve and wrote nothing
        skipped = sum(len(_rows(d)) - sum(bool(r.get("checkpoint_dir_name")) for r in _rows(d))
                      for d in dirs)
        assert skipped > 0


def test_hyperband_checkpoints_every_epoch(hyperband_study):
    for trial_dir in _trial_dirs(hyperband_study.path):
        rows = _rows(trial_dir)
        assert rows and all(isinstance(r.get("checkpoint_dir_name"), str) for r in rows), trial_dir


@pytest.fixture(scope="module")
def best_trials_study(ray_local, tmp_path_factory):
    """5 FIFO trials of 3 epochs on breast_cancer, checkpoint_every 2, keep_checkpoints
    best_trials, val_loss minimised (continuous: no ties at the cut)."""
    out = tmp_path_factory.mktemp("best_trials")
    spec = tiny_spec(out, name="lean", data={"dataset": "breast_cancer"},
                     model={"builder": "mlp", "params": {"layers": 1, "units": 8}},
                     search={"algorithm": "random", "num_samples": 5, "seed": 4},
                     objective={"metric": "val_loss", "mode": "min"},
                     output={"storage": str(out / "results"), "checkpoint_every": 2,
                             "keep_checkpoints": "best_trials"})
    return run(spec)


def test_an_explicit_interval_is_honoured(best_trials_study):
    for trial_dir in _trial_dirs(best_trials_study.path):
        rows = _rows(trial_dir)
        assert [r["epoch"] for r in rows] == [1, 2, 3]
        assert isinstance(rows[1].get("checkpoint_dir_name"), str)  # epoch 2: every 2 epochs
        assert isinstance(rows[2].get("checkpoint_dir_name"), str)  # the last epoch


def test_best_trials_keeps_the_top_trials_checkpoints_and_the_report_evaluates_the_best(
        best_trials_study, tmp_path):
    from tunefleet.reports import evaluate_best, load_study

    dirs = _trial_dirs(best_trials_study.path)
    assert len(dirs) == 5
    best = {d.name: min(r["val_loss"] for r in _rows(d)) for d in dirs}
    kept = sorted(d.name for d in dirs if any(d.glob("checkpoint_*")))
    assert kept == sorted(sorted(best, key=best.__getitem__)[:OutputSpec.BEST_TRIALS_KEPT])
    study = load_study(best_trials_study.path)
    report = evaluate_best(study, tmp_path / "report")
    assert report is not None and f"trial_{report.trial_id}" == min(best, key=best.__getitem__)
    assert isinstance(report.metrics["accuracy"], float) and report.metrics["accuracy"] > 0.5


class _FakeTrial:
    def __init__(self, trial_id: str, status: str):
        self.trial_id, self.status = trial_id, status


def test_the_pruner_deletes_only_finished_trials_out_of_the_top(monkeypatch):
    deleted: list[str] = []
    monkeypatch.setattr("tunefleet.study.pruning._delete_checkpoints",
                        lambda trial: deleted.append(trial.trial_id))
    pruner = CheckpointPruner("val_accuracy", "max", keep=2)
    trials = [_FakeTrial("a", "TERMINATED"), _FakeTrial("b", "RUNNING"),
              _FakeTrial("c", "TERMINATED"), _FakeTrial("d", "PAUSED"),
              _FakeTrial("e", "TERMINATED"), _FakeTrial("f", "ERROR")]
    scores = {"a": 0.9, "b": 0.95, "c": 0.5, "d": 0.4, "e": 0.9, "f": 0.1}
    for t in trials:
        pruner.on_trial_result(0, trials, t, {"val_accuracy": scores[t.trial_id],
                                              "stop_reason": ""})
    # A failure row (NaN objective) changes no score.
    pruner.on_trial_result(0, trials, trials[2], {"val_accuracy": math.nan,
                                                  "stop_reason": "out_of_memory"})
    assert pruner.prune(trials) == ["c"]  # a and e tie behind b: both stay; d, f not finished
    assert deleted == ["c"]
    trials[3].status = "TERMINATED"
    assert pruner.prune(trials) == ["d"] and pruner.prune(trials) == []


def test_a_resumed_studys_pruner_keeps_trials_it_has_no_score_for(monkeypatch):
    """After a resume, trials that finished before it report nothing again: the pruner does
    not know their scores, so it never deletes their checkpoints (one may be the best)."""
    deleted: list[str] = []
    monkeypatch.setattr("tunefleet.study.pruning._delete_checkpoints",
                        lambda trial: deleted.append(trial.trial_id))
    pruner = CheckpointPruner("val_loss", "min", keep=1)
    earlier = [_FakeTrial(name, "TERMINATED") for name in ("old_best", "old_other")]
    new = [_FakeTrial(f"new{i}", "TERMINATED") for i in range(4)]
    for i, t in enumerate(new):
        pruner.on_trial_result(0, new, t, {"val_loss": 1.0 + i, "epoch": 1, "stop_reason": ""})
    assert pruner.prune(earlier + new) == ["new1", "new2", "new3"]
    assert deleted == ["new1", "new2", "new3"]  # the earlier trials keep theirs


def test_an_epoch_repeated_after_a_retry_counts_with_its_latest_value(monkeypatch):
    """As in the summary: a retried trial's epoch 2 measured again replaces the first value."""
    monkeypatch.setattr("tunefleet.study.pruning._delete_checkpoints", lambda trial: None)
    pruner = CheckpointPruner("val_accuracy", "max", keep=1)
    a, b = _FakeTrial("a", "TERMINATED"), _FakeTrial("b", "TERMINATED")
    for epoch, value in ((1, 0.5), (2, 0.99), (2, 0.6)):  # epoch 2 again, after a retry
        pruner.on_trial_result(0, [a, b], a, {"val_accuracy": value, "epoch": epoch,
                                              "stop_reason": ""})
    pruner.on_trial_result(0, [a, b], b, {"val_accuracy": 0.8, "epoch": 1, "stop_reason": ""})
    assert pruner.scores == {"a": 0.6, "b": 0.8}
    assert isinstance(pruner.scores["a"], float)
    assert pruner.prune([a, b]) == ["a"]


def test_the_failure_tracker_pickles_without_the_trial_list(tmp_path):
    """Ray pickles the stopper into every experiment-state snapshot: Ray's list of trials, which
    the tracker holds for its own use, must not go with it (it made a 200-trial study's
    experiment_state file 12 MB, rewritten at every snapshot)."""
    from ray import cloudpickle

    from tunefleet.storage import study_storage
    from tunefleet.study.failure_policy import FailureTracker

    tracker = FailureTracker(study_storage(tmp_path / "study"), 3, None)
    trials = [_FakeTrial(f"t{i}", "TERMINATED") for i in range(200)]
    for t in trials:
        t.payload = "x" * 10_000  # what a real Trial carries: results, storage, config
    tracker.on_step_begin(0, trials)
    assert tracker._trials is trials  # still there for the tracker itself
    restored = cloudpickle.loads(cloudpickle.dumps(tracker))
    assert restored._trials == [] and restored.max_consecutive == 3
    assert len(cloudpickle.dumps(tracker)) < 100_000


def _checkpoint_rows(trial_dir: Path) -> list[dict]:
    return [r for r in _rows(trial_dir) if r.get("checkpoint_dir_name")]


@pytest.mark.parametrize("fixture", ["asha_study", "breast_cancer_study", "hyperband_study"])
def test_each_trial_keeps_its_best_checkpoint_and_its_latest(request, fixture):
    """output.num_to_keep (1 here): on disk, each trial's best checkpoint by the objective and
    its latest, nothing else (CheckpointKeeper; Ray itself keeps them all)."""
    from tunefleet.spec import Experiment

    study = request.getfixturevalue(fixture)
    path = (study if fixture == "hyperband_study" else study.result).path
    objective = Experiment.from_yaml(path / "spec.yaml").objective
    metric, mode = objective.metric, objective.mode
    superseded = 0
    for trial_dir in _trial_dirs(path):
        rows = _checkpoint_rows(trial_dir)
        on_disk = {p.name for p in trial_dir.glob("checkpoint_*")}
        sign = 1 if mode == "max" else -1
        best = max(sign * r[metric] for r in rows)
        latest = rows[-1]["checkpoint_dir_name"]
        assert latest in on_disk, trial_dir
        best_kept = [r for r in rows if r["checkpoint_dir_name"] in on_disk
                     and sign * r[metric] == best]
        assert best_kept, (trial_dir, on_disk)
        assert on_disk <= {latest, best_kept[-1]["checkpoint_dir_name"]}, (trial_dir, on_disk)
        superseded += len(rows) - len(on_disk)
    assert superseded > 0  # some trial wrote more than it kept: deletion was tested


class _Trial:
    """The parts of Ray's Trial the keeper reads: its id and its run metadata (Ray's own
    _TrainingRunMetadata and _CheckpointManager, with real checkpoint directories)."""

    def __init__(self, trial_id: str):
        from ray.train import CheckpointConfig
        from ray.train._internal.checkpoint_manager import _CheckpointManager
        from ray.tune.trainable.metadata import _TrainingRunMetadata

        self.trial_id = trial_id
        self.run_metadata = _TrainingRunMetadata()
        self.run_metadata.checkpoint_manager = _CheckpointManager(CheckpointConfig(
            num_to_keep=None, checkpoint_score_attribute="val_accuracy",
            checkpoint_score_order="max"))


def test_superseded_checkpoints_go_only_once_no_recent_snapshot_names_them(tmp_path):
    """As Ray drives it: on_checkpoint, then Ray registers the checkpoint; get_state as Ray
    writes an experiment snapshot; on_experiment_end after its last one. A checkpoint that
    some snapshot named as the trial's latest stays until two later snapshots name another
    (a resume from any of them finds it); the best and the latest always stay."""
    from ray.train import Checkpoint
    from ray.train._internal.session import _TrainingResult

    from tunefleet.study.checkpoint_keeper import CheckpointKeeper

    keeper, trial = CheckpointKeeper(keep=1), _Trial("t")
    manager = trial.run_metadata.checkpoint_manager

    def checkpoint(name: str, score: float) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "weights").write_text(name)
        keeper.on_checkpoint(0, [trial], trial, None)
        manager.register_checkpoint(_TrainingResult(Checkpoint.from_directory(
            str(tmp_path / name)), {"val_accuracy": score}))

    def on_disk() -> set[str]:
        return {p.name for p in tmp_path.iterdir()}

    checkpoint("c1", 0.5)
    checkpoint("c2", 0.7)  # best and latest: c1 superseded before any snapshot named it
    assert on_disk() == {"c1", "c2"}  # Ray itself deletes nothing (num_to_keep=None)
    assert keeper.get_state() is None  # snapshot 1 (names c2); nothing to restore later
    assert on_disk() == {"c2"} and keeper.deleted == 1
    assert [r.checkpoint.path for r in manager._checkpoint_results] == [str(tmp_path / "c2")]
    checkpoint("c3", 0.6)  # the latest, not the best: both stay
    keeper.get_state()  # snapshot 2 (names c3)
    assert on_disk() == {"c2", "c3"}
    checkpoint("c4", 0.8)  # best and latest: c2 and c3 superseded
    keeper.get_state()  # snapshot 3: c2 goes; c3 was snapshot 2's latest
    assert on_disk() == {"c3", "c4"}
    keeper.get_state()  # snapshot 4: snapshots 2 and 3 named c3 and c4
    assert on_disk() == {"c3", "c4"}
    keeper.get_state()  # snapshot 5: the last two named only c4
    assert on_disk() == {"c4"} and keeper.deleted == 3
    assert manager.best_checkpoint_result.checkpoint.path == str(tmp_path / "c4")

    other = _Trial("u")  # the study ends right after Ray's final snapshot
    trial, manager = other, other.run_metadata.checkpoint_manager
    checkpoint("d1", 0.9)
    checkpoint("d2", 0.4)  # latest; d1 is the best
    keeper.get_state()  # names d2
    checkpoint("d3", 0.3)  # latest; d2 superseded
    keeper.get_state()  # Ray's final snapshot names d3; the one before named d2
    assert {"d1", "d2", "d3"} <= on_disk()
    keeper.on_experiment_end([other])  # also after an error, with no final snapshot: kept
    assert {"d1", "d2", "d3"} <= on_disk()
    keeper.finish()  # Tuner.fit returned: the final snapshot is on storage, d2 can go
    assert {"d1", "d3"} <= on_disk() and "d2" not in on_disk()


def test_the_stopper_pickles_as_the_running_studys(monkeypatch):
    """Ray pickles the stopper into every experiment snapshot and, on resume, puts the
    unpickled one in place of the run's own: that must be the resumed run's stopper (with
    its failure policy and budgets), wherever the study has moved, and a few bytes, not the
    classes' code."""
    from ray import cloudpickle
    from ray.tune.stopper import NoopStopper, Stopper

    from tunefleet.study import live_stopper
    from tunefleet.study.live_stopper import study_stopper

    class Inner(Stopper):
        def __init__(self, stop: bool):
            self.stop = stop

        def __call__(self, trial_id, result):
            return self.stop

        def stop_all(self):
            return self.stop

    monkeypatch.setattr(live_stopper, "_CURRENT", None)
    first = study_stopper(Inner(False))
    assert isinstance(first, Stopper) and first("t", {}) is False and first.stop_all() is False
    snapshot = cloudpickle.dumps(first)
    assert len(snapshot) < 300
    assert cloudpickle.loads(snapshot) is first
    resumed = study_stopper(Inner(True))  # a resumed run of the study (moved or not)
    restored = cloudpickle.loads(snapshot)
    assert restored is resumed and restored.stop_all() is True
    monkeypatch.setattr(live_stopper, "_CURRENT", None)  # read where no study runs
    assert isinstance(cloudpickle.loads(snapshot), NoopStopper)


def test_a_studys_snapshot_names_its_stopper_and_a_resume_gets_the_running_one(asha_study):
    """What Ray wrote for a real study: its stopper is a reference of a few bytes, and read
    back as Ray's resume reads it, it is the stopper of the run now driving the study."""
    from ray.tune.utils.serialization import _loads_with_cloudpickle

    from tunefleet.study import live_stopper

    result = asha_study.result
    text = max(result.path.glob("experiment_state-*.json")).read_text()
    assert len(json.dumps(json.loads(text)["runner_data"]["_stopper"])) < 1000
    restored = _loads_with_cloudpickle(text)["runner_data"]["_stopper"]
    assert restored is live_stopper._CURRENT and restored is not None
