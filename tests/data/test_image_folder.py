"""``dataset: image_folder``: listed and split in the driver without reading an image, streamed
by each trial in a seeded order per epoch (every cache mode alike), evaluated by the report
from its files; and images that do travel as arrays travel as uint8."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, tiny_spec
from tunefleet import SpecError
from tunefleet.data import (ImageFolderData, ImageFolderFeed, TrainingData, load_dataset,
                            load_raw_test_rows, load_test_split, save_test_split)
from tunefleet.data.image_folder import (REPORT_DATA_PATH_ENV, ImageFolderUnreadable,
                                         resolve_root)
from tunefleet.spec import Experiment
from tunefleet.spec.sections import DataSpec
from tunefleet.study.runner import as_experiment, prepare

CLASSES = ("d0", "d1", "d2")  # sorted as the digits are


def _digit_images(per_class: int) -> dict[str, list[np.ndarray]]:
    """scikit-learn's 8x8 digits 0, 1, 2 as 16x16 uint8 images (learnable in an epoch)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    out: dict[str, list[np.ndarray]] = {}
    for digit, name in enumerate(CLASSES):
        images = bunch.images[bunch.target == digit][:per_class]
        out[name] = [np.kron(im * 255 / 16, np.ones((2, 2))).round().astype(np.uint8)
                     for im in images]
    return out


def make_folder(root: Path, per_class: int = 100, test: int = 0) -> Path:
    """PNGs in class folders; with ``test``, the first ``test`` of each class go to test/ and
    the rest to train/."""
    from PIL import Image

    for name, images in _digit_images(per_class).items():
        for i, image in enumerate(images):
            split = ("test" if i < test else "train") if test else ""
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i:04d}.png")
    return root


def folder_spec(path: Path, **data) -> dict:
    return {"dataset": "image_folder", "path": str(path), "image_size": [16, 16],
            "channels": 1, **data}


def _listed(path: Path | str, **data):
    return load_dataset(DataSpec(**folder_spec(path, **data)))


@pytest.fixture(scope="module")
def flat_folder(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("flat"), per_class=40)


def test_listing_splits_files_by_seed_and_reads_no_image(flat_folder, tmp_path):
    a, b = _listed(flat_folder, seed=1), _listed(flat_folder, seed=1)
    other = _listed(flat_folder, seed=2)
    training = a.training
    assert isinstance(training, ImageFolderData) and training.info.class_names == list(CLASSES)
    assert training.info.input_shape == (16, 16, 1) and training.info.task == "multiclass"
    sizes = (len(training.train), len(training.validation), len(a.raw_test))
    assert sizes == (72, 24, 24)  # 120 files, validation 0.2, test 0.2, stratified
    assert training.train.files == b.training.train.files  # same seed, same split
    assert set(training.validation.files) != set(other.training.validation.files)
    every = set(training.train.files) | set(training.validation.files) | set(a.raw_test.files)
    assert len(every) == 120 and all(not os.path.isabs(f) for f in every)
    assert os.path.isabs(training.root)  # resolved once, in the driver
    assert a.x_test is None and a.y_test.dtype == np.int32
    # What the trials are sent: names and labels, a few kB, not pixels.
    assert len(pickle.dumps(training)) < 20_000
    # Listing reads no image: files that are not images at all list the same.
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(10):
            (tmp_path / name / f"{i}.png").write_bytes(b"not a png")
    assert len(_listed(tmp_path).training.train) == 12  # 60% of 20


