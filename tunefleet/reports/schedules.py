"""Hyperparameter schedules of a PBT/PB2 study: which values each trial trained with at each
epoch, and where it copied another trial's weights and continued with mutated values.

Read from the trials' own result rows (each row carries the configuration it trained with, and
the first row after a copy names the trial copied, ``cloned_from``), so a study copied from a
cluster reports the same; Ray's ``pbt_policy_*.txt`` logs are not needed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd

from ..spec.population import POPULATION_SCHEDULERS, mutated_keys
from ..trainables.reporter import CLONED_FROM_KEY, FAILURE_ROW_REASONS
from .load import StudyData

__all__ = ["Schedules", "collect_schedules", "plot_schedules", "schedule_markdown"]

# Changes listed in the report (all of them are in schedules.csv).
_LISTED = 30


@dataclass
class Schedules:
    """Per trial and epoch the mutated hyperparameters' values (``rows``: trial_id, epoch,
    one column per key, ``lr`` as the optimizer trained, ``cloned_from``), and each change
    (``changes``: trial_id, epoch it first trained at the new values, cloned_from, and per
    key the values before and after, ``old → new``, empty where unchanged)."""

    scheduler: str
    keys: list[str]
    log_scale: set[str]
    rows: pd.DataFrame
    changes: pd.DataFrame
    best_trial: Optional[str]

    def trial(self, trial_id: str) -> pd.DataFrame:
        """One trial's rows, by epoch."""
        return self.rows[self.rows["trial_id"] == trial_id].reset_index(drop=True)


def _trial_rows(trial_dir: Path, keys: list[str]) -> list[dict[str, Any]]:
    path = trial_dir / "result.json"
    if not path.is_file():
        return []
    trial_id = trial_dir.name.removeprefix("trial_")
    out = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if record.get("stop_reason") in FAILURE_ROW_REASONS or "epoch" not in record:
            continue
        config = record.get("config") or {}
        out.append({"trial_id": trial_id, "epoch": int(record["epoch"]),
                    **{k: config.get(k) for k in keys}, "lr": record.get("lr"),
                    CLONED_FROM_KEY: record.get(CLONED_FROM_KEY)})
    return out


def collect_schedules(study: StudyData) -> Optional[Schedules]:
    """The schedules of a ``pbt``/``pb2`` study; None for any other scheduler."""
    experiment = study.experiment
    name = experiment.scheduler.name
    if name not in POPULATION_SCHEDULERS:
        return None
    keys = mutated_keys(experiment)
    records: list[dict[str, Any]] = []
    for trial_dir in sorted(study.path.glob("trial_*")):
        records.extend(_trial_rows(trial_dir, keys))
    columns = ["trial_id", "epoch", *keys, "lr", CLONED_FROM_KEY]
    rows = pd.DataFrame.from_records(records, columns=columns)
    # A copy from a trial behind this one trains some epochs again: its rows replace the
    # earlier ones (as load.py keeps an epoch's latest row).
    rows = rows.drop_duplicates(["trial_id", "epoch"], keep="last").sort_values(
        ["trial_id", "epoch"], kind="stable").reset_index(drop=True)
    best = study.best_trial()
    return Schedules(name, keys, {k for k in keys if study.scales.get(k) == "log"}, rows,
                     _changes(rows, keys), None if best is None else str(best["trial_id"]))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def _changes(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = []
    for trial_id, trial in rows.groupby("trial_id", sort=True):
        previous: Optional[pd.Series] = None
        for _, row in trial.iterrows():
            source = row[CLONED_FROM_KEY]
            copied = _copied(source)
            moved = previous is not None and any(not _same(previous[k], row[k]) for k in keys)
            if copied or moved:
                entry: dict[str, Any] = {"trial_id": trial_id, "epoch": int(row["epoch"]),
                                         CLONED_FROM_KEY: source if copied else ""}
                for k in keys:
                    before = previous[k] if previous is not None else None
                    entry[k] = ("" if before is not None and _same(before, row[k])
                                else f"{_short(before)} → {_short(row[k])}")
                out.append(entry)
            previous = row
    return pd.DataFrame(out, columns=["trial_id", "epoch", CLONED_FROM_KEY, *keys])


def _copied(source: Any) -> bool:
    return isinstance(source, str) and bool(source)


def _short(value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def plot_schedules(info: Schedules, path: Path) -> Path:
    """One panel per mutated hyperparameter: each trial's value over each epoch it trained
    (epoch e spans e-1 to e; the best trial in red), a dot where a trial copied another's
    weights and went on from there."""
    from .plots import BEST, _alpha, _plt, _save

    plt = _plt()
    n = len(info.keys)
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 3.8), squeeze=False)
    trials = list(info.rows.groupby("trial_id", sort=True))
    alpha = max(_alpha(len(trials)), 0.35)
    for ax, key in zip(axes[0], info.keys, strict=True):
        for trial_id, rows in trials:
            best = trial_id == info.best_trial
            values = pd.to_numeric(rows[key], errors="coerce").to_numpy(dtype=float)
            epochs = rows["epoch"].to_numpy(dtype=float)
            edges = np.concatenate([[epochs[0] - 1], epochs])
            color = BEST if best else "#1f77b4"
            ax.stairs(values, edges, baseline=None, lw=2.2 if best else 1.0, color=color,
                      alpha=1.0 if best else alpha, label=f"best ({trial_id})" if best else None,
                      zorder=3 if best else 2)
            copied = rows[CLONED_FROM_KEY].map(_copied).to_numpy(dtype=bool)
            ax.plot(edges[:-1][copied], values[copied], "o", ms=4, color=color,
                    alpha=1.0 if best else alpha, zorder=4)
        ax.plot([], [], "o", color="0.4", label="copied another trial")
        if key in info.log_scale:
            ax.set_yscale("log")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epochs trained")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{info.scheduler.upper()}: hyperparameters each trial trained with, by epoch")
    return _save(fig, path)


