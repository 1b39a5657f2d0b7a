#!/usr/bin/env python
"""tunefleet vs KerasTuner on the same workload, measured in one run.

A small CNN on digits (tunefleet's `cnn` builder for both, so the models are identical),
16 trials of at most 10 epochs over the same space: learning rate, batch size, filters, kernel
size, dropout. KerasTuner: sequential RandomSearch (its usual use). tunefleet: HyperOpt + ASHA,
two 1-CPU trials at a time on an embedded local Ray. Each run is a fresh subprocess timed end
to end (imports and Ray start-up included), as a user would experience it; runs are paired by
seed and alternate which system goes first.

Prints per seed and the median wall-time ratio (tunefleet / KerasTuner) and both systems' best
validation accuracy. Needs `pip install -e '.[cpu,kerastuner]'`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPACE = {
    "learning_rate": (3e-4, 1e-2),
    "batch_size": [16, 32, 64],
    "filters": [16, 32],
    "kernel_size": [2, 3],
    "dropout": (0.0, 0.4),
}


def run_tunefleet(seed: int, trials: int, epochs: int, out: str) -> dict:
    import tunefleet

    spec = {
        "name": f"bench_{seed}",
        "data": {"dataset": "digits"},
        "model": {"builder": "cnn", "params": {"conv_blocks": 2, "dense_units": 64}},
        "train": {"epochs": epochs},
        "search_space": {
            "learning_rate": {"type": "loguniform", "low": SPACE["learning_rate"][0],
                              "high": SPACE["learning_rate"][1]},
            "batch_size": {"type": "choice", "values": SPACE["batch_size"]},
            "filters": {"type": "choice", "values": SPACE["filters"]},
            "kernel_size": {"type": "choice", "values": SPACE["kernel_size"]},
            "dropout": {"type": "uniform", "low": SPACE["dropout"][0], "high": SPACE["dropout"][1]},
        },
        "search": {"algorithm": "hyperopt", "num_samples": trials, "n_initial_points": 4,
                   "seed": seed},
        "scheduler": {"name": "asha", "grace_period": 2, "reduction_factor": 3},
        "objective": {"metric": "val_accuracy", "mode": "max"},
        "resources": {"cpu": 1},
        "cluster": {"num_cpus": 2},
        "output": {"storage": out},
    }
    result = tunefleet.run(spec, overwrite=True)
    return {"best_val_accuracy": result.best_metrics["val_accuracy"],
            "epochs": result.summary["epochs_total"], "trials": len(result.trials)}


def run_kerastuner(seed: int, trials: int, epochs: int, out: str,
                   steps_per_execution: int = 1) -> dict:
    import keras
    import keras_tuner as kt

    from tunefleet.data import load_dataset
    from tunefleet.spec.sections import DataSpec
    from tunefleet.trainables.builders import cnn

    data = load_dataset(DataSpec(dataset="digits")).training  # the split tunefleet uses

    class CNN(kt.HyperModel):
        def build(self, hp):
            model = cnn(data.info, conv_blocks=2, dense_units=64,
                        filters=hp.Choice("filters", SPACE["filters"]),
                        kernel_size=hp.Choice("kernel_size", SPACE["kernel_size"]),
                        dropout=hp.Float("dropout", *SPACE["dropout"]))
            lr = hp.Float("learning_rate", *SPACE["learning_rate"], sampling="log")
            model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                          steps_per_execution=steps_per_execution)
            return model

        def fit(self, hp, model, *args, **kwargs):
            return model.fit(*args, batch_size=hp.Choice("batch_size", SPACE["batch_size"]),
                             **kwargs)

    tuner = kt.RandomSearch(CNN(), objective="val_accuracy", max_trials=trials, seed=seed,
                            directory=out, project_name=f"kt_{seed}", overwrite=True)
    tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                 epochs=epochs, verbose=0)
    best = tuner.oracle.get_best_trials(1)[0]
    return {"best_val_accuracy": float(best.score), "epochs": trials * epochs, "trials": trials}


def _measure(system: str, seed: int, trials: int, epochs: int, kt_spe: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--worker", system, "--seed", str(seed),
                               "--trials", str(trials), "--epochs", str(epochs), "--out", out,
                               "--kt-steps-per-execution", str(kt_spe)],
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
    parser.add_argument("--kt-steps-per-execution", type=int, default=1,
                        help="KerasTuner's compile(steps_per_execution=...): 1 is Keras' default "
                             "(what KerasTuner users run); 8 is tunefleet's default")
    args = parser.parse_args()
    if args.worker == "tunefleet":
        result = run_tunefleet(args.seed, args.trials, args.epochs, args.out)
    elif args.worker == "kerastuner":
        result = run_kerastuner(args.seed, args.trials, args.epochs, args.out,
                                args.kt_steps_per_execution)
    if args.worker:
        print("RESULT " + json.dumps(result), flush=True)
        return

    ratios, acc = [], {"tunefleet": [], "kerastuner": []}
    print(f"{args.trials} trials, at most {args.epochs} epochs, CNN on digits, {os.cpu_count()} "
          f"cores; KerasTuner compiles with steps_per_execution={args.kt_steps_per_execution}, "
          "tunefleet with its default (8)")
    for seed in range(args.seeds):
        order = ["kerastuner", "tunefleet"] if seed % 2 == 0 else ["tunefleet", "kerastuner"]
        runs = {system: _measure(system, seed, args.trials, args.epochs,
                                 args.kt_steps_per_execution) for system in order}
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