def test_a_symlinked_folder_keeps_its_link_path(tmp_path, monkeypatch):
    """A shared mount reached through a link (which may point elsewhere on other nodes) is
    recorded as the link, made absolute and ``~``-expanded, never followed."""
    real = make_folder(tmp_path / "mounts" / "node_a" / "images", per_class=4)
    link = tmp_path / "shared"
    link.symlink_to(real, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for given in ("shared", "~/shared", str(link), "./mounts/../shared/"):
        assert resolve_root(given) == str(link), given
    assert os.path.realpath(link) == str(real) != str(link)
    assert resolve_root("gs://bucket/images/") == "gs://bucket/images"  # a URI as it is
    # What spec.yaml records (as_experiment) and what the trials are sent.
    spec = tiny_spec(tmp_path, data=folder_spec(Path("shared")))
    experiment = as_experiment(spec)
    assert isinstance(experiment.data.path, str) and experiment.data.path == str(link)
    listed = _listed("shared", test_fraction=0.25, validation_fraction=0.25)
    assert listed.training.root == str(link) and len(listed.training.train) == 6


def test_an_unreadable_test_folder_says_where_and_how_to_point_the_report_at_it(
        tmp_path, monkeypatch):
    make_folder(tmp_path / "images", per_class=6, test=2)
    save_test_split(_listed(tmp_path / "images"), tmp_path / "data")
    (tmp_path / "images").rename(tmp_path / "moved")
    monkeypatch.delenv(REPORT_DATA_PATH_ENV, raising=False)
    with pytest.raises(ImageFolderUnreadable,
                       match=rf"^data\.path: the test split could not be read.*got "
                             rf"'{re.escape(str(tmp_path / 'images'))}'\. Make that folder "
                             rf"readable at that path.*{REPORT_DATA_PATH_ENV}=/where/it/is/now "
                             "tunefleet report STUDY_DIR$"):
        load_test_split(tmp_path / "data")
    assert issubclass(ImageFolderUnreadable, SpecError)
    monkeypatch.setenv(REPORT_DATA_PATH_ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(ImageFolderUnreadable, match=rf"^{REPORT_DATA_PATH_ENV}: is not a folder "
                       rf"that can be read here \(the study's image folder was .*images\)"):
        load_test_split(tmp_path / "data")
    monkeypatch.setenv(REPORT_DATA_PATH_ENV, str(tmp_path / "moved"))
    images, labels, _ = load_test_split(tmp_path / "data")
    x = np.concatenate([b.numpy() for b in images])
    assert x.shape == (6, 16, 16, 1) and x.dtype == np.float32 and list(labels) == [0, 0, 1, 1, 2, 2]
    rows = load_raw_test_rows(tmp_path / "data")
    assert rows[0] == f"{tmp_path / 'moved'}/test/d0/0000.png" and os.path.isfile(rows[0])


def test_hypermodel_studies_ship_float32_inputs_and_builder_studies_uint8(tmp_path):
    """A hypermodel's fit takes arrays: its trials get the float32 inputs Ray shares among a
    node's trials (no float32 copy per trial); a builder's tf.data pipeline scales uint8 per
    batch. The driver's probe and check cut rows before scaling."""
    from tunefleet.trainables.fit_contract import fit_call
    from tunefleet.trainables.hypermodel import probe_hypermodel, resolve_hypermodel

    builder = prepare(as_experiment(tiny_spec(tmp_path)))
    shipped = builder.dataset.training
    assert shipped.stored_x_train.dtype == np.uint8 and shipped.scale == 1 / 16
    hyper = prepare(as_experiment(tiny_spec(
        tmp_path, model={"hypermodel": "tests.hypermodels:FitXY"}, search_space={},
        train={"epochs": 1})))
    shipped = hyper.dataset.training
    assert isinstance(shipped, TrainingData) and shipped.scale is None
    assert shipped.stored_x_train.dtype == np.float32 and shipped.stored_x_val.dtype == np.float32
    assert shipped.x_train is shipped.stored_x_train  # what a trial reads: no copy
    assert np.array_equal(shipped.x_val, builder.dataset.training.x_val)  # the same inputs
    assert len(pickle.dumps(shipped)) > 3.5 * len(pickle.dumps(builder.dataset.training))

    compact = load_dataset(DataSpec(dataset="digits")).training
    probe_hypermodel(resolve_hypermodel("tests.hypermodels:FitXY"), {}, compact)
    (x, y), kwargs = fit_call(compact, None, {}, 1, [], rows=5)
    assert compact._inputs == {}  # no full float32 split was made in the driver
    assert x.dtype == np.float32 and x.shape == (5, 8, 8, 1) and y.shape == (5,)
    assert kwargs["validation_data"][0].dtype == np.float32
    assert np.array_equal(x, compact.x_train[:5])


def test_train_validation_test_folders_are_kept(tmp_path):
    make_folder(tmp_path, per_class=30, test=10)
    data = _listed(tmp_path)
    assert len(data.raw_test) == 30 and all(f.startswith("test/") for f in data.raw_test.files)
    assert all(f.startswith("train/") for f in data.training.validation.files)
    assert len(data.training.train) + len(data.training.validation) == 60


def test_a_uri_and_files_at_any_depth_in_a_class_folder_are_read(tmp_path):
    """``file://`` goes through TensorFlow's file system, as gs:// (or s3:// with
    tensorflow-io) does; files in sub-folders of a class folder belong to that class."""
    make_folder(tmp_path, per_class=6)
    nested = tmp_path / "d1" / "more" / "deeper"
    nested.mkdir(parents=True)
    (tmp_path / "d1" / "0000.png").rename(nested / "moved.png")
    data = _listed(tmp_path, test_fraction=0.34, validation_fraction=0.32)
    uri = _listed(f"file://{tmp_path}", test_fraction=0.34, validation_fraction=0.32)
    assert uri.training.root == f"file://{tmp_path}"
    assert uri.training.train.files == data.training.train.files
    every = data.training.train.files + data.training.validation.files + data.raw_test.files
    assert "d1/more/deeper/moved.png" in every and len(every) == 18
    feed = ImageFolderFeed(uri.training, 4)
    labels = np.concatenate([y.numpy() for _, y in feed.epoch(0, 0, shuffle=True)])
    assert sorted(labels.tolist()) == sorted(uri.training.train.labels.tolist())


def _bad_folders(tmp_path: Path) -> dict[str, Path]:
    empty_class = make_folder(tmp_path / "empty_class", per_class=4)
    (empty_class / "d3").mkdir()
    mismatch = make_folder(tmp_path / "mismatch", per_class=6, test=2)
    for f in (mismatch / "test" / "d2").iterdir():
        f.unlink()
    (mismatch / "test" / "d2").rmdir()
    flat = tmp_path / "no_classes"
    flat.mkdir()
    (flat / "a.png").write_bytes(b"x")
    one = make_folder(tmp_path / "one_class", per_class=4)
    for name in ("d1", "d2"):
        for f in (one / name).iterdir():
            f.unlink()
        (one / name).rmdir()
    extra = make_folder(tmp_path / "extra", per_class=4, test=1)
    (extra / "misc").mkdir()
    return {"empty_class": empty_class, "mismatch": mismatch, "no_classes": flat,
            "one_class": one, "extra": extra, "missing": tmp_path / "nowhere"}


FOLDER_CASES = [
    ("empty_class", {}, r"^data\.path: class folder data\.path/d3 holds no images .*Add images"),
    ("mismatch", {}, r"^data\.path: test/ has other classes than train/ \(missing: d2; extra: none\)"),
    ("no_classes", {}, r"^data\.path: data\.path holds no class sub-folders.*Lay it out as"),
    ("one_class", {}, r"^data\.path: holds one class folder \(d0\); a classifier needs at least two"),
    ("extra", {}, r"^data\.path: holds train/ and also misc/; beside train/ only validation/ and test/"),
    ("missing", {}, r"^data\.path: is not a folder, got '.*nowhere'\. Point it at a folder"),
    ("empty_class", {"model": {"hypermodel": "tests.hypermodels:layered_mlp"},
                     "search_space": {}, "train": {"epochs": 3}},
     r"^data\.dataset: an image folder streams to builders only.*got 'image_folder'"),
]


@pytest.mark.parametrize("folder, sections, pattern", FOLDER_CASES,
                         ids=[f"{c[0]}-{len(c[1])}" for c in FOLDER_CASES])
def test_bad_image_folder_is_a_spec_error_before_training(tmp_path, folder, sections, pattern):
    path = _bad_folders(tmp_path)[folder]
    spec = tiny_spec(tmp_path, data=folder_spec(path), **sections)
    with pytest.raises(SpecError, match=pattern):
        prepare(as_experiment(spec))


def _batches(feed, seed: int, epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.numpy(), y.numpy()) for x, y in feed.epoch(seed, epoch, shuffle=True)]


def test_every_cache_mode_streams_the_same_seeded_batches(flat_folder):
    data = _listed(flat_folder, seed=3).training
    feeds = {mode: ImageFolderFeed(ImageFolderData(**{**data.__dict__, "cache": mode}), 16)
             for mode in ("none", "memory", "disk")}
    first = _batches(feeds["none"], 5, 0)
    assert [len(y) for _, y in first] == [16, 16, 16, 16, 8]
    x, y = first[0]
    assert x.dtype == np.float32 and x.shape == (16, 16, 16, 1) and 0.0 <= x.min() <= x.max() <= 1.0
    pixels = np.rint(x * 255)
    assert np.array_equal(x, (pixels.astype(np.uint8).astype(np.float32) * np.float32(1 / 255)))
    for mode in ("memory", "disk"):
        again = _batches(feeds[mode], 5, 0)
        assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
                   for a, b in zip(first, again, strict=True)), mode
    # The order is a function of (seed, epoch): a resumed trial sees the same batches.
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, _batches(feeds["none"], 5, 0), strict=True))
    assert not np.array_equal(np.concatenate([b[1] for b in first]),
                              np.concatenate([b[1] for b in _batches(feeds["none"], 5, 1)]))
    # Each epoch is every training file once; validation is the validation files, in order.
    labels = np.concatenate([b[1] for b in first])
    assert np.array_equal(np.sort(labels), np.sort(data.train.labels))
    val = [y.numpy() for _, y in feeds["disk"].validation()]
    assert np.array_equal(np.concatenate(val), data.validation.labels)


