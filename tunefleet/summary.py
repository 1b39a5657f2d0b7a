"""What a finished study amounts to: one row per trial with its status, and the best trial."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from .spec import TRIAL_SEED_KEY, Experiment
from .trainables.status import FINISHED_STATUSES, RAY_KEYS, STATUSES, trial_status

__all__ = ["StudyResult", "summarize"]


@dataclass
class StudyResult:
    """A finished study: the best configuration and metrics, and every trial as a row."""

    path: Path
    best_config: Optional[dict[str, Any]]
    best_metrics: Optional[dict[str, Any]]
    trials: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        """Trials that trained to an end (completed, early-stopped or cut by the scheduler)."""
        return int(self.trials["status"].isin(FINISHED_STATUSES).sum()) if len(self.trials) else 0


def _error_text(result: Any) -> Optional[str]:
    if result.error is None:
        return None
    text = str(result.error).strip().splitlines()
    cause = [line for line in text if line and not line.startswith(" ")]
    return (cause[-1] if cause else repr(result.error))[:500]


def _best_of(df: pd.DataFrame, metric: str, mode: str) -> Optional[pd.Series]:
    if df is None or metric not in df or df[metric].dropna().empty:
        return None
    values = df[metric].astype(float).replace([math.inf, -math.inf], math.nan).dropna()
    if values.empty:
        return None
    return df.loc[values.idxmax() if mode == "max" else values.idxmin()]


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summarize(result_grid: Any, experiment: Experiment, wall_time_s: float,
              cluster: dict[str, Any]) -> StudyResult:
    """Tidy the ResultGrid into a trials table and summary; write both into the study dir."""
    metric, mode = experiment.objective.metric, experiment.objective.mode
    rows, histories = [], {}
    for result in result_grid:
        history = result.metrics_dataframe
        last = dict(result.metrics or {})
        error = _error_text(result)
        status, reason = trial_status(error, last if history is not None and len(history) else {})
        trial_id = last.get("trial_id") or Path(result.path).name
        best = _best_of(history, metric, mode)
        row = {"trial_id": trial_id, "status": status, "reason": reason,
               "epochs": int(history["epoch"].max()) if history is not None and "epoch" in history
               else 0,
               f"best_{metric}": _plain(best[metric]) if best is not None else None,
               "best_epoch": int(best["epoch"]) if best is not None else None,
               "time_s": _plain(last.get("time_total_s", 0.0)),
               "checkpoint": None}
        for key, value in (result.config or {}).items():
            row[f"config/{key}"] = _plain(value)
        for key in ("loss", "val_loss", metric):
            if key in last:
                row[f"last_{key}"] = _plain(last[key])
        if best is not None and status != "errored":
            ckpt = result.get_best_checkpoint(metric, mode) if result.best_checkpoints else None
            row["checkpoint"] = ckpt.path if ckpt is not None else None
        rows.append(row)
        histories[trial_id] = best
    trials = pd.DataFrame(rows)
    study_dir = experiment.study_dir

    best_config = best_metrics = None
    best_block: dict[str, Any] = {}
    scored = trials.dropna(subset=[f"best_{metric}"]) if len(trials) else trials
    if len(scored):
        pick = scored[f"best_{metric}"].astype(float)
        row = scored.loc[pick.idxmax() if mode == "max" else pick.idxmin()]
        best_config = {k.removeprefix("config/"): _plain(v) for k, v in row.items()
                       if k.startswith("config/") and k != f"config/{TRIAL_SEED_KEY}"}
        best_series = histories[row["trial_id"]]
        best_metrics = {k: _plain(v) for k, v in best_series.items()
                        if k not in RAY_KEYS and not k.startswith("config/")}
        best_block = {"trial_id": row["trial_id"], "config": best_config,
                      "epoch": int(row["best_epoch"]), "metrics": best_metrics,
                      "trial_seed": _plain(row.get(f"config/{TRIAL_SEED_KEY}")),
                      "checkpoint": row["checkpoint"]}

    counts = {s: int((trials["status"] == s).sum()) if len(trials) else 0 for s in STATUSES}
    summary = {
        "name": experiment.name,
        "objective": {"metric": metric, "mode": mode},
        "search": experiment.search.algorithm,
        "scheduler": experiment.scheduler.name,
        "trials": {"total": len(trials), **counts},
        "best": best_block or None,
        "wall_time_s": round(wall_time_s, 3),
        "epochs_total": int(trials["epochs"].sum()) if len(trials) else 0,
        "resources_per_trial": {"cpu": experiment.resources.cpu, "gpu": experiment.resources.gpu},
        "cluster": cluster,
    }
    study_dir.mkdir(parents=True, exist_ok=True)
    (study_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    trials.to_csv(study_dir / "trials.csv", index=False)
    return StudyResult(study_dir, best_config, best_metrics, trials, summary)
