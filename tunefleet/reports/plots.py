"""Drawing: each function takes collected data and writes one PNG (legible with 200 trials)."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .figures import Anytime, Curves, Effects, Parallel
from .importance import Importance

__all__ = ["plot_curves", "plot_anytime", "plot_parallel", "plot_effects", "plot_importance",
           "plot_confusion"]

BEST = "#d62728"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)
    return path


def _alpha(n: int) -> float:
    return float(np.clip(6.0 / max(n, 1), 0.08, 0.7))


def _lines(ax, curves: list[tuple[np.ndarray, np.ndarray]], **style) -> None:
    """Many polylines as one LineCollection: one draw call instead of one per trial."""
    from matplotlib.collections import LineCollection

    segments = [np.column_stack([x, y]) for x, y in curves if len(x)]
    if segments:
        ax.add_collection(LineCollection(segments, **style))


def plot_curves(info: Curves, path: Path) -> Path:
    """Validation curves per trial: finished trials solid, scheduler-cut ones dashed grey, best red.
    A large study draws a random sample of its trials over the band every trial's values span
    per epoch (10th to 90th percentile, and the median), and says so in the title."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(info.metrics), figsize=(6 * len(info.metrics), 4), squeeze=False)
    shown = info.trials if info.drawn is None else [info.trials[i] for i in info.drawn]
    alpha = _alpha(len(shown))
    for ax, metric in zip(axes[0], info.metrics, strict=True):
        band = info.bands.get(metric)
        if band is not None:
            ax.fill_between(band["epoch"], band["low"], band["high"], color="#1f77b4", alpha=0.18,
                            lw=0, label="10th–90th percentile of all trials")
            ax.plot(band["epoch"], band["median"], color="#08306b", lw=1.6,
                    label="median of all trials")
        others = [t for t in shown if not t["best"]]
        cut = [(t["epoch"], t[metric]) for t in others if t["status"] == "stopped_by_scheduler"]
        full = [(t["epoch"], t[metric]) for t in others if t["status"] != "stopped_by_scheduler"]
        _lines(ax, full, colors="#1f77b4", linewidths=0.8, alpha=alpha)
        _lines(ax, cut, colors="0.55", linestyles="--", linewidths=0.8, alpha=alpha)
        ax.plot([], [], color="#1f77b4", label="trained to its end")  # solid legend swatches
        ax.plot([], [], color="0.55", ls="--", label="stopped by the scheduler")
        for t in info.trials:
            if t["best"]:
                ax.plot(t["epoch"], t[metric], color=BEST, lw=2.2, label=f"best ({t['trial_id']})")
        ax.autoscale()
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if info.drawn is None:
        fig.suptitle(f"{len(info.trials)} trials")
    else:
        fig.suptitle(f"{len(info.trials)} trials: {len(info.drawn)} drawn at random (and the best), "
                     "over the band of all of them per epoch", fontsize=10)
    return _save(fig, path)


