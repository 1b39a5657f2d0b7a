"""``dataset: image_folder``: a folder of class sub-folders of image files (the layout Keras'
``image_dataset_from_directory`` reads), streamed by each trial.

The driver only lists files: it resolves ``data.path`` once (relative to its working
directory; trials run in folders of their own), checks the layout, takes the classes from
the sorted sub-folder names and splits the files with ``data.seed``. What travels to trials
is :class:`ImageFolderData`: the root, relative file names and labels (bytes per file, not
per pixel). Each trial decodes, resizes, batches, caches and prefetches the images itself in
a ``tf.data`` pipeline (:class:`ImageFolderFeed`); so does the report for the test split.

Every image becomes ``image_size`` × ``channels`` uint8 pixels (decoded as Keras decodes,
resized bilinearly, rounded), and the model input is ``float32(pixels) / 255`` for every
``data.cache`` mode alike. Paths are local or shared folders, or URIs TensorFlow's file
system reads (``gs://`` built in; ``s3://``, ``hdfs://`` with ``tensorflow-io``).
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..spec import SpecError
from .datasets import DataInfo, Dataset
from .labels import Task
from .preprocessing import Preprocessing

__all__ = ["IMAGE_EXTENSIONS", "FileSplit", "ImageFolderData", "ImageFolderFeed",
           "list_image_folder", "save_image_folder_test", "load_image_folder_test",
           "IMAGE_FOLDER_FILE", "ImageFolderUnreadable", "REPORT_DATA_PATH_ENV", "report_root",
           "resolve_root"]

# The files image_dataset_from_directory takes (Keras' ALLOWLIST_FORMATS).
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
SPLIT_FOLDERS = ("train", "validation", "test")
IMAGE_FOLDER_FILE = "image_folder.json"  # the test split's files, beside info.json
REPORT_DATA_PATH_ENV = "TUNEFLEET_REPORT_DATA_PATH"  # the report's image folder, if moved
SCALE = 1.0 / 255.0


class ImageFolderUnreadable(SpecError):
    """The image folder a study streamed from cannot be read where its report runs (the
    report notes it and writes everything else)."""


@dataclass(frozen=True)
class FileSplit:
    """Image files (relative to the root, ``/``-separated) and their class indices."""

    files: tuple[str, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.files)

    def take(self, rows: np.ndarray) -> "FileSplit":
        return FileSplit(tuple(self.files[i] for i in rows), self.labels[rows])


@dataclass(frozen=True)
class ImageFolderData:
    """What a trial needs to stream an image folder: no pixels, only where they are."""

    info: DataInfo
    root: str  # an absolute path or a URI
    train: FileSplit
    validation: FileSplit
    image_size: tuple[int, int]
    channels: int
    cache: str = "none"  # memory | disk | none
    scale: float = field(default=SCALE)

    @property
    def y_train(self) -> np.ndarray:
        return self.train.labels

    @property
    def y_val(self) -> np.ndarray:
        return self.validation.labels


def _is_uri(path: str) -> bool:
    return "://" in path


def resolve_root(path: str) -> str:
    """``data.path`` made absolute against the driver's working directory (a URI as it is).
    Symbolic links are kept, not followed: a shared mount reached through a link (the same
    link on every node) may point somewhere else on each node."""
    if _is_uri(path):
        return path.rstrip("/")
    return os.path.abspath(os.path.expanduser(path))


def report_root(recorded: str) -> str:
    """Where the report reads a study's image folder: ``$TUNEFLEET_REPORT_DATA_PATH`` when set
    (the folder moved, or is mounted elsewhere where the report runs), else ``recorded``,
    the ``data.path`` the study resolved."""
    override = os.environ.get(REPORT_DATA_PATH_ENV, "").strip()
    return resolve_root(override) if override else recorded


def _join(root: str, relative: str) -> str:
    return posixpath.join(root, relative) if _is_uri(root) else os.path.join(root, relative)


def _walk(top: str):
    if _is_uri(top):
        import tensorflow as tf

        for folder, dirs, files in tf.io.gfile.walk(top):
            yield folder.rstrip("/"), [d.rstrip("/") for d in dirs], files
    else:
        yield from os.walk(top, followlinks=True)


def _exists(path: str) -> bool:
    if _is_uri(path):
        import tensorflow as tf

        return bool(tf.io.gfile.isdir(path))
    return os.path.isdir(path)


def _subfolders(folder: str) -> list[str]:
    for _, dirs, _files in _walk(folder):
        return sorted(d for d in dirs if not d.startswith("."))
    return []


def _images_under(root: str, folder: str) -> list[str]:
    """Image files anywhere under ``folder``, relative to ``root``, sorted."""
    found = []
    prefix = len(root.rstrip("/" + os.sep)) + 1
    for here, dirs, files in _walk(folder):
        dirs.sort()
        for name in files:
            if name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(_join(here, name)[prefix:].replace(os.sep, "/"))
    return sorted(found)


def _classes(root: str, folder: str, where: str) -> tuple[list[str], FileSplit]:
    """The classes (sorted sub-folder names) of ``folder`` and its files, labelled."""
    names = _subfolders(folder)
    if not names:
        raise SpecError("data.path", f"{where} holds no class sub-folders; image_folder reads "
                        "one folder per class", folder,
                        fix=f"lay it out as {where}/CLASS_A/*.png, {where}/CLASS_B/*.png, ... "
                        "(or train/, validation/, test/ folders of those)")
    files: list[str] = []
    labels: list[int] = []
    for index, name in enumerate(names):
        found = _images_under(root, _join(folder, name))
        if not found:
            raise SpecError("data.path", f"class folder {where}/{name} holds no images "
                            f"({', '.join(IMAGE_EXTENSIONS)})", _join(folder, name),
                            fix="add images to it or remove it")
        files += found
        labels += [index] * len(found)
    return names, FileSplit(tuple(files), np.asarray(labels, dtype="int32"))


def _layout(root: str) -> dict[str, tuple[list[str], FileSplit]]:
    """Each split folder's classes and files: ``train`` (with optional ``validation`` and
    ``test``) when ``root/train`` exists, else ``all``."""
    top = _subfolders(root)
    if "train" not in top:
        return {"all": _classes(root, root, "data.path")}
    others = sorted(set(top) - set(SPLIT_FOLDERS))
    if others:
        raise SpecError("data.path", f"holds train/ and also {', '.join(o + '/' for o in others)}; "
                        "beside train/ only validation/ and test/ may be", root,
                        fix="move the class folders into train/, or the extra folders out")
    found = {s: _classes(root, _join(root, s), s) for s in SPLIT_FOLDERS if s in top}
    names = found["train"][0]
    for split, (classes, _) in found.items():
        if classes != names:
            missing = sorted(set(names) - set(classes))
            extra = sorted(set(classes) - set(names))
            raise SpecError("data.path", f"{split}/ has other classes than train/ (missing: "
                            f"{', '.join(missing) or 'none'}; extra: {', '.join(extra) or 'none'})",
                            root, fix="give every split folder the same class folders")
    return found


def list_image_folder(spec: Any) -> Dataset:
    """List ``spec.path`` (a :class:`~tunefleet.spec.sections.DataSpec` with
    ``dataset: image_folder``), check its layout, and split its files; no image is read.

    Missing ``validation``/``test`` folders are split from the training files as any
    dataset is (``data.split``, ``data.seed``, stratified by class).
    """
    from .datasets import _split

    root = resolve_root(spec.path)
    if not _exists(root):
        raise SpecError("data.path", "is not a folder" + (
            "" if _is_uri(spec.path) or os.path.isabs(spec.path) else
            f" (resolved against the working directory {os.getcwd()})"), spec.path,
            fix="point it at a folder with one sub-folder of images per class")
    found = _layout(root)
    names, files = found.get("train", found.get("all"))  # type: ignore[misc]
    task: Task = "binary" if len(names) == 2 else "multiclass"
    if len(names) < 2:
        raise SpecError("data.path", f"holds one class folder ({names[0]}); a classifier needs "
                        "at least two", root, fix="add a folder per class")
    try:
        train, val, test = _split(spec, files.labels, task, "test" in found,
                                  "validation" in found)
    except ValueError as exc:  # too few files per class to stratify
        raise SpecError("data.path", f"cannot split {len(files)} files of {len(names)} classes "
                        f"with validation_fraction {spec.validation_fraction} and "
                        f"test_fraction {spec.test_fraction}: {exc}", root,
                        fix="add images, or give validation/ and test/ folders") from None
    validation = found["validation"][1] if val is None else files.take(val)
    held_out = found["test"][1] if test is None else files.take(test)
    size = (int(spec.image_size[0]), int(spec.image_size[1]))
    info = DataInfo(name="image_folder", task=task,
                    input_shape=(*size, int(spec.channels)), num_classes=len(names),
                    class_names=list(names))
    training = ImageFolderData(info, root, files.take(train), validation, size,
                               int(spec.channels), spec.cache)
    prep = Preprocessing("images", info.input_shape, task, list(names), scale=SCALE)
    return Dataset(training, None, held_out.labels, prep, held_out)  # type: ignore[arg-type]


def save_image_folder_test(dataset: Dataset, directory: Path) -> Path:
    """Where the test split's images are (not the images): for the report to stream them."""
    data: ImageFolderData = dataset.training  # type: ignore[assignment]
    test: FileSplit = dataset.raw_test
    path = directory / IMAGE_FOLDER_FILE
    path.write_text(json.dumps({"root": data.root, "image_size": list(data.image_size),
                                "channels": data.channels, "files": list(test.files),
                                "labels": test.labels.tolist()}))
    return path


