"""Synthetic studies whose true hyperparameter ranking is known, in the on-disk layout of a real
study (spec.yaml, summary.json, trial_<id>/params.json and result.json), with no Ray or Keras:
for testing :mod:`tunefleet.reports.importance`.

Every scenario shares one space: ``learning_rate`` (log scale), ``dropout``, ``weight_decay``
(log scale), ``batch_size`` and ``optimizer`` (categorical), ``layers`` and ``units_2``, which
exists only when ``layers`` >= 2 (absent from ``params.json`` otherwise, as a conditional
hyperparameter is). A trial's validation accuracy at epoch e is ``final × (1 - exp(-e / tau))``
plus a little noise; the scenario decides what ``final`` and ``tau`` depend on:

- ``learning_rate``: final depends on the learning rate (strongly, in log distance from 3e-3)
  and on ``units_2`` when it is active (a second, smaller effect); the rest is noise.
- ``epochs``: ``epochs`` is searched (1 to 16) and slow learning curves make training longer
  matter most; the learning rate matters a little.
- ``interaction``: accuracy drops only when ``dropout`` and ``weight_decay`` are both high;
  either alone does nothing.
- ``asha``: the learning rate sets how fast a trial learns (``tau``), ``dropout`` how good it
  ends (``final``), and successive halving (grace 1, reduction 3, rungs 1, 3, 9) cuts trials on
  their early values: the early ranking (learning rate) is not the final one (dropout).
- ``pbt``: population-based training mutating the learning rate. Each epoch moves a trial's
  accuracy 30% of the way to a level set by the learning rate it trains with *then* (strongly,
  in log distance from 3e-3) and by ``dropout`` (a smaller effect); every ``PBT_INTERVAL``
  epochs the bottom quarter copies the top quarter's accuracy (its weights) and learning rate,
  times 0.8 or 1.2, and says so in its next row (``cloned_from``), as tunefleet's trainable
  does. Each row's ``config`` holds the values it trained with; ``params.json`` the first ones.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..spec import Experiment, dump_yaml

__all__ = ["write_importance_study", "SCENARIOS", "RUNGS", "PBT_INTERVAL"]

SCENARIOS = ("learning_rate", "epochs", "interaction", "asha", "pbt")
RUNGS = (1, 3, 9)  # successive halving's cuts in the asha scenario (reduction factor 3)
PBT_INTERVAL = 3  # epochs between two decisions in the pbt scenario

_SPACE: dict[str, Any] = {
    "learning_rate": {"type": "loguniform", "low": 1e-4, "high": 1e-1},
    "dropout": {"type": "uniform", "low": 0.0, "high": 0.5},
    "weight_decay": {"type": "loguniform", "low": 1e-5, "high": 1e-2},
    "batch_size": {"type": "choice", "values": [16, 32, 64, 128]},
    "optimizer": {"type": "choice", "values": ["adam", "sgd"]},
    "layers": {"type": "choice", "values": [1, 2, 3]},
    "units_2": {"type": "choice", "values": [16, 64, 256]},
}
_EPOCHS = [1, 2, 4, 8, 16]  # the epochs scenario's choices


def _sample(rng: np.random.Generator, scenario: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "learning_rate": float(10 ** rng.uniform(-4, -1)),
        "dropout": float(rng.uniform(0, 0.5)),
        "weight_decay": float(10 ** rng.uniform(-5, -2)),
        "batch_size": int(rng.choice([16, 32, 64, 128])),
        "optimizer": str(rng.choice(["adam", "sgd"])),
        "layers": int(rng.integers(1, 4)),
    }
    if config["layers"] >= 2:  # conditional: absent when inactive
        config["units_2"] = int(rng.choice([16, 64, 256]))
    if scenario == "epochs":
        config["epochs"] = int(rng.choice(_EPOCHS))
    return config


def _logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _curve(config: dict[str, Any], scenario: str) -> tuple[float, float]:
    """(final accuracy, tau) of a configuration under ``scenario``."""
    lr_distance = math.log10(config["learning_rate"]) - math.log10(3e-3)
    if scenario == "learning_rate":
        units = {16: -0.06, 64: 0.0, 256: 0.04}.get(config.get("units_2", 64), 0.0)
        return 0.95 - 0.12 * lr_distance ** 2 + units, 3.0
    if scenario == "epochs":
        return 0.95 - 0.02 * lr_distance ** 2, 6.0
    if scenario == "interaction":
        both = (_logistic((config["dropout"] - 0.3) / 0.02)
                * _logistic((math.log10(config["weight_decay"]) + 3.3) / 0.1))
        return 0.93 - 0.3 * both, 2.0
    if scenario == "asha":
        speed = (math.log10(config["learning_rate"]) + 4) / 3  # 0 (1e-4) .. 1 (1e-1)
        return 0.96 - 1.2 * config["dropout"] ** 2 - 0.02 * speed, 3.0 - 2.7 * speed
    raise ValueError(f"scenario: unknown {scenario!r}; use one of {', '.join(SCENARIOS)}")


def _halving(curves: list[list[float]], epochs: int) -> list[int]:
    """Epochs each trial trains under synchronous successive halving on ``RUNGS``."""
    alive = list(range(len(curves)))
    length = [epochs] * len(curves)
    for rung in RUNGS:
        if rung >= epochs:
            break
        ranked = sorted(alive, key=lambda t: -curves[t][rung - 1])
        keep = max(1, len(ranked) // 3)
        for t in ranked[keep:]:
            length[t] = rung
        alive = ranked[:keep]
    return length


def _pbt_level(learning_rate: float, config: dict[str, Any]) -> float:
    lr_distance = math.log10(learning_rate) - math.log10(3e-3)
    return 0.95 - 0.12 * lr_distance ** 2 - 0.1 * config["dropout"]


def _population(rng: np.random.Generator, configs: list[dict[str, Any]], epochs: int,
                noise: float, ids: list[str]) -> list[list[tuple[float, float, Optional[str]]]]:
    """Per trial and epoch of the pbt scenario: (accuracy, learning rate, cloned_from)."""
    n = len(configs)
    weights = np.zeros(n)  # what a trial's weights are worth: copied with them
    rates = [float(c["learning_rate"]) for c in configs]
    source: list[Optional[str]] = [None] * n
    rows: list[list[tuple[float, float, Optional[str]]]] = [[] for _ in range(n)]
    for epoch in range(1, epochs + 1):
        reported = np.empty(n)
        for t in range(n):
            weights[t] += 0.3 * (_pbt_level(rates[t], configs[t]) - weights[t])
            reported[t] = weights[t] + float(rng.normal(0, noise))
            rows[t].append((float(reported[t]), rates[t], source[t]))
            source[t] = None
        if epoch % PBT_INTERVAL == 0 and epoch < epochs:
            order = np.argsort(-reported, kind="stable")
            quarter = max(1, n // 4)
            for bottom, top in zip(order[-quarter:], order[:quarter], strict=True):
                weights[bottom] = weights[top]
                rates[bottom] = float(np.clip(rates[top] * rng.choice([0.8, 1.2]), 1e-4, 1e-1))
                source[bottom] = ids[top]
    return rows


def write_importance_study(directory: str | Path, scenario: str, trials: int = 200,
                           epochs: int = 12, seed: int = 0, noise: float = 0.003,
                           name: str = "") -> Path:
    """Write ``scenario``'s study of ``trials`` trials under ``directory/name`` (default: the
    scenario's name); return its path. ``epochs`` is the budget (the top of the searched
    ``epochs`` in the ``epochs`` scenario, which trains each trial its own)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario: unknown {scenario!r}; use one of {', '.join(SCENARIOS)}")
    rng = np.random.default_rng(seed)
    name = name or scenario
    study = Path(directory) / name
    study.mkdir(parents=True, exist_ok=True)
    space = dict(_SPACE)
    if scenario == "epochs":
        space["epochs"] = {"type": "choice", "values": [v for v in _EPOCHS if v <= epochs]}
    scheduler = {
        "asha": {"name": "asha", "grace_period": 1, "reduction_factor": 3},
        "pbt": {"name": "pbt", "perturbation_interval": PBT_INTERVAL, "mutate": ["learning_rate"]},
    }.get(scenario, {"name": "fifo"})
    exp = Experiment.from_dict({
        "name": name, "train": {"epochs": epochs}, "search_space": space,
        "search": {"algorithm": "random", "num_samples": trials, "seed": seed},
        "scheduler": scheduler, "objective": {"metric": "val_accuracy", "mode": "max"},
        "output": {"storage": str(Path(directory))}})
    dump_yaml(exp.to_dict(), study / "spec.yaml")

    configs = [_sample(rng, scenario) for _ in range(trials)]
    if scenario == "epochs":
        for config in configs:
            config["epochs"] = min(config["epochs"], epochs)
    ids = [f"{name}_{t:05d}" for t in range(trials)]
    curves: list[list[float]] = []  # per trial and epoch: accuracy
    trained: list[list[tuple[dict[str, Any], Optional[str]]]] = []  # pbt: config, cloned_from
    if scenario == "pbt":
        for config, rows in zip(configs, _population(rng, configs, epochs, noise, ids),
                                strict=True):
            curves.append([acc for acc, _, _ in rows])
            trained.append([({**config, "learning_rate": lr}, src) for _, lr, src in rows])
    for config in configs if scenario != "pbt" else []:
        final, tau = _curve(config, scenario)
        own = config.get("epochs", epochs)
        curves.append([final * (1 - math.exp(-e / tau)) + float(rng.normal(0, noise))
                       for e in range(1, own + 1)])
    lengths = (_halving(curves, epochs) if scenario == "asha"
               else [len(curve) for curve in curves])
    clock, total = 1_800_000_000.0, 0
    for t, (config, curve, length) in enumerate(zip(configs, curves, lengths, strict=True)):
        trial_id = ids[t]
        trial_dir = study / f"trial_{trial_id}"
        trial_dir.mkdir(exist_ok=True)
        (trial_dir / "params.json").write_text(json.dumps({**config, "trial_seed": t}))
        lines, elapsed = [], 0.0
        own = config.get("epochs", epochs)
        for epoch in range(1, length + 1):
            acc = curve[epoch - 1]
            elapsed += 0.1
            clock += 0.05
            row: dict[str, Any] = {
                "loss": 2.3 * (1 - acc) + 0.05, "val_loss": 2.3 * (1 - acc), "val_accuracy": acc,
                "epoch": epoch, "stop_reason": "completed" if epoch == own else "",
                "timestamp": clock, "time_this_iter_s": 0.1, "time_total_s": elapsed,
                "training_iteration": epoch, "trial_id": trial_id, "done": False,
                "checkpoint_dir_name": None, "executions_trained": 1}
            if trained:
                values, source = trained[t][epoch - 1]
                row.update({"lr": values["learning_rate"], "config": {**values, "trial_seed": t}})
                if source:
                    row["cloned_from"] = source
            lines.append(json.dumps(row))
        total += length
        (trial_dir / "result.json").write_text("\n".join(lines) + "\n")
    (study / "summary.json").write_text(json.dumps({
        "name": name, "wall_time_s": clock - 1_800_000_000.0, "epochs_total": total}))
    return study
