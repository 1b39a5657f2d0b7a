"""Figure data computed from a loaded study (``collect_*``), separate from drawing (plots.py)
so tests check the numbers and the same data feeds PNG, Markdown and HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pandas as pd

from .importance import encode_configs
from .load import StudyData

__all__ = ["Curves", "Anytime", "Parallel", "Effects", "collect_curves", "collect_anytime",
           "collect_parallel", "collect_effects", "best_so_far"]


@dataclass
class Curves:
    """Per trial: epochs and the validation curves; status and whether it is the best."""

    metrics: list[str]
    trials: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Anytime:
    """Best objective found so far, against wall time and against epochs trained in total."""

    label: str
    metric: str
    mode: str
    elapsed_s: np.ndarray
    epochs: np.ndarray
    best: np.ndarray


@dataclass
class Parallel:
    """Configurations on normalised axes (0..1), coloured by the objective."""

    axes: list[str]
    ticks: list[tuple[list[float], list[str]]]
    values: np.ndarray  # trials × axes
    objective: np.ndarray
    objective_name: str


@dataclass
class Effects:
    """Objective against each hyperparameter."""

    objective_name: str
    panels: list[dict[str, Any]]


def best_so_far(values: np.ndarray, mode: str) -> np.ndarray:
    """Running best, ignoring NaN (NaN until the first finite value)."""
    fill = -np.inf if mode == "max" else np.inf
    clean = np.where(np.isfinite(values), values, fill)
    running = np.maximum.accumulate(clean) if mode == "max" else np.minimum.accumulate(clean)
    return np.where(np.isfinite(running), running, np.nan)


def collect_curves(study: StudyData) -> Curves:
    """Validation objective and validation loss per trial per epoch."""
    metrics = [study.objective] + (["val_loss"] if study.objective != "val_loss" else (
        [m for m in study.metrics if m.startswith("val_") and m != "val_loss"][:1] or ["loss"]))
    metrics = [m for m in metrics if m in study.history]
    best = study.best_trial()
    status = dict(zip(study.trials["trial_id"], study.trials["status"], strict=True))
    curves = Curves(metrics)
    for trial_id, rows in study.history.groupby("trial_id", sort=False):
        curves.trials.append({
            "trial_id": trial_id, "status": status.get(trial_id, ""),
            "best": best is not None and trial_id == best["trial_id"],
            "epoch": rows["epoch"].to_numpy(),
            **{m: rows[m].astype(float).to_numpy() for m in metrics}})
    return curves


def collect_anytime(study: StudyData, label: Optional[str] = None) -> Anytime:
    """Results in the order they arrived; the running best of the objective."""
    h = study.history.sort_values("elapsed_s")
    values = h[study.objective].astype(float).to_numpy() if study.objective in h else np.array([])
    return Anytime(label or study.experiment.name, study.objective, study.mode,
                   h["elapsed_s"].to_numpy(),
                   # Epochs trained so far: executions and repeats after a retry counted.
                   np.cumsum(h["epochs_run"].to_numpy(int)) if "epochs_run" in h else
                   np.arange(1, len(h) + 1), best_so_far(values, study.mode))


def collect_parallel(study: StudyData) -> Parallel:
    """One polyline per scored trial across every searched hyperparameter."""
    col = f"best_{study.objective}"
    scored = study.trials.dropna(subset=[col])
    # A conditional hyperparameter no scored trial used has nothing to draw.
    names = [n for n in study.hyperparameters if scored[n].notna().any()]
    log_scale = study.log_scale
    encoded = encode_configs(scored[names], log_scale) if names else pd.DataFrame(index=scored.index)
    values, ticks = [], []
    for name in names:
        col_values = encoded[name].to_numpy(dtype=float)
        lo, hi = np.nanmin(col_values), np.nanmax(col_values)
        span = hi - lo if hi > lo else 1.0
        values.append((col_values - lo) / span)
        raw = scored[name]
        discrete = study.scales[name] == "categorical"
        if pd.to_numeric(raw, errors="coerce").notna().all() and not raw.map(
                lambda v: isinstance(v, bool)).any():
            # Ticks at the values a trial can take: the listed ones, or three across a range.
            shown = (np.unique(col_values[np.isfinite(col_values)]) if discrete else
                     np.linspace(lo, hi, 3) if hi > lo else np.array([lo]))
            labels = [f"{(10 ** v if name in log_scale else v):.3g}" for v in shown]
            ticks.append((list((shown - lo) / span), labels))
        else:
            cats = sorted(raw.dropna().astype(str).unique())
            ticks.append(([i / max(len(cats) - 1, 1) for i in range(len(cats))], cats))
    matrix = np.array(values).T if values else np.zeros((len(scored), 0))
    return Parallel(names, ticks, matrix, scored[col].astype(float).to_numpy(), study.objective)


def collect_effects(study: StudyData) -> Effects:
    """For each hyperparameter: its values and each trial's best objective."""
    col = f"best_{study.objective}"
    scored = study.trials.dropna(subset=[col])
    panels = []
    for name in study.hyperparameters:
        raw = scored[name].dropna()
        if raw.empty:
            continue  # a conditional hyperparameter no scored trial used
        numeric = pd.to_numeric(raw, errors="coerce")
        categorical = study.scales[name] == "categorical" and not (
            numeric.notna().all() and raw.nunique() > 3)
        panels.append({"name": name, "x": raw.astype(str).to_numpy() if categorical else
                       numeric.to_numpy(dtype=float),
                       "y": scored.loc[raw.index, col].astype(float).to_numpy(),
                       "log": name in study.log_scale, "categorical": categorical,
                       "stopped": (scored.loc[raw.index, "status"]
                                   == "stopped_by_scheduler").to_numpy()})
    return Effects(study.objective, panels)