def load_image_folder_test(directory: Path, batch_size: int = 256) -> tuple[Any, np.ndarray]:
    """The test split as a ``tf.data`` pipeline of model inputs (in file order), and its
    labels; :class:`ImageFolderUnreadable` when its root (see :func:`report_root`) cannot be
    read from here."""
    meta = json.loads((directory / IMAGE_FOLDER_FILE).read_text())
    root = report_root(meta["root"])
    if not (_exists(root) and (_is_uri(root) or os.access(root, os.R_OK | os.X_OK))):
        if root != meta["root"]:
            raise ImageFolderUnreadable(
                REPORT_DATA_PATH_ENV, f"is not a folder that can be read here (the study's "
                f"image folder was {meta['root']})", root,
                fix=f"set {REPORT_DATA_PATH_ENV} to the folder that now holds the study's "
                "images (what data.path named), or unset it to read the study's own path")
        raise ImageFolderUnreadable(
            "data.path", "the test split could not be read: it streams from the study's image "
            "folder, which is not a readable folder here", root,
            fix=f"make that folder readable at that path (mount or copy it there), or build "
            f"the report with the folder's path here: {REPORT_DATA_PATH_ENV}=/where/it/is/now "
            "tunefleet report STUDY_DIR")
    split = FileSplit(tuple(meta["files"]), np.asarray(meta["labels"], dtype="int32"))
    pipe = _Pipeline(root, tuple(meta["image_size"]), int(meta["channels"]))
    images = pipe.images(split).batch(batch_size).map(pipe.scaled)
    return images.prefetch(_autotune()), split.labels