def schedule_markdown(info: Schedules, table: Callable[[pd.DataFrame], str],
                      image: str) -> list[str]:
    """The report's section: the figure, the best trial's schedule and the changes.
    ``table`` renders a frame as escaped Markdown; ``image`` is the figure's Markdown."""
    label = info.scheduler.upper()
    lines = [f"## Hyperparameter schedules ({label})", "",
             (f"{label} changed {', '.join(info.keys)} while the trials trained: a trial in the "
              "bottom of the population copied the weights of one at the top and went on with "
              "mutated values. Each line is one trial's values by epoch."), "", image, ""]
    changes = info.changes
    copies = int((changes[CLONED_FROM_KEY] != "").sum()) if not changes.empty else 0
    lines += [f"{copies} copies over {info.rows['trial_id'].nunique()} trials.", ""]
    if info.best_trial is not None:
        best = info.trial(info.best_trial)
        if not best.empty:
            lines += [(f"Schedule of the best trial `{info.best_trial}` (the values each epoch "
                       "trained with; `lr` as the optimizer used it):"), "",
                      table(_compact(best, info.keys)), ""]
    if not changes.empty:
        shown = changes.head(_LISTED).rename(columns={CLONED_FROM_KEY: "copied from"})
        more = (f" (the first {_LISTED} of {len(changes)}; all in `schedules.csv`)"
                if len(changes) > _LISTED else "")
        lines += [f"Every change{more}:", "", table(shown), ""]
    return lines


def _compact(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Consecutive epochs with the same values as one row: ``epochs 1–3``."""
    out, start = [], 0
    values = rows[[*keys]].astype(object)
    for i in range(1, len(rows) + 1):
        ended = i == len(rows) or any(not _same(values.iloc[i][k], values.iloc[start][k])
                                      for k in keys) or _copied(rows.iloc[i][CLONED_FROM_KEY])
        if ended:
            first, last = int(rows.iloc[start]["epoch"]), int(rows.iloc[i - 1]["epoch"])
            source = rows.iloc[start][CLONED_FROM_KEY]
            out.append({"epochs": f"{first}" if first == last else f"{first}–{last}",
                        **{k: values.iloc[start][k] for k in keys},
                        "lr": rows.iloc[start]["lr"],
                        "copied from": source if _copied(source) else ""})
            start = i
    return pd.DataFrame(out)
