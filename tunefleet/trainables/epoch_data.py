"""The data a trial's ``fit`` sees each epoch, in an order that is a function of the execution's
seed and the epoch alone: a trial resumed from a checkpoint at any epoch sees the same batches
as one that ran straight through (Keras' own shuffling restarts from the seed on resume).

On the TensorFlow backend a builder's model is fed a ``tf.data`` pipeline over tensors made
once per trial: each epoch gathers its batches through a stateless shuffle, with no copy of the
training set (measured on 2 CPU cores: 0.8x the time of Keras' own shuffled ``fit`` on digits,
0.9x on a Fashion-MNIST-sized MLP, where reordering the NumPy arrays every epoch cost 1.2x).
A hypermodel's ``fit`` may choose its own batch size, so it gets the arrays, reordered.

Images stored compactly (uint8, ``TrainingData.scale``) stay uint8 in those tensors and are
scaled per batch, exactly as the driver would have (``float32(pixels) * scale``). An image
folder (:class:`~tunefleet.data.ImageFolderData`) is streamed from its files instead
(:class:`~tunefleet.data.ImageFolderFeed`), in the same seeded order per epoch.
"""

from __future__ import annotations

from typing import Any, Union

from ..data import ImageFolderData, ImageFolderFeed, TrainingData
from .executions import epoch_order

__all__ = ["EpochData"]


class EpochData:
    """``fit`` keyword arguments (``x``, ``y``, ``validation_data``, ``batch_size``) per epoch."""

    def __init__(self, data: Union[TrainingData, ImageFolderData], batch_size: int,
                 shuffle: bool, pipeline: bool):
        self.data: Any = data
        self.batch_size, self.shuffle = int(batch_size), shuffle
        self._tensors: Any = None
        self._validation: Any = None
        self._folder: Any = None
        if isinstance(data, ImageFolderData):
            self._folder = ImageFolderFeed(data, self.batch_size)
            return
        if pipeline:
            import keras

            pipeline = keras.backend.backend() == "tensorflow"
        if pipeline:
            import tensorflow as tf

            self._tensors = (tf.constant(data.stored_x_train), tf.constant(data.y_train))
            self._validation = tf.data.Dataset.from_tensor_slices(
                (data.stored_x_val, data.y_val)).batch(self.batch_size).cache().map(
                self._inputs)

    def _inputs(self, x: Any, y: Any) -> Any:
        """Model inputs of stored images (uint8 → float32 × scale); others as they are."""
        scale = getattr(self.data, "scale", None)
        if scale is None:
            return x, y
        import tensorflow as tf

        return tf.cast(x, tf.float32) * tf.constant(scale, tf.float32), y

    @property
    def pipeline(self) -> bool:
        """True when batches come from a ``tf.data`` pipeline (no ``batch_size`` to pass)."""
        return self._tensors is not None or self._folder is not None

    def validation(self) -> Any:
        if self._folder is not None:
            return self._folder.validation()
        return self._validation if self.pipeline else (self.data.x_val, self.data.y_val)

    def epoch(self, seed: int, epoch: int) -> dict[str, Any]:
        """``x``/``y`` for ``epoch`` (0-based) of the execution seeded ``seed``."""
        if self._folder is not None:
            return {"x": self._folder.epoch(seed, epoch, self.shuffle)}
        if not self.pipeline:
            x, y = self.data.x_train, self.data.y_train
            if self.shuffle:
                order = epoch_order(seed, epoch, len(y))
                x, y = x[order], y[order]
            return {"x": x, "y": y}
        import tensorflow as tf

        xs, ys = self._tensors
        rows = tf.range(len(self.data.y_train), dtype=tf.int64)
        if self.shuffle:
            rows = tf.random.experimental.stateless_shuffle(
                rows, seed=tf.constant([int(seed), int(epoch)], dtype=tf.int64))
        batches = tf.data.Dataset.from_tensor_slices(rows).batch(self.batch_size).map(
            lambda i: self._inputs(tf.gather(xs, i), tf.gather(ys, i)))
        return {"x": batches.prefetch(2)}
