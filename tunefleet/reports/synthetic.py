"""A synthetic study written in the same layout as a real one (spec.yaml, summary.json,
trial_<id>/params.json and result.json), with no Ray or Keras: for report benchmarks, tests
of the analyses, and trying reports out. Its objective depends on the learning rate alone
(plus ``offset``, which lets one synthetic "variant" be better than another by a known amount)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..spec import Experiment, dump_yaml
from ..spec.budget import SEARCH_BUDGET_SPENT
from ..trainables.status import STUDY_STOPS_FILE

__all__ = ["write_synthetic_study", "synthetic_accuracy", "GRID_SPACE"]

# The space as grid search lists it (168 configurations); random and TPE sample the ranges.
GRID_SPACE: dict[str, list[Any]] = {
    "learning_rate": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
    "batch_size": [16, 32, 64, 128],
    "dropout": [0.0, 0.25, 0.5],
    "optimizer": ["adam", "sgd"],
}


def synthetic_accuracy(learning_rate: float, epoch: int) -> float:
    """Best near lr=3e-3, worse in log distance from it; rises with epochs."""
    final = 0.97 - 0.12 * (math.log10(learning_rate) - math.log10(3e-3)) ** 2
    return float(max(0.1, final) * (1 - math.exp(-epoch / 4)))


def _space(search: str) -> dict[str, Any]:
    if search == "grid":
        return {k: {"type": "choice", "values": v} for k, v in GRID_SPACE.items()}
    return {"learning_rate": {"type": "loguniform", "low": 1e-4, "high": 1e-1},
            "batch_size": {"type": "choice", "values": [16, 32, 64, 128]},
            "dropout": {"type": "uniform", "low": 0.0, "high": 0.5},
            "optimizer": {"type": "choice", "values": ["adam", "sgd"]}}


def _grid_order(seed: int) -> list[dict[str, Any]]:
    points = [dict(zip(GRID_SPACE, values, strict=True))
              for values in itertools.product(*GRID_SPACE.values())]
    order = np.random.default_rng(seed).permutation(len(points))
    return [points[i] for i in order]


def write_synthetic_study(directory: str | Path, trials: int = 50, epochs: int = 20,
                          seed: int = 0, name: str = "synthetic", search: str = "random",
                          scheduler: str = "asha", cut_fraction: float = 0.75,
                          executions: int = 1, budget: Optional[dict[str, float]] = None,
                          offset: float = 0.0, test_metrics: bool = False,
                          unstarted: int = 0) -> Path:
    """Write a study of ``trials`` × up to ``epochs`` under ``directory/name``; return its path.

    ``cut_fraction`` of the trials stop after a few epochs, as under a halving scheduler; each
    epoch is trained by ``executions`` executions (``search.executions_per_trial``). ``search``
    grid lists :data:`GRID_SPACE` and runs it in a seeded random order.

    ``budget`` (``{"epochs": N}``, ``{"trials": N}`` or ``{"wall_s": S}``) is written as
    ``search.budget`` and ends the study as the stopper would: the trial running when it is
    spent keeps the epochs it trained and is recorded as stopped by the study; ``trials`` is
    then only an upper bound. ``offset`` is added to every accuracy. ``test_metrics`` writes
    ``report/test_metrics.json`` for the best trial, as the report's evaluation does (test
    accuracy a little below the best validation accuracy). ``unstarted`` (with a ``budget``)
    adds that many trials Ray had created but never ran when the budget was spent: a trial
    directory with its params.json and no result, recorded as stopped by the study.
    """
    if unstarted and budget is None:
        raise ValueError(f"unstarted: trials left unstarted are what a spent budget leaves, "
                         f"got unstarted={unstarted} without a budget; pass budget too")
    rng = np.random.default_rng(seed)
    study = Path(directory) / name
    study.mkdir(parents=True, exist_ok=True)
    sched = {"name": scheduler} if scheduler != "asha" else {"name": "asha", "grace_period": 1}
    search_section: dict[str, Any] = {"algorithm": search, "seed": seed,
                                      "executions_per_trial": executions}
    if budget is not None:
        search_section["budget"] = dict(budget)
        if "trials" in budget:
            trials = int(budget["trials"])
    elif search != "grid":
        search_section["num_samples"] = trials
    exp = Experiment.from_dict({
        "name": name, "train": {"epochs": epochs}, "search_space": _space(search),
        "search": search_section, "scheduler": sched,
        "objective": {"metric": "val_accuracy", "mode": "max"},
        "output": {"storage": str(Path(directory))}})
    dump_yaml(exp.to_dict(), study / "spec.yaml")
    grid = _grid_order(seed) if search == "grid" else None
    if grid is not None and budget is None:
        trials = min(trials, len(grid))
    clock, total_epochs, spent = 1_800_000_000.0, 0, False
    best: tuple[float, str] = (-math.inf, "")
    stops: dict[str, str] = {}
    spec_budget = exp.search.budget
    why = SEARCH_BUDGET_SPENT.format(spec_budget.describe()) if spec_budget else ""

    def create(t: int) -> tuple[str, Path, dict[str, Any]]:
        """Trial ``t``'s id, directory and configuration (params.json), as Ray creates them."""
        config: dict[str, Any] = {"learning_rate": float(10 ** rng.uniform(-4, -1)),
                  "batch_size": int(rng.choice([16, 32, 64, 128])),
                  "dropout": float(rng.uniform(0, 0.5)), "optimizer": str(rng.choice(["adam", "sgd"])),
                  "trial_seed": int(rng.integers(2**31 - 1))}
        if grid is not None:
            config.update(grid[t % len(grid)])
        trial_id = f"{name}_{t:05d}"
        trial_dir = study / f"trial_{trial_id}"
        trial_dir.mkdir(exist_ok=True)
        (trial_dir / "params.json").write_text(json.dumps(config))
        return trial_id, trial_dir, config

    created = 0
    for t in range(trials):
        trial_id, trial_dir, config = create(t)
        created += 1
        learning_rate = float(config["learning_rate"])
        # Halving-like cut: most trials stop after a few epochs.
        length = epochs if rng.random() >= cut_fraction else int(rng.integers(1, max(2, epochs // 3)))
        lines, elapsed = [], 0.0
        for epoch in range(1, length + 1):
            acc = synthetic_accuracy(learning_rate, epoch) + offset + rng.normal(0, 0.003)
            step = float(rng.uniform(0.05, 0.15))
            elapsed += step
            clock += step / 2  # two trials at a time
            lines.append(json.dumps({
                "loss": 2.3 * (1 - acc) + 0.05, "accuracy": acc + 0.01, "val_loss": 2.3 * (1 - acc),
                "val_accuracy": acc, "epoch": epoch, "lr": learning_rate,
                "epoch_time_s": step, "stop_reason": "completed" if epoch == epochs else "",
                "timestamp": clock, "time_this_iter_s": step, "time_total_s": elapsed,
                "training_iteration": epoch, "trial_id": trial_id, "done": False,
                "checkpoint_dir_name": None, "executions_trained": executions}))
            total_epochs += executions
            best = max(best, (acc, trial_id))
            if budget is not None and (
                    total_epochs >= budget.get("epochs", math.inf)
                    or clock - 1_800_000_000.0 >= budget.get("wall_s", math.inf)):
                spent = True
                if epoch < epochs:
                    stops[trial_id] = why
                break
        (trial_dir / "result.json").write_text("\n".join(lines) + "\n")
        if spent:
            break
    for t in range(created, created + unstarted):  # created by Ray, never run: no result
        stops[create(t)[0]] = why
    if stops:
        (study / STUDY_STOPS_FILE).write_text(json.dumps(stops, indent=1))
    (study / "summary.json").write_text(json.dumps({
        "name": name, "wall_time_s": clock - 1_800_000_000.0, "epochs_total": total_epochs,
        "stopped": why if spent or unstarted else None}))
    if test_metrics and best[1]:
        report = study / "report"
        report.mkdir(exist_ok=True)
        accuracy = float(np.clip(best[0] - 0.01 + rng.normal(0, 0.005), 0, 1))
        (report / "test_metrics.json").write_text(json.dumps(
            {"trial_id": best[1], "task": "multiclass", "metrics": {"accuracy": accuracy}}))
    return study