def test_arrays_travel_as_uint8_and_reach_the_model_unchanged():
    import tensorflow as tf

    from tunefleet.data.preprocessing import image_inputs
    from tunefleet.trainables.epoch_data import EpochData

    spec = DataSpec(dataset="digits")
    data = load_dataset(spec)
    training = data.training
    assert isinstance(training, TrainingData) and training.stored_x_train.dtype == np.uint8
    assert training.stored_x_train.shape[1:] == (8, 8, 1) and training.scale == 1 / 16
    floats = training.x_train  # what the driver shipped before: float32 inputs
    assert floats.dtype == np.float32 and floats.nbytes == 4 * training.stored_x_train.nbytes
    assert len(pickle.dumps(training)) < floats.nbytes / 2  # the cache of floats stays home
    feed = EpochData(training, 64, shuffle=True, pipeline=True)
    batches = list(feed.epoch(seed=7, epoch=2)["x"])

    rows = tf.random.experimental.stateless_shuffle(
        tf.range(len(training.y_train), dtype=tf.int64), seed=[7, 2]).numpy()
    got = np.concatenate([x.numpy() for x, _ in batches])
    assert got.dtype == np.float32 and np.array_equal(got, floats[rows])  # bit for bit
    val = np.concatenate([x.numpy() for x, _ in feed.validation()])
    assert np.array_equal(val, training.x_val)
    assert np.array_equal(image_inputs(training.stored_x_val[..., 0], 1 / 16), training.x_val)


