"""The exported ``best_model.keras`` takes raw rows: CSV rows with their text columns, or image
pixels as stored; it predicts what the trained model predicted on the transformed inputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import tiny_spec
from tunefleet.data import load_dataset, load_raw_test_rows, load_test_split, save_test_split
from tunefleet.reports.export import export_best_model
from tunefleet.spec.sections import DataSpec
from tunefleet.trainables.builders import cnn, mlp


def _loaded_predictions(model, data, tmp_path):
    import keras

    save_test_split(data, tmp_path / "data")
    usage = export_best_model(model, tmp_path / "data", tmp_path / "best_model.keras")
    exported = keras.models.load_model(tmp_path / "best_model.keras")
    return exported, load_raw_test_rows(tmp_path / "data"), usage


def test_images_are_saved_raw_and_the_model_takes_raw_pixels(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(60, 6, 6), dtype=np.uint8)  # grayscale, no channel axis
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(60) % 3)
    data = load_dataset(DataSpec(dataset="npz", path=str(tmp_path / "d.npz")))
    model = cnn(data.info, conv_blocks=1, filters=4, dense_units=8)
    exported, raw, usage = _loaded_predictions(model, data, tmp_path)
    with np.load(tmp_path / "data" / "test.npz") as arrays:  # compact: the uint8 pixels only
        assert arrays["x_raw"].dtype == np.uint8 and "x" not in arrays.files
    x_test, y_test, _ = load_test_split(tmp_path / "data")
    assert x_test.dtype == np.float32 and np.array_equal(x_test, data.x_test)  # rebuilt exactly
    assert raw.dtype == np.uint8 and raw.shape == (len(y_test), 6, 6)
    assert np.allclose(exported.predict(raw, verbose=0), model.predict(x_test, verbose=0),
                       atol=1e-6)
    assert "raw images of 6 × 6 pixel values" in usage and "0.00392157" in usage


def test_numeric_arrays_are_standardized_inside_the_exported_model(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(100.0, 20.0, size=(80, 4))
    np.savez(tmp_path / "d.npz", x=x, y=np.linspace(0, 1, 80))
    data = load_dataset(DataSpec(dataset="npz", path=str(tmp_path / "d.npz")))
    model = mlp(data.info, layers=1, units=8)
    exported, raw, usage = _loaded_predictions(model, data, tmp_path)
    assert raw.shape == (16, 4) and abs(raw.mean() - 100) < 20  # raw values, not standardized
    assert np.allclose(exported.predict(raw, verbose=0), model.predict(data.x_test, verbose=0),
                       atol=1e-5)
    assert "raw feature rows (a NumPy array with 4 columns)" in usage


def _survey_csv(tmp_path, n=240):
    """A text column that matters, a number that matters, labels -1/1."""
    rng = np.random.default_rng(5)
    colour = rng.choice(["red", "green", "blue"], n)
    size = rng.normal(50, 10, n)
    score = (colour == "red") * 2.0 + (size - 50) / 10 + rng.normal(0, 0.3, n)
    frame = pd.DataFrame({"size": size.round(2), "colour": colour, "count": rng.integers(0, 5, n),
                          "label": np.where(score > 0.7, 1, -1)})
    frame.to_csv(tmp_path / "survey.csv", index=False)
    return tmp_path / "survey.csv"


def test_csv_model_takes_raw_columns_and_refuses_an_unseen_text_value(tmp_path):
    data = load_dataset(DataSpec(dataset="csv", path=str(_survey_csv(tmp_path)), target="label"))
    model = mlp(data.info, layers=1, units=8)
    exported, rows, usage = _loaded_predictions(model, data, tmp_path)
    assert (tmp_path / "data" / "test_rows.csv").is_file() and len(rows) == len(data.y_test)
    inputs = {name: rows[name].to_numpy() for name in exported.input}
    assert sorted(inputs) == ["colour", "count", "size"]  # the label column is no input
    assert np.allclose(exported.predict(inputs, verbose=0),
                       model.predict(data.x_test, verbose=0), atol=1e-5)
    assert "text columns (`colour`) as text" in usage and "labels = [-1, 1]" in usage
    inputs["colour"] = np.array(["purple"] * len(rows), dtype=object)
    with pytest.raises(Exception, match="purple"):
        exported.predict(inputs, verbose=0)


@pytest.mark.slow
def test_exported_model_predicts_raw_csv_rows_with_the_reported_accuracy(ray_local, tmp_path):
    import keras

    from tunefleet import run
    from tunefleet.reports import build_study_report

    spec = tiny_spec(tmp_path, name="export_me",
                     data={"dataset": "csv", "path": str(_survey_csv(tmp_path)), "target": "label"},
                     model={"builder": "mlp", "params": {"layers": 1, "units": 16}},
                     search_space={"learning_rate": {"type": "choice", "values": [0.01, 0.03]}},
                     search={"algorithm": "random", "num_samples": 1, "seed": 0},
                     train={"epochs": 4, "batch_size": 32})
    study = run(spec)
    report = build_study_report(study.path)
    test = report.test
    assert test is not None and test.labels == ["-1", "1"]  # the original labels, not 0/1

    rows = load_raw_test_rows(study.path / "data")  # the test rows exactly as the CSV has them
    assert list(rows.columns) == ["size", "colour", "count", "label"]
    assert pd.api.types.is_string_dtype(rows["colour"]) and set(rows["label"]) == {-1, 1}
    model = keras.models.load_model(study.path / "report" / "best_model.keras")
    outputs = model.predict({name: rows[name].to_numpy() for name in model.input}, verbose=0)
    labels = json.loads((study.path / "data" / "preprocessing.json").read_text())["labels"]
    assert labels == [-1, 1]
    predicted = np.array([labels[int(p > 0.5)] for p in outputs[:, 0]])
    accuracy = float(np.mean(predicted == rows["label"].to_numpy()))
    assert accuracy == pytest.approx(test.metrics["accuracy"], abs=1e-9)
    assert accuracy > 0.6  # it learned something, so the agreement is not a constant's

    markdown = (study.path / "report" / "report.md").read_text()
    assert "### Predicting with `best_model.keras`" in markdown
    assert "model.predict({name: rows[name].to_numpy() for name in model.input})" in markdown
    assert "labels = [-1, 1]" in markdown and "`colour`" in markdown
    html = (study.path / "report" / "report.html").read_text()
    assert "<pre><code>import pandas as pd" in html and "Predicting with" in html
