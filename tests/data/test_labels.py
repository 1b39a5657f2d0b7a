"""Labels reach the model as contiguous class indices with their original names kept, and a
task that the labels leave in doubt stops the run and asks for ``data.task``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import tiny_spec
from tunefleet.data import load_dataset
from tunefleet.data.labels import infer_task
from tunefleet.spec import Experiment, SpecError
from tunefleet.spec.sections import DataSpec


def _npz(tmp_path, y, n_features=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(len(y), n_features)), y=y)
    return str(tmp_path / "d.npz")


@pytest.mark.parametrize("values", [[-1, 1], [1, 2], [0.0, 5.0]])
def test_numeric_binary_labels_become_0_and_1_with_their_names_kept(tmp_path, values):
    y = np.tile(values, 50)
    data = load_dataset(DataSpec(dataset="npz", path=_npz(tmp_path, y)))
    t = data.training
    assert t.info.task == "binary" and t.info.num_outputs == 1
    for split in (t.y_train, t.y_val, data.y_test):
        assert split.dtype == np.float32 and set(np.unique(split)) == {0.0, 1.0}
    assert t.info.class_names == [str(int(v)) for v in values]
    assert data.preprocessing.labels == [int(v) for v in values]
    assert all(isinstance(v, (int, float)) for v in data.preprocessing.labels)


@pytest.mark.parametrize("values", [[3, 7, 100], [-5, 0, 2]])
def test_multiclass_labels_map_to_contiguous_outputs(tmp_path, values):
    y = np.tile(values, 40)
    data = load_dataset(DataSpec(dataset="npz", path=_npz(tmp_path, y), task="multiclass"))
    t = data.training
    assert t.info.num_classes == 3 and t.info.num_outputs == 3  # not max(label) + 1
    for split in (t.y_train, t.y_val, data.y_test):
        assert split.dtype == np.int32 and set(np.unique(split).tolist()) == {0, 1, 2}
    assert t.info.class_names == [str(v) for v in sorted(values)]
    # The mapping is the same in every split: row i of the test keeps its original label.
    originals = np.asarray(data.preprocessing.labels)[data.y_test]
    assert set(originals.tolist()) == set(values)


def test_an_official_test_split_is_mapped_like_the_training_labels(tmp_path):
    rng = np.random.default_rng(1)
    y, y_test = np.tile([1, 2], 30), np.array([2, 2, 1, 2])
    np.savez(tmp_path / "d.npz", x_train=rng.normal(size=(60, 2)), y_train=y,
             x_test=rng.normal(size=(4, 2)), y_test=y_test)
    data = load_dataset(DataSpec(dataset="npz", path=str(tmp_path / "d.npz")))
    assert data.y_test.tolist() == [1.0, 1.0, 0.0, 1.0]
    assert data.info.class_names == ["1", "2"]


@pytest.mark.parametrize("y, expected", [
    (np.tile([0, 1, 2, 3], 30), "multiclass"),              # 0..k-1: the usual class encoding
    (np.tile(["cat", "dog", "emu"], 30), "multiclass"),    # text labels are classes
    (np.tile([True, False], 30), "binary"),
    (np.tile([-1, 1], 30), "binary"),
    (np.linspace(0, 1, 120), "regression"),                 # fractional values
    (np.arange(120) * 3 + 1000, "regression"),              # many integers, not from 0
])
def test_task_guess_where_the_labels_leave_no_doubt(y, expected):
    assert infer_task(y) == expected


@pytest.mark.parametrize("y, shown", [
    (np.tile([3, 7, 100], 40), "3 distinct values: 3, 7, 100"),
    (np.tile([1, 2, 3, 4, 5], 40), "5 distinct values: 1, 2, 3, 4, 5"),  # ratings, or classes?
    (np.tile(np.arange(3, 9).astype(float), 40), "6 distinct values: 3, 4, 5, 6, 7, 8"),
    (np.arange(200) % 150, "150 distinct values: 0, 1, 2"),  # 0..k-1 but as many as rows/2
])
def test_a_borderline_task_guess_asks_for_data_task(y, shown):
    with pytest.raises(SpecError, match=r"^data\.task: cannot tell whether these integer "
                       r"labels are classes or a regression target") as err:
        infer_task(y)
    assert err.value.field == "data.task"
    assert shown in str(err.value)
    assert "set data.task: multiclass" in str(err.value).lower()
    assert "data.task: regression" in str(err.value)


def _quality_csv(tmp_path):
    rng = np.random.default_rng(2)
    n = 200
    frame = pd.DataFrame({"alcohol": rng.normal(10, 1, n), "colour": rng.choice(["red", "white"], n),
                          "quality": rng.integers(3, 9, n)})  # an integer score from 3 to 8
    frame.to_csv(tmp_path / "wine.csv", index=False)
    return str(tmp_path / "wine.csv")


def test_integer_regression_target_is_not_silently_taken_for_classes(tmp_path):
    spec = tiny_spec(tmp_path, data={"dataset": "csv", "path": _quality_csv(tmp_path),
                                     "target": "quality"}, model={"builder": "mlp"},
                     search_space={}, objective={"metric": "val_loss", "mode": "min"})
    from tunefleet.study.runner import prepare

    with pytest.raises(SpecError) as err:  # before Ray starts, with its own field kept
        prepare(Experiment.from_dict(spec))
    assert err.value.field == "data.task"
    assert "6 distinct values: 3, 4, 5, 6, 7, 8" in str(err.value)
    spec["data"]["task"] = "regression"
    data = prepare(Experiment.from_dict(spec)).dataset
    assert data.info.task == "regression" and data.info.num_outputs == 1
    assert data.training.y_train.dtype == np.float32
    assert set(np.unique(data.training.y_train)) <= {3.0, 4.0, 5.0, 6.0, 7.0, 8.0}


@pytest.mark.parametrize("task, y, message", [
    ("binary", np.tile([0, 1, 2], 40),
     r"^data\.task: binary needs exactly 2 label values, the labels hold 3 distinct values: 0, 1, 2"),
    ("regression", np.tile(["a", "b"], 60), r"^data\.task: regression needs numeric labels"),
    ("multiclass", np.zeros(120, dtype=int), r"^data\.target: every label is \['0'\]"),
])
def test_labels_that_contradict_data_task(tmp_path, task, y, message):
    frame = pd.DataFrame({"f": np.arange(len(y), dtype=float), "target": y})
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(SpecError, match=message):
        load_dataset(DataSpec(dataset="csv", path=str(tmp_path / "t.csv"), task=task))