def test_uint8_images_train_bit_for_bit_as_float32_inputs_did_and_resume_exactly():
    """scripts/measure_compact_images.py's comparison (the README's Fashion-MNIST figures),
    on digits: the same weights from float32 inputs and from uint8 pixels, and from a run
    saved and reloaded after its first epoch."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "measure_compact_images", ROOT / "scripts" / "measure_compact_images.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = script.training_comparison("digits", None)
    assert out["same_weights"] is True and out["resume_exact"] is True
    assert out["val_accuracy_uint8"] == out["val_accuracy_float32"] > 0.2  # chance: 0.1
    compact = load_dataset(DataSpec(dataset="digits")).training
    assert len(pickle.dumps(script.as_floats(compact))) > 3.5 * len(pickle.dumps(compact))


def test_report_test_split_streams_from_the_folder(tmp_path):
    make_folder(tmp_path / "images", per_class=12, test=4)
    dataset = _listed(tmp_path / "images")
    save_test_split(dataset, tmp_path / "data")
    assert not (tmp_path / "data" / "test.npz").exists()
    images, labels, meta = load_test_split(tmp_path / "data")
    assert meta["sizes"]["test"] == 12 and list(labels) == [0] * 4 + [1] * 4 + [2] * 4
    x = np.concatenate([b.numpy() for b in images])
    assert x.shape == (12, 16, 16, 1) and x.dtype == np.float32


@pytest.mark.slow
def test_image_folder_study_trains_and_its_report_scores_the_streamed_test_split(
        ray_local, tmp_path, monkeypatch):
    from PIL import Image

    from tunefleet import run
    from tunefleet.reports import build_study_report, evaluate_best, load_study

    folder = make_folder(tmp_path / "digits", per_class=100, test=20)
    spec = tiny_spec(tmp_path, name="image_folder",
                     data=folder_spec(folder, cache="disk"),
                     train={"epochs": 2, "batch_size": 32, "learning_rate": 0.01},
                     search={"algorithm": "random", "num_samples": 2, "seed": 1})
    here = os.getcwd()
    os.chdir(tmp_path)  # a relative data.path, resolved in the driver
    try:
        spec["data"]["path"] = "digits"
        result = run(spec)
    finally:
        os.chdir(here)
    trials = result.trials
    assert len(trials) == 2 and set(trials["status"]) == {"completed"}
    assert float(trials["best_val_accuracy"].max()) > 0.6
    assert not (result.path / "data" / "test.npz").exists()
    stored = Experiment.from_yaml(result.path / "spec.yaml")
    assert stored.data.path == str(folder)  # resolved once, against the driver's directory
    # The report's test evaluation (what build_study_report runs), from its best checkpoint;
    # retrained on train+validation (streamed too) below, once the folder has moved.
    study = load_study(result.path)
    evaluate_best(study, tmp_path / "report")
    saved = json.loads((tmp_path / "report" / "test_metrics.json").read_text())
    n_files = sum(1 for _ in (folder / "test").rglob("*.png"))
    assert isinstance(saved["n_test"], int) and saved["n_test"] == n_files == 60
    assert isinstance(saved["metrics"]["accuracy"], float) and saved["metrics"]["accuracy"] > 0.5
    assert saved["labels"] == list(CLASSES) and saved["source"].startswith("checkpoint trial_")
    import keras

    exported = keras.models.load_model(saved["model_path"])  # takes 0..255 pixels, scales them
    assert tuple(exported.input_shape) == (None, 16, 16, 1)
    pixels = np.asarray(Image.open(folder / "test" / "d2" / "0000.png"))[None, ..., None]
    assert exported.predict(pixels.astype("float32"), verbose=0).argmax() == 2
    # The folder moves (or the study is copied off the cluster): the report still writes
    # its tables, analyses and figures, and says why the test split is missing.
    folder.rename(tmp_path / "moved")
    monkeypatch.delenv(REPORT_DATA_PATH_ENV, raising=False)
    report = build_study_report(study, tmp_path / "moved_report")
    assert report.test is None and not (tmp_path / "moved_report" / "test_metrics.json").exists()
    assert str(folder) in report.test_note and REPORT_DATA_PATH_ENV in report.test_note
    text = (tmp_path / "moved_report" / "report.md").read_text()
    assert "Not evaluated: data.path: the test split could not be read" in text
    assert str(folder) in text and f"{REPORT_DATA_PATH_ENV}=/where/it/is/now" in text
    assert "curves" in report.figures and report.figures["curves"].is_file()
    assert report.files["trials"].is_file() and (tmp_path / "moved_report" / "importance.csv").is_file()
    # Retrained on train+validation, streamed from where the override says the folder now
    # is (the recorded path no longer exists): one retrain proves both.
    monkeypatch.setenv(REPORT_DATA_PATH_ENV, str(tmp_path / "moved"))  # where it is now
    retrained = evaluate_best(study, tmp_path / "override_report", retrain=True)
    assert retrained is not None and retrained.n_test == 60
    assert retrained.source.startswith("retrained on train+validation")
    assert isinstance(retrained.metrics["accuracy"], float)
    assert retrained.metrics["accuracy"] > 0.5


BIG_STUDY = textwrap.dedent("""
    import json, os, pickle, sys
    import ray
    from tunefleet import run
    from tunefleet.study.runner import as_experiment, prepare

    spec = json.loads(sys.argv[1])
    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False,
             object_store_memory=int(sys.argv[2]), log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"],
                                       "TF_CPP_MIN_LOG_LEVEL": "2"}})
    store = ray.cluster_resources()["object_store_memory"]
    shipped = len(pickle.dumps(prepare(as_experiment(spec)).dataset.training))
    result = run(spec)
    print("RESULT", json.dumps({"store": store, "shipped": shipped,
                                "status": result.trials["status"].tolist(),
                                "epochs": result.trials["epochs_trained"].tolist()}))
