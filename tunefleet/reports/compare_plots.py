"""Drawing a comparison (reports/compare.py computes it): anytime curves of every variant with
their bands, against the budget's unit and against wall time; each seed's best at the budget
and its best model's test score."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Optional

import numpy as np

from .compare import Band, Comparison
from .plots import _plt, _save

__all__ = ["plot_comparison_curves", "plot_comparison_bests"]


def plot_comparison_curves(c: Comparison, path: Path) -> Path:
    """Mean best-so-far over the seeds of each variant with its 95% bootstrap band; the budget
    as a vertical line, the target as a dotted one."""
    plt = _plt()
    panels: list[tuple[dict[str, Band], str, Optional[float]]] = [
        (c.bands, c.budget.axis, c.budget.amount)]
    if c.wall_bands:
        panels.append((c.wall_bands, "wall time (s)", None))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.2), squeeze=False)
    colors = dict(zip(c.bands, itertools.cycle(plt.cm.tab10.colors)))
    for ax, (bands, xlabel, budget) in zip(axes[0], panels, strict=True):
        for label, band in bands.items():
            color = colors[label]
            ax.step(band.x, band.mean, where="post", color=color, lw=1.8,
                    label=f"{label} (n={band.n})")
            if band.n > 1:
                ax.fill_between(band.x, band.low, band.high, color=color, alpha=0.2, step="post",
                                lw=0)
        if budget is not None:
            ax.axvline(budget, color="0.3", ls="--", lw=1, label=f"budget {c.budget.describe()}")
        if np.isfinite(c.target):
            ax.axhline(c.target, color="0.5", ls=":", lw=1, label=f"target {c.target:.4g}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"best {c.objective} so far ({c.mode})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("mean over seeds, with its 95% bootstrap band", fontsize=10)
    return _save(fig, path)


def plot_comparison_bests(c: Comparison, path: Path) -> Path:
    """Per variant: each seed's best objective at the budget (dots) with the mean and its
    interval; beside it, each seed's best model on the held-out test split."""
    plt = _plt()
    have_test = c.test_metric is not None
    fig, axes = plt.subplots(1, 2 if have_test else 1, figsize=(5.5 * (2 if have_test else 1),
                                                                 0.5 * len(c.seed_values) + 2.2),
                             squeeze=False)
    labels = list(c.seed_values)
    rows = c.variants.set_index("variant")
    panels = [("best", "", f"best {c.objective} at {c.budget.describe()}")]
    if have_test:
        panels.append(("test", "test ", f"test {c.test_metric} of each seed's best model"))
    for ax, (key, prefix, xlabel) in zip(axes[0], panels, strict=True):
        for y, label in enumerate(labels):
            values = np.asarray(c.seed_values[label][key], dtype=float)
            ax.scatter(values, np.full(len(values), y), s=22, color="#1f77b4", alpha=0.8, zorder=3)
            mean = rows.loc[label, key if key == "test" else "mean"]
            low, high = rows.loc[label, f"{prefix}low".strip()], rows.loc[label, f"{prefix}high".strip()]
            if np.isfinite(mean):
                ax.plot([mean], [y], marker="|", ms=16, color="#d62728", zorder=4)
            if np.isfinite(low):
                ax.plot([low, high], [y, y], color="#d62728", lw=2, alpha=0.6, zorder=2)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_ylim(-0.7, len(labels) - 0.3)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle("dots: seeds; red: mean and 95% bootstrap interval", fontsize=9)
    return _save(fig, path)
