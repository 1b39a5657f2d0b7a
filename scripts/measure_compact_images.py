"""Bytes an image dataset puts into Ray's object store as float32 model inputs (what trials were
sent before) and as uint8 pixels scaled in the trial (now), and whether training is unchanged.

    .venv/bin/python scripts/measure_compact_images.py [--dataset fashion_mnist]

Prints the bytes of each (Ray's own serializer: what ``ray.put`` writes), then trains a small
MLP for two epochs from each through the trials' pipeline (``EpochData``) and compares the
weights bit for bit, and once more resumed from a model saved after the first epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _model(shape: tuple[int, ...], classes: int):
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(),
                              keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(classes, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _train(data, resume_after: int = 0) -> tuple[list, float]:
    """Two epochs on ``data`` as a trial feeds them; saved and reloaded after
    ``resume_after`` epochs when given."""
    import keras

    from tunefleet.trainables.epoch_data import EpochData

    model = _model(data.info.input_shape, data.info.num_classes)
    feed = EpochData(data, 64, shuffle=True, pipeline=True)
    history = None
    for epoch in range(2):
        if resume_after and epoch == resume_after:
            path = os.path.join(tempfile.mkdtemp(), "model.keras")
            model.save(path)
            model = keras.models.load_model(path)
            feed = EpochData(data, 64, shuffle=True, pipeline=True)
        history = model.fit(**feed.epoch(11, epoch), validation_data=feed.validation(),
                            epochs=epoch + 1, initial_epoch=epoch, shuffle=False, verbose=0)
    return model.get_weights(), float(history.history["val_accuracy"][-1])


def as_floats(data):
    """The float32 model inputs trials were sent before (a TrainingData without ``scale``)."""
    from tunefleet.data import TrainingData

    return TrainingData(data.info, data.x_train, data.y_train, data.x_val, data.y_val)


def training_comparison(dataset: str, train_samples: int | None) -> dict:
    """Two epochs from float32 inputs and from uint8 pixels, and the uint8 run resumed."""
    import numpy as np

    from tunefleet.data import load_dataset
    from tunefleet.spec.sections import DataSpec

    small = load_dataset(DataSpec(dataset=dataset, max_train_samples=train_samples)).training
    floats, acc_floats = _train(as_floats(small))
    uint8, acc_uint8 = _train(small)
    resumed, _ = _train(small, resume_after=1)
    return {"val_accuracy_float32": acc_floats, "val_accuracy_uint8": acc_uint8,
            "same_weights": all(np.array_equal(a, b) for a, b in zip(floats, uint8, strict=True)),
            "resume_exact": all(np.array_equal(a, b) for a, b in zip(uint8, resumed, strict=True))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--train-samples", type=int, default=6000,
                        help="training rows for the training comparison")
    args = parser.parse_args()

    import ray

    from tunefleet.data import load_dataset
    from tunefleet.spec.sections import DataSpec

    compact = load_dataset(DataSpec(dataset=args.dataset)).training
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    serialize = ray._private.worker.global_worker.get_serialization_context().serialize
    before = serialize(as_floats(compact)).total_bytes
    after = serialize(compact).total_bytes
    ray.shutdown()
    print(json.dumps({
        "dataset": args.dataset,
        "train_and_validation_rows": len(compact.y_train) + len(compact.y_val),
        "object_store_bytes_float32": before, "object_store_bytes_uint8": after,
        "ratio": round(before / after, 2),
        **training_comparison(args.dataset, args.train_samples)}, indent=1))


if __name__ == "__main__":
    main()
