"""A warm trial process's compiled model, reused by the next trial of the same architecture,
trains exactly as a fresh build of that trial's configuration and seed would."""

from __future__ import annotations

import numpy as np

from tests.conftest import tiny_spec
from tunefleet import Experiment
from tunefleet.data import load_dataset
from tunefleet.trainables.epoch_data import EpochData
from tunefleet.trainables.keras_trainable import build_trial_model
from tunefleet.trainables.warm_models import WarmModels


def _experiment(tmp_path, **resources) -> Experiment:
    return Experiment.from_dict(tiny_spec(
        tmp_path, data={"dataset": "breast_cancer"},
        # dropout: a random layer, whose seed state must come from the new trial too
        model={"builder": "mlp", "params": {"layers": 1, "units": 8, "dropout": 0.2}},
        train={"epochs": 1, "batch_size": 32, "optimizer": "adam"},
        resources={"cpu": 1, **resources}))


def _trial(experiment, data, seed, lr, batch_size, units=8):
    """One trial of one epoch as _train runs it: build, adopt a kept model, fit, keep."""
    config = {"learning_rate": lr, "batch_size": batch_size, "units": units, "trial_seed": seed}
    warm = WarmModels()
    trials = warm.adopt(experiment, data.info, [build_trial_model(experiment, data.info, config)])
    feed = EpochData(data, batch_size, True, pipeline=True)
    history = trials[0].fit(**feed.epoch(seed, 0), epochs=1, validation_data=feed.validation(),
                            verbose=0, shuffle=False)
    weights = [np.array(w) for w in trials[0].model.get_weights()]
    warm.keep()
    return warm.reused, history.history["loss"][0], weights, trials[0].model


def test_a_reused_model_trains_as_a_fresh_one_of_the_same_seed(tmp_path):
    data = load_dataset(_experiment(tmp_path).data).training
    experiment = _experiment(tmp_path)
    fresh = _trial(experiment, data, seed=5, lr=0.01, batch_size=32)
    assert fresh[0] is False  # nothing kept yet in this process for this architecture
    other = _trial(experiment, data, seed=6, lr=0.003, batch_size=64)  # other seed, rate, batch
    assert other[0] is True and other[3] is fresh[3]
    again = _trial(experiment, data, seed=5, lr=0.01, batch_size=32)
    assert again[0] is True and again[3] is fresh[3]
    assert isinstance(again[1], float)
    assert again[1] == fresh[1]  # the first epoch's loss, exactly
    assert other[1] != fresh[1]
    for a, b in zip(fresh[2], again[2], strict=True):
        np.testing.assert_array_equal(a, b)
    assert float(again[3].optimizer.learning_rate) == np.float32(0.01)


def test_another_architecture_or_fresh_processes_build_anew(tmp_path):
    data = load_dataset(_experiment(tmp_path).data).training
    experiment = _experiment(tmp_path)
    first = _trial(experiment, data, seed=1, lr=0.01, batch_size=32, units=8)
    wider = _trial(experiment, data, seed=1, lr=0.01, batch_size=32, units=12)
    assert wider[0] is False and wider[3] is not first[3]
    assert [w.shape for w in wider[2]][0] == (30, 12)
    no_reuse = _experiment(tmp_path, reuse_processes=False)
    assert _trial(no_reuse, data, seed=1, lr=0.01, batch_size=32)[0] is False
