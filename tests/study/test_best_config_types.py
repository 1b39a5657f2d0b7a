"""The best configuration keeps each hyperparameter's type: an ``Int`` a trial did not use must
not come back as ``24.0`` (pandas makes such a column float), in summary.json, in the trials
table and in ``best_hyperparameters`` (no Ray here: a study written on disk in Ray's layout)."""

from __future__ import annotations

import json

import keras_tuner as kt
import pandas as pd
import pytest

from tunefleet import best_hyperparameters
from tunefleet.reports.load import load_study
from tunefleet.reports.synthetic import write_synthetic_study
from tunefleet.search_spaces.hypermodel_space import HypermodelSpace, Param
from tunefleet.spec import Experiment, load_yaml
from tunefleet.storage import study_storage
from tunefleet.study.summary import summarize, typed_value


@pytest.mark.parametrize("value, declared, expected", [
    (24.0, {"type": "int"}, 24),
    (24, {"type": "int"}, 24),
    (3, {"type": "float"}, 3.0),
    (0.5, {"type": "float"}, 0.5),
    (1, {"type": "boolean"}, True),
    (16.0, {"type": "choice", "values": [16, 32]}, 16),
    (1, {"type": "choice", "values": [True, 1]}, 1),
    ("adam", {"type": "choice", "values": ["adam", "sgd"]}, "adam"),
    (0.1, {"type": "fixed", "value": 0.1}, 0.1),
    (7.0, {}, 7.0),  # nothing declared (a builder study): as recorded
    (float("nan"), {"type": "int"}, None),
    (None, {"type": "int"}, None),
])
def test_typed_value_casts_through_the_declared_type(value, declared, expected):
    got = typed_value(value, declared)
    assert got == expected and type(got) is type(expected)


def _conditional_int_study(tmp_path):
    """A synthetic study made a hypermodel study whose ``Int`` 'units' (and Choice of ints
    'width') only the best trial and one other used."""
    path = write_synthetic_study(tmp_path, trials=6, epochs=3, seed=2, name="cond")
    hp = kt.HyperParameters()
    hp.Float("learning_rate", 1e-4, 1e-1, sampling="log")
    hp.Choice("batch_size", [16, 32, 64, 128])
    hp.Float("dropout", 0.0, 0.5)
    hp.Choice("optimizer", ["adam", "sgd"])
    hp.Int("units", 8, 32, step=8)
    hp.Choice("width", [24, 32])
    # units and width exist under some condition tunefleet does not read back here.
    params = [Param(h.name, h, (("optimizer", ("adam", "sgd")),) if h.name in ("units", "width")
                    else ()) for h in hp.space]
    HypermodelSpace(tuple(params), 1, hp.get_config()).write(path)
    best = load_study(path).best_trial()["trial_id"]
    other = next(d for d in sorted(path.glob("trial_*")) if d.name != f"trial_{best}")
    for trial_dir, units in ((path / f"trial_{best}", 24), (other, 16)):
        config = json.loads((trial_dir / "params.json").read_text())
        (trial_dir / "params.json").write_text(json.dumps({**config, "units": units, "width": 32}))
    return path, best


def test_a_conditional_int_stays_int_in_summary_trials_and_best_hyperparameters(tmp_path):
    path, best = _conditional_int_study(tmp_path)
    study = load_study(path)
    # The trials table: a nullable integer column, not floats with NaN.
    assert str(study.trials["units"].dtype) == "Int64"
    assert study.trials["units"].isna().sum() == 4
    experiment = Experiment.from_dict(load_yaml(path / "spec.yaml"))
    result = summarize(experiment, 1.0, {}, storage=study_storage(str(path)))

    summary = json.loads((path / "summary.json").read_text())
    assert summary["best"]["trial_id"] == best
    for config in (summary["best"]["config"], result.best_config):
        assert config["units"] == 24 and isinstance(config["units"], int)
        assert config["width"] == 32 and isinstance(config["width"], int)
        assert isinstance(config["batch_size"], int) and not isinstance(config["batch_size"], bool)
        assert isinstance(config["learning_rate"], float)
    assert isinstance(summary["best"]["trial_seed"], int)
    # trials.csv writes the ints as ints ("24", never "24.0"); unused ones as empty cells.
    text = (path / "trials.csv").read_text()
    assert "24.0" not in text and "16.0" not in text
    table = pd.read_csv(path / "trials.csv")
    assert sorted(table["config/units"].dropna().tolist()) == [16, 24]

    hp = best_hyperparameters(path)
    assert all(isinstance(hp.values[n], int) for n in ("units", "width", "batch_size"))
    import keras

    layer = keras.layers.Dense(hp.get("units"))  # Keras refuses units=24.0
    assert layer.units == 24


def test_best_hyperparameters_casts_a_summary_written_with_floats(tmp_path):
    """A summary.json written before summaries kept ints (``units: 24.0``) still gives ints."""
    path, _ = _conditional_int_study(tmp_path)
    experiment = Experiment.from_dict(load_yaml(path / "spec.yaml"))
    summarize(experiment, 1.0, {}, storage=study_storage(str(path)))
    summary = json.loads((path / "summary.json").read_text())
    summary["best"]["config"].update(units=24.0, width=32.0, batch_size=float(
        summary["best"]["config"]["batch_size"]))
    (path / "summary.json").write_text(json.dumps(summary))
    hp = best_hyperparameters(path)
    assert hp.values["units"] == 24 and isinstance(hp.values["units"], int)
    assert isinstance(hp.values["width"], int) and isinstance(hp.values["batch_size"], int)
