"""What a trial reports, read back from a real tiny study: the best epoch is the model
evaluated, the learning rate is the one each epoch trained with, and times are not rounded."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import tiny_spec
from tunefleet import run
from tunefleet.reports.evaluate import evaluate_best
from tunefleet.reports.load import load_study
from tunefleet.spec import Experiment
from tunefleet.trainables.reporter import ExecutionState, Reporter

pytestmark = pytest.mark.slow
BUILDER = "tests.trainables.fault_builders:fault_mlp"
LR = 0.01


@pytest.fixture(scope="module")
def forgetful(ray_local, tmp_path_factory):
    """One trial whose model forgets its weights after epoch 1 (so epoch 1 is its best), with
    checkpoints due only at its last epoch, and ReduceLROnPlateau halving the rate after the
    epoch-2 plateau."""
    tmp = tmp_path_factory.mktemp("forgetful")
    spec = tiny_spec(tmp, name="forgetful",
                     model={"builder": BUILDER, "params": {"forget_on": [16]}},
                     search_space={"units": {"type": "choice", "values": [16]}},
                     search={"algorithm": "random", "num_samples": 1, "seed": 4},
                     train={"epochs": 3, "batch_size": 64, "learning_rate": LR,
                            "reduce_lr_on_plateau": {"monitor": "val_accuracy", "mode": "max",
                                                     "patience": 1, "factor": 0.5}},
                     output={"storage": str(tmp / "results"), "checkpoint_every": 10})
    result = run(spec)
    return result, load_study(result.path), tmp


def test_the_model_evaluated_is_the_best_epoch(forgetful):
    result, study, tmp = forgetful
    best = result.summary["best"]
    assert best["epoch"] == 1  # the model forgot after epoch 1: no later epoch beats it
    report = evaluate_best(study, tmp / "report")
    saved = json.loads((tmp / "report" / "test_metrics.json").read_text())
    assert saved["epoch"] == report.epoch == best["epoch"]
    assert isinstance(saved["epoch"], int)
    # The restored checkpoint's validation value is the reported best, exactly.
    assert saved["validation"]["val_accuracy"] == best["metrics"]["val_accuracy"]
    # Epoch 1's model, not the forgotten one, which predicts one class (chance: 0.1).
    assert report.metrics["accuracy"] > 0.3


def test_lr_is_the_rate_each_epoch_trained_with(forgetful):
    _, study, _ = forgetful
    lr = study.history.sort_values("epoch")["lr"].tolist()
    # ReduceLROnPlateau halves the rate at the end of epoch 2 (no improvement on epoch 1):
    # epoch 3 trains at half the rate, epochs 1 and 2 at the full rate.
    assert lr == pytest.approx([LR, LR, LR / 2], rel=1e-6)


def test_elapsed_times_are_not_whole_seconds(forgetful):
    result, study, _ = forgetful
    trial_dir = result.path / f"trial_{study.trials['trial_id'][0]}"
    rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
    assert all(isinstance(r["reported_at"], float) for r in rows)
    history = study.history.sort_values("epoch")
    # Between two epochs, elapsed time grows by what the trial measured (Ray's timestamp is
    # whole seconds: steps of 0 or 1 s).
    steps = np.diff(history["elapsed_s"].to_numpy(float))
    measured = np.diff(history["time_total_s"].to_numpy(float))
    assert np.abs(steps - measured).max() < 0.25, (steps, measured)


def nan_at_epoch_2(info, units: int = 16):
    """small_mlp whose epoch 2 logs a NaN loss with a perfect val_accuracy (set by a callback
    that runs before tunefleet's): the best-looking epoch is one whose weights are lost. A
    builder for the trial processes, imported by name."""
    import keras

    from tests.builders import small_mlp

    class Poison(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1 and logs is not None:
                logs.update(loss=float("nan"), val_accuracy=1.0)

    model = small_mlp(info, units=units)
    fit = model.fit

    def fit_poisoned_first(*args, callbacks=None, **kwargs):
        return fit(*args, callbacks=[Poison(), *(callbacks or [])], **kwargs)

    model.fit = fit_poisoned_first
    return model


def test_a_nan_loss_epoch_is_not_the_best_and_the_best_is_the_model_evaluated(ray_local, tmp_path):
    spec = tiny_spec(tmp_path, name="nan_best",
                     model={"builder": "tests.trainables.test_trial_results:nan_at_epoch_2"},
                     search_space={"units": {"type": "choice", "values": [16]}},
                     search={"algorithm": "random", "num_samples": 1, "seed": 4},
                     train={"epochs": 3, "batch_size": 64})
    result = run(spec)
    study = load_study(result.path)
    rows = study.history.sort_values("epoch")
    assert rows["epoch"].tolist() == [1, 2]  # the NaN epoch stays in the history
    assert rows["val_accuracy"].iloc[1] == 1.0 and math.isnan(rows["loss"].iloc[1])
    assert study.trials.loc[0, "status"] == "failed"
    best = result.summary["best"]
    assert best["epoch"] == 1 and best["metrics"]["val_accuracy"] < 1.0
    assert best["checkpoint"] and best["checkpoint"].endswith(rows["checkpoint_dir_name"].iloc[0])
    report = evaluate_best(study, tmp_path / "report")
    saved = json.loads((tmp_path / "report" / "test_metrics.json").read_text())
    assert saved["epoch"] == report.epoch == best["epoch"]
    assert saved["validation"]["val_accuracy"] == best["metrics"]["val_accuracy"]


@pytest.mark.filterwarnings("ignore:`report` is meant to only be called")
def test_the_reporter_never_counts_a_nan_loss_epoch_as_an_improvement(tmp_path):
    """Outside a Ray session ``tune.report`` does nothing: the reporter's own decision is tested."""
    reporter = Reporter(Experiment.from_dict(tiny_spec(tmp_path)), epochs=3, active=None, best=0.5)
    state = ExecutionState(1)
    state.last[0] = {"loss": math.nan, "accuracy": 0.9, "val_loss": 0.2, "val_accuracy": 0.99}
    reason = reporter.report(2, state, [SimpleNamespace(replicas=1)], [[]], lr=0.01, trained=1,
                             epoch_time=0.1)
    assert reason == "nan_loss"
    assert reporter.best == 0.5 and isinstance(reporter.best, float)