def _autotune() -> Any:
    import tensorflow as tf

    return tf.data.AUTOTUNE


class _Pipeline:
    """Decoding and scaling as ``tf.data`` functions, the same in trials and in the report."""

    def __init__(self, root: str, image_size: tuple[int, int], channels: int,
                 scale: float = SCALE):
        self.root, self.size, self.channels, self.scale = root, image_size, channels, scale

    def paths(self, split: FileSplit) -> Any:
        import tensorflow as tf

        return tf.constant([_join(self.root, f) for f in split.files], dtype=tf.string,
                           shape=(len(split),))

    def decode(self, path: Any) -> Any:
        """One file as uint8 pixels ``image_size`` × ``channels``, as Keras'
        ``image_dataset_from_directory`` decodes and resizes it, rounded back to bytes."""
        import tensorflow as tf

        image = tf.io.decode_image(tf.io.read_file(path), channels=self.channels,
                                   expand_animations=False)
        image = tf.image.resize(image, self.size, method="bilinear")
        image = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
        image.set_shape((*self.size, self.channels))
        return image

    def images(self, split: FileSplit, order: Any = None) -> Any:
        """Decoded images of ``split`` (in ``order``, row indices, when given)."""
        import tensorflow as tf

        paths = self.paths(split)
        rows = (tf.data.Dataset.range(len(split)) if order is None
                else tf.data.Dataset.from_tensor_slices(order))
        return rows.map(lambda i: self.decode(tf.gather(paths, i)),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def scaled(self, images: Any, *rest: Any) -> Any:
        import tensorflow as tf

        x = tf.cast(images, tf.float32) * tf.constant(self.scale, tf.float32)
        return (x, *rest) if rest else x


class ImageFolderFeed:
    """A trial's batches of an image folder: each epoch's order a function of the seed and
    the epoch alone (a stateless shuffle of the file indices), so a resumed trial sees the
    batches an uninterrupted one sees, whatever ``data.cache`` is.

    ``cache: none`` decodes every file each epoch; ``memory`` decodes the training split once
    into one uint8 tensor of the trial; ``disk`` into a uint8 file in a temporary folder on
    the trial's node (removed when the trial ends), read back row by row. The validation split
    is read in order each epoch, cached as ``tf.data`` caches (memory or that folder).
    """

    def __init__(self, data: ImageFolderData, batch_size: int):
        import tensorflow as tf

        self.data, self.batch_size = data, int(batch_size)
        self.pipe = _Pipeline(data.root, data.image_size, data.channels, data.scale)
        self._labels = tf.constant(data.train.labels)
        self._paths = self.pipe.paths(data.train)
        self._tmp: Optional[tempfile.TemporaryDirectory] = None
        self._rows: Any = None  # the decoded training images, for memory and disk caches
        if data.cache == "memory":
            self._rows = self._decoded(data.train)
        elif data.cache == "disk":
            self._tmp = tempfile.TemporaryDirectory(prefix="tunefleet-images-")
            self._rows = self._on_disk(data.train, Path(self._tmp.name) / "train.npy")
        val = self.pipe.images(data.validation).batch(self.batch_size)
        val = tf.data.Dataset.zip(val, tf.data.Dataset.from_tensor_slices(
            data.validation.labels).batch(self.batch_size))
        if data.cache == "memory":
            val = val.cache()
        elif data.cache == "disk":
            val = val.cache(str(Path(self._tmp.name) / "validation"))  # type: ignore[union-attr]
        self._validation = val.map(self.pipe.scaled).prefetch(tf.data.AUTOTUNE)

    def _decoded(self, split: FileSplit) -> Any:
        import tensorflow as tf

        shape = (0, *self.data.image_size, self.data.channels)
        if not len(split):
            return tf.zeros(shape, tf.uint8)
        return tf.concat(list(self.pipe.images(split).batch(1024)), axis=0)

    def _on_disk(self, split: FileSplit, path: Path) -> np.ndarray:
        rows = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8,
                                         shape=(len(split), *self.data.image_size,
                                                self.data.channels))
        start = 0
        for batch in self.pipe.images(split).batch(1024):
            rows[start:start + len(batch)] = batch.numpy()
            start += len(batch)
        rows.flush()
        return np.load(path, mmap_mode="r")

    def validation(self) -> Any:
        return self._validation

    def epoch(self, seed: int, epoch: int, shuffle: bool) -> Any:
        """Batches ``(float32 images, labels)`` of ``epoch`` (0-based) of execution ``seed``."""
        import tensorflow as tf

        order = tf.range(len(self.data.train), dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(
                order, seed=tf.constant([int(seed), int(epoch)], dtype=tf.int64))
        labels, paths = self._labels, self._paths
        if self._rows is None:
            batches = tf.data.Dataset.from_tensor_slices(order).map(
                lambda i: (self.pipe.decode(tf.gather(paths, i)), tf.gather(labels, i)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(self.batch_size)
        elif isinstance(self._rows, np.ndarray):  # the disk cache, read by row
            stored = self._rows
            shape = (None, *self.data.image_size, self.data.channels)

            def read(i: Any) -> Any:
                x = tf.numpy_function(lambda rows: stored[np.asarray(rows)], [i], tf.uint8)
                x.set_shape(shape)
                return x, tf.gather(labels, i)

            batches = tf.data.Dataset.from_tensor_slices(order).batch(self.batch_size).map(
                read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        else:
            cached = self._rows
            batches = tf.data.Dataset.from_tensor_slices(order).batch(self.batch_size).map(
                lambda i: (tf.gather(cached, i), tf.gather(labels, i)))
        return batches.map(self.pipe.scaled).prefetch(tf.data.AUTOTUNE)