def plot_anytime(runs: Sequence[Anytime], path: Path, groups: Optional[dict[str, list[Anytime]]] = None) -> Path:
    """Best-so-far against wall time and against cumulative epochs; several seeds of one setting
    (``groups``) as a mean line with a min–max band on a shared grid."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    groups = groups or {r.label: [r] for r in runs}
    # Colours repeat past ten settings; every group is drawn (a fixed palette dropped extras).
    for color, (label, members) in zip(itertools.cycle(plt.cm.tab10.colors), groups.items()):
        for ax, xkey in zip(axes, ("elapsed_s", "epochs"), strict=True):
            xmax = max((getattr(m, xkey)[-1] for m in members if len(getattr(m, xkey))), default=0)
            grid = np.linspace(0, xmax, 200)
            curves = []
            for m in members:
                x = getattr(m, xkey)
                idx = np.searchsorted(x, grid, side="right") - 1
                curves.append(np.where(idx >= 0, m.best[np.clip(idx, 0, None)], np.nan))
            stack = np.array(curves)
            with warnings.catch_warnings():  # before a run's first result its curve is NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(stack, axis=0) if len(members) > 1 else stack[0]
                low, high = np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
            ax.step(grid, mean, where="post", color=color,
                    label=f"{label} (n={len(members)})" if len(members) > 1 else label)
            if len(members) > 1:
                ax.fill_between(grid, low, high,
                                color=color, alpha=0.2, step="post")
    axes[0].set_xlabel("wall time (s)")
    axes[1].set_xlabel("epochs trained in total")
    for ax in axes:
        ax.set_ylabel(f"best {runs[0].metric} so far ({runs[0].mode})" if runs else "best so far")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_parallel(info: Parallel, path: Path) -> Path:
    """Parallel coordinates of the configurations, coloured by the objective."""
    plt = _plt()
    n_axes = max(len(info.axes), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * n_axes), 4.5))
    if len(info.objective):
        norm = plt.Normalize(np.nanmin(info.objective), np.nanmax(info.objective))
        rows = np.arange(len(info.objective)) if info.drawn is None else info.drawn
        order = rows[np.argsort(info.objective[rows])]  # highest drawn last, on top
        xs = np.arange(len(info.axes))
        _lines(ax, [(xs, info.values[i]) for i in order], cmap="viridis", norm=norm,
               array=info.objective[order], alpha=max(_alpha(len(order)), 0.25), linewidths=1)
        bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax)
        bar.set_label(info.objective_name)
    for i, (positions, labels) in enumerate(info.ticks):
        ax.axvline(i, color="0.3", lw=0.8)
        for p, label in zip(positions, labels, strict=True):
            ax.text(i + 0.03, p, label, fontsize=7, va="center")
    ax.set_xticks(range(len(info.axes)), info.axes, rotation=20)
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(info.axes) - 0.5)
    ax.set_ylim(-0.05, 1.05)
    if info.drawn is not None:
        ax.set_title(f"{len(info.drawn)} of {len(info.objective)} trials: the {info.drawn_best} "
                     f"best and {len(info.drawn) - info.drawn_best} at random", fontsize=9)
    return _save(fig, path)


def plot_effects(info: Effects, path: Path) -> Path:
    """Objective against each hyperparameter (log axis for log-scale ones)."""
    plt = _plt()
    n = max(len(info.panels), 1)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    # The grid can hold more axes than panels; the spare ones are switched off below.
    for ax, panel in zip(axes.flat, info.panels, strict=False):
        x, y, stopped = panel["x"], panel["y"], panel["stopped"]
        if panel["categorical"]:
            cats = sorted(set(x))
            pos = np.array([cats.index(v) for v in x], dtype=float)
            pos += np.random.default_rng(0).uniform(-0.15, 0.15, len(pos))
            ax.set_xticks(range(len(cats)), cats)
            x = pos
        # Thousands of trials: smaller, fainter points, so that density shows instead of a blot.
        size, alpha = (14, 0.7) if len(y) <= 500 else (4, float(np.clip(300 / len(y), 0.1, 0.5)))
        ax.scatter(x[~stopped], y[~stopped], s=size, alpha=alpha, label="trained to its end")
        ax.scatter(x[stopped], y[stopped], s=size, alpha=alpha * 0.7, marker="x", color="0.5",
                   label="stopped by the scheduler")
        if panel["log"]:
            ax.set_xscale("log")
        ax.set_xlabel(panel["name"])
        ax.set_ylabel(f"best {info.objective_name}")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(info.panels):]:
        ax.axis("off")
    if info.panels:
        axes.flat[0].legend(fontsize=7)
    return _save(fig, path)


def plot_importance(info: Importance, path: Path) -> Path:
    """Horizontal bars of importance shares with their spread; the caveat as the title."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 0.5 * max(len(info.names), 2) + 1.2))
    ax.barh(info.names[::-1], info.share[::-1], xerr=info.std[::-1], color="#1f77b4")
    ax.set_xlabel("share of importance (permutation, random-forest surrogate)")
    if info.caveat:
        ax.set_title(info.caveat, fontsize=8, wrap=True)
    return _save(fig, path)


def plot_confusion(confusion: list[list[int]], labels: list[str], path: Path) -> Path:
    """Confusion-matrix heatmap with counts."""
    plt = _plt()
    matrix = np.array(confusion)
    size = max(4, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                color="white" if v > threshold else "black")
    return _save(fig, path)