""")


def _big_folder_study(tmp_path: Path,
                      env: dict[str, str]) -> tuple[int, int, subprocess.CompletedProcess]:
    """110 uncompressed 512x512 RGB PNGs (86 MB, decoded fast) and a study of them on a Ray of
    its own, in a process of its own (the session's Ray has the default object store), with
    the smallest object store Ray accepts: (that store's bytes, the folder's, the process)."""
    from PIL import Image

    store = 80 * 2**20
    rng = np.random.default_rng(0)
    for i in range(110):
        folder = tmp_path / "big" / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)).save(
            folder / f"{i}.png", compress_level=0)
    size = sum(f.stat().st_size for f in (tmp_path / "big").rglob("*.png"))
    spec = tiny_spec(tmp_path, name="big_folder",
                     data={"dataset": "image_folder", "path": str(tmp_path / "big"),
                           "image_size": [8, 8]},
                     model={"builder": "cnn", "params": {"filters": 4, "dense_units": 8,
                                                         "conv_blocks": 1}},
                     train={"epochs": 1, "batch_size": 32}, search_space={},
                     search={"algorithm": "random", "num_samples": 1, "seed": 0},
                     objective={"metric": "val_loss", "mode": "min"})
    done = subprocess.run([sys.executable, "-c", BIG_STUDY, json.dumps(spec), str(store)],
                          capture_output=True, text=True, env=env, timeout=240, cwd=tmp_path)
    return store, size, done


@pytest.fixture(scope="module", autouse=True)
def big_folder_study(request, tmp_path_factory):
    """``_big_folder_study``, started with this module's first test, in a thread: its process
    (mostly start-up: an interpreter, TensorFlow, a Ray) runs beside the tests before its own,
    which waits for it. Not started when that test is not selected."""
    if not any(item.name == "test_image_folder_larger_than_the_object_store_still_trains"
               for item in request.session.items):
        yield None
        return
    # The environment now: tests here change os.environ while the study starts.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(_big_folder_study, tmp_path_factory.mktemp("big_folder"), env)


@pytest.mark.slow
def test_image_folder_larger_than_the_object_store_still_trains(big_folder_study):
    """Its own Ray (in a subprocess: the session's Ray has the default object store), with
    the smallest object store Ray accepts; the folder holds more bytes than that store."""
    store, size, done = big_folder_study.result()
    line = re.search(r"^RESULT (.*)$", done.stdout, re.M)
    assert line, done.stdout[-3000:] + done.stderr[-3000:]
    out = json.loads(line.group(1))
    assert store < size and out["store"] < size  # Ray took the small store
    assert out["shipped"] < 20_000  # the trials were sent names, not the 86 MB of images
    assert out["status"] == ["completed"] and out["epochs"] == [1]
