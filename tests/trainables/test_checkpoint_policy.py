"""When a trial checkpoints (output.checkpoint_every): at improvements of the objective and at
its last epoch, every epoch under a scheduler that pauses trials (HyperBand), or every N epochs
when the spec says N. The Reporter is driven epoch by epoch with a real Keras model; only
``tune.report`` is captured (this is the reporter's unit test; tests/study/test_kept_checkpoints.py
checks the same in real studies)."""

from __future__ import annotations

import pytest

from tests.conftest import tiny_spec
from tunefleet import Experiment
from tunefleet.trainables.reporter import ExecutionState, Reporter, checkpoint_interval

# val_accuracy per epoch: epochs 1 and 4 improve, 5 is the last.
SCORES = [0.5, 0.4, 0.3, 0.6, 0.2]


def _experiment(tmp_path, scheduler: str, every=None) -> Experiment:
    sched = {"name": scheduler}
    if scheduler == "median":
        sched.update(grace_period=1, min_samples_required=2)
    output = {"storage": str(tmp_path / "results")}
    if every is not None:
        output["checkpoint_every"] = every
    return Experiment.from_dict(tiny_spec(tmp_path, scheduler=sched, output=output,
                                          train={"epochs": len(SCORES)}))


class _Trial:
    replicas = 1

    def __init__(self):
        import keras

        self.model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        self.model.compile(optimizer="adam", loss="mse")


def _checkpointed_epochs(experiment: Experiment, monkeypatch) -> list[int]:
    import ray.tune

    reported: list[tuple[int, bool]] = []
    monkeypatch.setattr(ray.tune, "report", lambda metrics, checkpoint=None: reported.append(
        (metrics["epoch"], checkpoint is not None)))
    monkeypatch.setattr("tunefleet.trainables.reporter._node_id", lambda: "")
    reporter = Reporter(experiment, len(SCORES), None)
    state, trials = ExecutionState(1), [_Trial()]
    for epoch, score in enumerate(SCORES, start=1):
        state.last[0] = {"loss": 1.0, "val_accuracy": score}
        reporter.report(epoch, state, trials, [[]], 0.01, 1, 0.1)
    assert [e for e, _ in reported] == list(range(1, len(SCORES) + 1))
    return [e for e, saved in reported if saved]


@pytest.mark.parametrize("scheduler", ["fifo", "asha", "median"])
def test_auto_checkpoints_only_improvements_and_the_end(tmp_path, monkeypatch, scheduler):
    experiment = _experiment(tmp_path, scheduler)
    assert experiment.output.checkpoint_every == "auto"
    assert checkpoint_interval(experiment) is None
    assert _checkpointed_epochs(experiment, monkeypatch) == [1, 4, 5]


def test_auto_checkpoints_every_epoch_under_hyperband(tmp_path, monkeypatch):
    experiment = _experiment(tmp_path, "hyperband")
    assert checkpoint_interval(experiment) == 1
    assert _checkpointed_epochs(experiment, monkeypatch) == [1, 2, 3, 4, 5]


def test_an_explicit_interval_is_honoured(tmp_path, monkeypatch):
    experiment = _experiment(tmp_path, "fifo", every=2)
    assert checkpoint_interval(experiment) == 2
    assert isinstance(checkpoint_interval(experiment), int)
    assert _checkpointed_epochs(experiment, monkeypatch) == [1, 2, 4, 5]
    assert checkpoint_interval(_experiment(tmp_path, "hyperband", every=1)) == 1
