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
           "collect_parallel", "collect_effects", "best_so_far", "MAX_CURVES", "MAX_PARALLEL"]


# Past this many trials the curves figure draws a random sample of them as lines, over a band
# of every trial's values per epoch: 10,000 lines would be one blot and slow to draw.
MAX_CURVES = 200
MAX_PARALLEL = 500  # lines in the parallel-coordinates figure; a tenth of them the best trials


@dataclass
class Curves:
    """Per trial: epochs and the validation curves; status and whether it is the best. For a
    study of more than ``MAX_CURVES`` trials, ``drawn`` says which (a seeded random sample)
    the figure draws as lines, and ``bands`` holds, per metric, every trial's spread per epoch
    (``epoch``, ``low``/``median``/``high``: the 10th, 50th and 90th percentiles)."""

    metrics: list[str]
    trials: list[dict[str, Any]] = field(default_factory=list)
    drawn: Optional[list[int]] = None  # indexes into ``trials``; None: all of them
    bands: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


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
    # Past MAX_PARALLEL trials, the rows drawn: the ``drawn_best`` best and a seeded random
    # sample of the others (10,000 lines would cover the axes in one colour); None: all.
    drawn: Optional[np.ndarray] = None
    drawn_best: int = 0


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


def collect_curves(study: StudyData, max_lines: int = MAX_CURVES, seed: int = 0) -> Curves:
    """Validation objective and validation loss per trial per epoch (trials in the order they
    first appear in the history); past ``max_lines`` trials, a sample to draw and the bands."""
    metrics = [study.objective] + (["val_loss"] if study.objective != "val_loss" else (
        [m for m in study.metrics if m.startswith("val_") and m != "val_loss"][:1] or ["loss"]))
    history = study.history
    metrics = [m for m in metrics if m in history]
    best = study.best_trial()
    status = dict(zip(study.trials["trial_id"], study.trials["status"], strict=True))
    curves = Curves(metrics)
    # One stable sort and slices of NumPy arrays, not one pandas group per trial.
    codes, ids = pd.factorize(history["trial_id"])
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(ids) + 1))
    columns = {"epoch": history["epoch"].to_numpy()[order],
               **{m: history[m].astype(float).to_numpy()[order] for m in metrics}}
    best_id = best["trial_id"] if best is not None else None
    for i, trial_id in enumerate(ids):
        lo, hi = bounds[i], bounds[i + 1]
        curves.trials.append({
            "trial_id": trial_id, "status": status.get(trial_id, ""),
            "best": best_id is not None and trial_id == best_id,
            **{k: v[lo:hi] for k, v in columns.items()}})
    if len(curves.trials) > max_lines:
        rng = np.random.default_rng(seed)
        curves.drawn = sorted(int(i) for i in rng.choice(len(curves.trials), max_lines, replace=False))
        for m in metrics:
            per_epoch = history[m].astype(float).groupby(history["epoch"]).quantile(np.array([0.1, 0.5, 0.9]))
            table = per_epoch.unstack()
            curves.bands[m] = {"epoch": table.index.to_numpy(dtype=float),
                               "low": table[0.1].to_numpy(), "median": table[0.5].to_numpy(),
                               "high": table[0.9].to_numpy()}
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


def collect_parallel(study: StudyData, max_lines: int = MAX_PARALLEL, seed: int = 0) -> Parallel:
    """One polyline per scored trial across every searched hyperparameter (past ``max_lines``
    trials, which of them to draw)."""
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
    objective = scored[col].astype(float).to_numpy()
    info = Parallel(names, ticks, matrix, objective, study.objective)
    if len(objective) > max_lines:
        ranked = np.argsort(-objective if study.mode == "max" else objective, kind="stable")
        info.drawn_best = max_lines // 10
        others = np.random.default_rng(seed).choice(ranked[info.drawn_best:],
                                                    max_lines - info.drawn_best, replace=False)
        info.drawn = np.sort(np.concatenate([ranked[:info.drawn_best], others]))
    return info


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
