"""How the validation and test splits are drawn: ``data.split: random`` (stratified, seeded by
``data.seed``) or ``last`` (Keras' ``validation_split``: the last rows, in their order)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from tunefleet.data import load_dataset, load_raw_test_rows, save_test_split
from tunefleet.spec.sections import DataSpec


def _ordered_npz(tmp_path, n=100, imbalance=False):
    """Feature 0 is the row number, so each split shows which rows it holds."""
    rows = np.arange(n, dtype=float)
    y = (np.arange(n) % 10 < 7).astype(int) if imbalance else np.arange(n) % 2
    np.savez(tmp_path / "d.npz", x=np.stack([rows, rows % 7], axis=1), y=y)
    return str(tmp_path / "d.npz")


def _rows(data, x):
    """Row numbers back from standardized feature 0."""
    prep = data.preprocessing
    return np.rint(x[:, 0] * np.sqrt(prep.variance[0]) + prep.mean[0]).astype(int)


def test_random_split_is_stratified_and_seeded(tmp_path):
    path = _ordered_npz(tmp_path, n=200, imbalance=True)  # 70% class 1, 30% class 0
    a = load_dataset(DataSpec(dataset="npz", path=path, seed=3))
    b = load_dataset(DataSpec(dataset="npz", path=path, seed=3))
    c = load_dataset(DataSpec(dataset="npz", path=path, seed=4))
    for split in (a.training.y_val, a.y_test):  # 40 rows each: exactly 28 of class 1
        assert len(split) == 40 and int(split.sum()) == 28
    val = _rows(a, a.training.x_val)
    assert np.array_equal(val, _rows(b, b.training.x_val))  # same seed, same rows
    assert not np.array_equal(np.sort(val), np.sort(_rows(c, c.training.x_val)))
    assert not np.array_equal(val, np.sort(val))  # shuffled, not in file order
    every = np.concatenate([_rows(a, a.training.x_train), val, _rows(a, a.x_test)])
    assert np.array_equal(np.sort(every), np.arange(200))  # disjoint, and nothing lost


def test_last_split_keeps_row_order_like_keras_validation_split(tmp_path):
    path = _ordered_npz(tmp_path, n=100)
    data = load_dataset(DataSpec(dataset="npz", path=path, split="last", seed=9))
    train, val = _rows(data, data.training.x_train), _rows(data, data.training.x_val)
    assert np.array_equal(_rows(data, data.x_test), np.arange(80, 100))  # the last 20%
    # Keras: split_at = floor(n * (1 - validation_split)) of the 80 rows left; 0.2 / 0.8 of them.
    assert np.array_equal(val, np.arange(60, 80))
    assert np.array_equal(train, np.arange(0, 60))
    save_test_split(data, tmp_path / "saved")
    raw = load_raw_test_rows(tmp_path / "saved")
    assert isinstance(raw, np.ndarray) and np.array_equal(raw[:, 0], np.arange(80, 100))


def test_last_split_with_an_official_test_split_and_a_training_cap(tmp_path):
    rows = np.arange(50, dtype=float)[:, None]
    np.savez(tmp_path / "d.npz", x_train=rows, y_train=np.arange(50) % 2,
             x_test=rows[:10] + 1000, y_test=np.arange(10) % 2)
    data = load_dataset(DataSpec(dataset="npz", path=str(tmp_path / "d.npz"), split="last",
                                 validation_fraction=0.2, max_train_samples=15))
    assert np.array_equal(_rows(data, data.training.x_val), np.arange(40, 50))
    assert np.array_equal(_rows(data, data.training.x_train), np.arange(25, 40))  # nearest ones
    assert np.array_equal(_rows(data, data.x_test), np.arange(1000, 1010))


def test_split_accepts_only_random_or_last():
    with pytest.raises(ValidationError, match=r"split\n  Input should be 'random' or 'last'"):
        DataSpec(split="shuffle")
