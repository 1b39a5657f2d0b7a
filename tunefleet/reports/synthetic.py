"""A synthetic study written in the same layout as a real one (spec.yaml, summary.json,
trial_<id>/params.json and result.json), with no Ray or Keras: for report benchmarks, tests
of the analyses, and trying reports out. Its objective depends on the learning rate alone."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..spec import Experiment, dump_yaml

__all__ = ["write_synthetic_study", "synthetic_accuracy"]


def synthetic_accuracy(learning_rate: float, epoch: int) -> float:
    """Best near lr=3e-3, worse in log distance from it; rises with epochs."""
    final = 0.97 - 0.12 * (math.log10(learning_rate) - math.log10(3e-3)) ** 2
    return float(max(0.1, final) * (1 - math.exp(-epoch / 4)))


def write_synthetic_study(directory: str | Path, trials: int = 50, epochs: int = 20,
                          seed: int = 0, name: str = "synthetic", search: str = "random",
                          scheduler: str = "asha", cut_fraction: float = 0.75,
                          executions: int = 1) -> Path:
    """Write a study of ``trials`` × up to ``epochs`` under ``directory/name``; return its path.

    ``cut_fraction`` of the trials stop after a few epochs, as under a halving scheduler; each
    epoch is trained by ``executions`` executions (``search.executions_per_trial``).
    """
    rng = np.random.default_rng(seed)
    study = Path(directory) / name
    study.mkdir(parents=True, exist_ok=True)
    sched = {"name": scheduler} if scheduler != "asha" else {"name": "asha", "grace_period": 1}
    exp = Experiment.from_dict({
        "name": name, "train": {"epochs": epochs},
        "search_space": {"learning_rate": {"type": "loguniform", "low": 1e-4, "high": 1e-1},
                         "batch_size": {"type": "choice", "values": [16, 32, 64, 128]},
                         "dropout": {"type": "uniform", "low": 0.0, "high": 0.5},
                         "optimizer": {"type": "choice", "values": ["adam", "sgd"]}},
        "search": {"algorithm": search, "num_samples": trials, "seed": seed,
                   "executions_per_trial": executions},
        "scheduler": sched, "objective": {"metric": "val_accuracy", "mode": "max"},
        "output": {"storage": str(Path(directory))}})
    dump_yaml(exp.to_dict(), study / "spec.yaml")
    clock, total_epochs = 1_800_000_000.0, 0
    for t in range(trials):
        learning_rate = float(10 ** rng.uniform(-4, -1))
        config = {"learning_rate": learning_rate,
                  "batch_size": int(rng.choice([16, 32, 64, 128])),
                  "dropout": float(rng.uniform(0, 0.5)), "optimizer": str(rng.choice(["adam", "sgd"])),
                  "trial_seed": int(rng.integers(2**31 - 1))}
        trial_dir = study / f"trial_{name}_{t:05d}"
        trial_dir.mkdir(exist_ok=True)
        (trial_dir / "params.json").write_text(json.dumps(config))
        # Halving-like cut: most trials stop after a few epochs.
        length = epochs if rng.random() >= cut_fraction else int(rng.integers(1, max(2, epochs // 3)))
        lines, elapsed = [], 0.0
        for epoch in range(1, length + 1):
            acc = synthetic_accuracy(learning_rate, epoch) + rng.normal(0, 0.003)
            step = float(rng.uniform(0.05, 0.15))
            elapsed += step
            clock += step / 2  # two trials at a time
            lines.append(json.dumps({
                "loss": 2.3 * (1 - acc) + 0.05, "accuracy": acc + 0.01, "val_loss": 2.3 * (1 - acc),
                "val_accuracy": acc, "epoch": epoch, "lr": learning_rate,
                "epoch_time_s": step, "stop_reason": "completed" if epoch == epochs else "",
                "timestamp": clock, "time_this_iter_s": step, "time_total_s": elapsed,
                "training_iteration": epoch, "trial_id": f"{name}_{t:05d}", "done": False,
                "checkpoint_dir_name": None, "executions_trained": executions}))
        total_epochs += length * executions
        (trial_dir / "result.json").write_text("\n".join(lines) + "\n")
    (study / "summary.json").write_text(json.dumps({"name": name, "wall_time_s": clock - 1_800_000_000.0,
                                                    "epochs_total": total_epochs}))
    return study
