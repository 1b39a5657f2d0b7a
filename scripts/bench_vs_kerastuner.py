#!/usr/bin/env python
"""tunefleet vs KerasTuner on the same program, measured in one run.

One KerasTuner program (a small CNN on digits written as a ``kt.HyperModel`` whose ``fit`` tunes
the batch size; 16 trials of at most 10 epochs over learning rate, batch size, filters, kernel
size and dropout) run twice: with ``import keras_tuner as kt`` (its sequential RandomSearch)
and with ``import tunefleet.keras_tuner as kt`` plus tunefleet's own keywords (ASHA with its
defaults, two 1-CPU trials at a time on an embedded local Ray). Nothing else differs. Each run
is a fresh subprocess timed end to end (imports and Ray start-up included), as a user would
experience it; runs are paired by seed and alternate which system goes first. Both score the
best model ``get_best_models()`` returns on the validation data.

Prints per seed and the median wall-time ratio (tunefleet / KerasTuner) and both systems' best
validation accuracy. Needs `pip install -e '.[cpu,kerastuner]'`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import keras_tuner

ROOT = Path(__file__).resolve().parents[1]
SPACE = {
    "learning_rate": (3e-4, 1e-2),
    "batch_size": [16, 32, 64],
    "filters": [16, 32],
    "kernel_size": [2, 3],
    "dropout": (0.0, 0.4),
}
# What tunefleet's run adds to the program: its scheduler (ASHA with tunefleet's defaults:
# grace period 1 epoch, reduction factor 3) and how many trials run at once (each takes one
# CPU, the default resources_per_trial).
TUNEFLEET_KEYWORDS = {"scheduler": "asha", "max_concurrent": 2}


class CNN(keras_tuner.HyperModel):
    """The user's hypermodel (tunefleet's ``cnn`` builder, so the models match earlier runs)."""

    def __init__(self, info):
        super().__init__()
        self.info = info

    def build(self, hp):
        from tunefleet.trainables.builders import cnn

        model = cnn(self.info, conv_blocks=2, dense_units=64,
                    filters=hp.Choice("filters", SPACE["filters"]),
                    kernel_size=hp.Choice("kernel_size", SPACE["kernel_size"]),
                    dropout=hp.Float("dropout", *SPACE["dropout"]))
        lr = hp.Float("learning_rate", *SPACE["learning_rate"], sampling="log")
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, hp, model, *args, **kwargs):
        return model.fit(*args, batch_size=hp.Choice("batch_size", SPACE["batch_size"]),
                         **kwargs)


def program(module: str, seed: int, trials: int, epochs: int, out: str) -> dict:
    """The user's program; ``module`` is the only difference between the two runs (plus
    tunefleet's keywords)."""
    kt = importlib.import_module(module)
    from tunefleet.data import load_dataset
    from tunefleet.spec.sections import DataSpec

    data = load_dataset(DataSpec(dataset="digits")).training  # the same split for both
    extra = TUNEFLEET_KEYWORDS if module.startswith("tunefleet") else {}
    tuner = kt.RandomSearch(CNN(data.info), objective="val_accuracy", max_trials=trials,
                            seed=seed, directory=out, project_name=f"bench_{seed}",
                            overwrite=True, **extra)
    tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                 epochs=epochs, verbose=0)
    best = tuner.get_best_models(1)[0]
    score = best.evaluate(data.x_val, data.y_val, verbose=0, return_dict=True)["accuracy"]
    epochs_run = (tuner.result.summary["epochs_total"] if module.startswith("tunefleet")
                  else trials * epochs)
    return {"best_val_accuracy": float(score), "epochs": epochs_run, "trials": trials}


def _measure(system: str, seed: int, trials: int, epochs: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--worker", system, "--seed", str(seed),
                               "--trials", str(trials), "--epochs", str(epochs), "--out", out],
                              env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{system} seed {seed} failed:\n{proc.stderr[-3000:]}")
    line = [out for out in proc.stdout.splitlines() if out.startswith("RESULT ")][-1]
    return {**json.loads(line[7:]), "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--worker", choices=["tunefleet", "kerastuner"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker:
        module = "tunefleet.keras_tuner" if args.worker == "tunefleet" else "keras_tuner"
        result = program(module, args.seed, args.trials, args.epochs, args.out)
        print("RESULT " + json.dumps(result), flush=True)
        return

    ratios, acc = [], {"tunefleet": [], "kerastuner": []}
    print(f"{args.trials} trials, at most {args.epochs} epochs, CNN on digits, {os.cpu_count()} "
          f"cores; the same KerasTuner program, tunefleet adding {TUNEFLEET_KEYWORDS}")
    for seed in range(args.seeds):
        order = ["kerastuner", "tunefleet"] if seed % 2 == 0 else ["tunefleet", "kerastuner"]
        runs = {system: _measure(system, seed, args.trials, args.epochs) for system in order}
        tf_run, kt_run = runs["tunefleet"], runs["kerastuner"]
        ratio = tf_run["wall_s"] / kt_run["wall_s"]
        ratios.append(ratio)
        for system in acc:
            acc[system].append(runs[system]["best_val_accuracy"])
        print(f"seed {seed}: KerasTuner {kt_run['wall_s']:.1f} s (best val_accuracy "
              f"{kt_run['best_val_accuracy']:.4f}, {kt_run['epochs']} epochs) | tunefleet "
              f"{tf_run['wall_s']:.1f} s ({tf_run['best_val_accuracy']:.4f}, {tf_run['epochs']} "
              f"epochs) | ratio {ratio:.2f}", flush=True)
    med_tf, med_kt = statistics.median(acc["tunefleet"]), statistics.median(acc["kerastuner"])
    print(f"median wall-time ratio tunefleet/KerasTuner: {statistics.median(ratios):.2f} "
          f"(target <= 0.50)")
    print(f"median best val_accuracy: tunefleet {med_tf:.4f}, KerasTuner {med_kt:.4f}, "
          f"difference {med_tf - med_kt:+.4f} (target >= -0.005)")


if __name__ == "__main__":
    main()
