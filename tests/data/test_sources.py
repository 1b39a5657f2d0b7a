"""Dataset readers on files the tests write themselves, Debian's Fashion-MNIST, and the error
for a dataset that is nowhere."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from tunefleet.data import DataNotFoundError, arrays_as_raw, load_dataset
from tunefleet.data.sources import DEBIAN_DATASETS, read_idx
from tunefleet.spec.sections import DataSpec


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def _images(rng, n, classes=3):
    y = np.arange(n) % classes
    x = rng.integers(0, 256, size=(n, 6, 6), dtype=np.uint8)
    x[:, 0, 0] = y * 100  # a pixel that tells the class, so splits stay stratifiable
    return x, y.astype(np.uint8)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_folder_reads_train_and_test(tmp_path, suffix):
    rng = np.random.default_rng(0)
    (x, y), (xt, yt) = _images(rng, 60), _images(rng, 15)
    _write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", x)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", y)
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", xt)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", yt)
    assert np.array_equal(read_idx(tmp_path / f"train-images-idx3-ubyte{suffix}"), x)

    data = load_dataset(DataSpec(dataset="idx", path=str(tmp_path), validation_fraction=0.25))
    t = data.training
    assert t.info.task == "multiclass" and t.info.num_classes == 3
    assert t.info.input_shape == (6, 6, 1)  # grayscale gets its channel axis
    assert len(t.y_train) == 45 and len(t.y_val) == 15 and len(data.y_test) == 15
    assert np.allclose(data.x_test[..., 0], xt / 255.0)  # the official test split, normalized
    assert 0.0 <= t.x_train.min() and t.x_train.max() <= 1.0


def test_idx_rejects_a_file_that_is_not_idx(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="is not an IDX file"):
        read_idx(tmp_path / "train-images-idx3-ubyte")


def test_npz_in_keras_layout_with_rgb_images(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(40, 4, 4, 3), dtype=np.uint8)
    y = (np.arange(40) % 2).reshape(-1, 1)  # CIFAR-style column labels
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    data = load_dataset(DataSpec(dataset="npz", path=str(tmp_path / "d.npz")))
    assert data.info.task == "binary" and data.info.input_shape == (4, 4, 3)
    assert data.training.y_train.ndim == 1 and len(data.y_test) == 10


def test_npz_without_test_split_is_split_and_regression_inferred(tmp_path):
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "r.npz", x=rng.normal(size=(100, 3)), y=rng.normal(size=100))
    data = load_dataset(DataSpec(dataset="npz", path=str(tmp_path / "r.npz")))
    assert data.info.task == "regression"
    assert len(data.y_test) == 20 and len(data.training.y_val) == 20


def test_csv_encodes_categories_and_standardizes_on_the_training_split_only(tmp_path):
    rng = np.random.default_rng(3)
    n = 200
    frame = {"size": rng.normal(50, 10, n), "colour": rng.choice(["red", "blue", "green"], n),
             "target": np.where(rng.random(n) > 0.5, "yes", "no")}
    import pandas as pd

    pd.DataFrame(frame).to_csv(tmp_path / "t.csv", index=False)
    data = load_dataset(DataSpec(dataset="csv", path=str(tmp_path / "t.csv")))
    t = data.training
    assert t.info.task == "binary" and t.info.class_names == ["no", "yes"]
    assert t.info.input_shape == (4,)  # size + three one-hot colours
    assert np.allclose(t.x_train.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(t.x_train.std(axis=0), 1, atol=1e-3)
    # Statistics came from the training rows: the held-out rows are not exactly centred.
    assert not np.allclose(data.x_test.mean(axis=0), 0, atol=1e-5)


def test_csv_without_the_target_column_names_the_columns(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"has no column 'target'; its columns are a, b"):
        load_dataset(DataSpec(dataset="csv", path=str(tmp_path / "t.csv")))


def test_user_arrays_with_their_own_validation_split():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(50, 5)), np.arange(50) % 2
    raw = arrays_as_raw(x, y, validation_data=(x[:10], y[:10]))
    data = load_dataset(DataSpec(dataset="arrays"), raw)
    assert len(data.training.y_val) == 10 and len(data.y_test) == 10  # test held out of x, y
    assert len(data.training.y_train) == 40
    with pytest.raises(ValueError, match="x has 50 rows but y has 49"):
        arrays_as_raw(x, y[:49])


def test_missing_dataset_names_every_place_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(DataNotFoundError) as info:
        load_dataset(DataSpec(dataset="cifar10", path=str(tmp_path / "nowhere"), download=False))
    message = str(info.value)
    assert str(tmp_path / "nowhere") in message
    assert str(tmp_path / "keras" / "datasets") in message
    assert "no download tried" in message and "keras.datasets.cifar10.load_data()" in message


def test_missing_fashion_mnist_points_to_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr("tunefleet.data.sources.DEBIAN_DATASETS", tmp_path / "no-debian")
    with pytest.raises(DataNotFoundError, match=r"apt install dataset-fashion-mnist"):
        load_dataset(DataSpec(dataset="fashion_mnist", download=False))


@pytest.mark.skipif(not (DEBIAN_DATASETS / "fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed (CI installs it)")
def test_fashion_mnist_from_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # not from a Keras cache
    data = load_dataset(DataSpec(dataset="fashion_mnist", validation_fraction=0.1,
                                 max_train_samples=1000, download=False))
    t = data.training
    assert t.info.input_shape == (28, 28, 1) and t.info.class_names[9] == "Ankle boot"
    assert len(t.y_val) == 6000 and len(data.y_test) == 10000 and len(t.y_train) == 1000
    assert sorted(np.bincount(data.y_test)) == [1000] * 10
