"""What a finished study amounts to: one row per trial with its status, and the best trial."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from ..reports.load import load_study
from ..search_spaces.hypermodel_space import SPACE_FILE
from ..spec import TRIAL_SEED_KEY, Experiment
from ..storage import StudyStorage, experiment_storage
from ..trainables.status import FINISHED_STATUSES, STATUSES

__all__ = ["StudyResult", "summarize", "recorded_config", "typed_value"]


@dataclass
class StudyResult:
    """A finished study: the best configuration and metrics, and every trial as a row."""

    path: Path
    best_config: Optional[dict[str, Any]]
    best_metrics: Optional[dict[str, Any]]
    trials: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    # Where the study lives (``path`` is its local directory, or a URI study's mirror).
    location: str = ""
    # The study as loaded to summarise it (reports.StudyData): the report reuses it.
    study: Any = field(default=None, repr=False, compare=False)

    @property
    def finished(self) -> int:
        """Trials that trained to an end (completed, early-stopped or cut by the scheduler)."""
        return int(self.trials["status"].isin(FINISHED_STATUSES).sum()) if len(self.trials) else 0


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python values, NaN and infinities as None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def typed_value(value: Any, declared: dict[str, Any]) -> Any:
    """``value`` as the hyperparameter described by ``declared`` (an entry of a hypermodel
    study's search_space.json) types it: an ``Int`` that went through a float column (``24.0``)
    comes back as ``24``, a ``Choice`` value as the declared value it equals."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    kind = declared.get("type")
    if kind == "int" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(round(value))
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "boolean":
        return bool(value)
    if kind == "fixed" and "value" in declared:
        return declared["value"]
    if kind == "choice":
        for candidate in declared.get("values", []):
            if candidate == value and isinstance(candidate, bool) == isinstance(value, bool):
                return candidate
    return value


def recorded_config(path: Path, trial_id: str, names: list[str],
                    fallback: Optional[Any] = None) -> dict[str, Any]:
    """The trial's values of ``names`` (and its seed) as Ray recorded them in its params.json,
    not as a trials table holds them (pandas makes an int column with a gap float), cast through
    each hypermodel hyperparameter's declared type; values a trial did not use are left out.
    ``fallback`` (the trial's table row) stands in for a missing params.json."""
    params = Path(path) / f"trial_{trial_id}" / "params.json"
    config = (json.loads(params.read_text()) if params.is_file() else
              {k: fallback.get(k) for k in [*names, TRIAL_SEED_KEY]} if fallback is not None else {})
    space_file = Path(path) / SPACE_FILE
    declared = ({p["name"]: p for p in json.loads(space_file.read_text())["params"]}
                if space_file.is_file() else {})
    out = {}
    for name in [*names, TRIAL_SEED_KEY]:
        value = config.get(name)
        value = typed_value(None if value is pd.NA else _plain(value), declared.get(name, {}))
        if value is not None:
            out[name] = value
    return out


def summarize(experiment: Experiment, wall_time_s: float, cluster: dict[str, Any],
              stopped: Optional[str] = None, storage: Optional[StudyStorage] = None) -> StudyResult:
    """Summarise the finished study from its directory, with the same reading the report uses
    (reports/load.py), so that the run's summary and the report never disagree. ``storage``:
    the study's, when the caller already holds it (its filesystem is then resolved once)."""
    storage = storage or experiment_storage(experiment)
    study = load_study(storage)
    searched = [*study.hyperparameters, TRIAL_SEED_KEY]
    trials = study.trials
    if trials[TRIAL_SEED_KEY].isna().all():  # HyperOpt trials derive their seed: no column
        trials = trials.drop(columns=[TRIAL_SEED_KEY])
    trials = trials.rename(columns={k: f"config/{k}" for k in searched})

    best_config = best_metrics = None
    best_block: Optional[dict[str, Any]] = None
    best = study.best_trial()
    if best is not None:
        recorded = recorded_config(study.path, best["trial_id"], study.hyperparameters, best)
        # Hyperparameters a conditional (hypermodel) configuration did not use are left out.
        best_config = {k: v for k, v in recorded.items() if k != TRIAL_SEED_KEY}
        history = study.history
        row = history[(history["trial_id"] == best["trial_id"])
                      & (history["epoch"] == best["best_epoch"])].iloc[-1]
        best_metrics = {k: _plain(row[k]) for k in ["epoch", *study.metrics] if k in row}
        best_block = {"trial_id": best["trial_id"], "config": best_config,
                      "epoch": int(best["best_epoch"]), "metrics": best_metrics,
                      "trial_seed": recorded.get(TRIAL_SEED_KEY),
                      "checkpoint": best["checkpoint"]}

    counts = {s: int((trials["status"] == s).sum()) for s in STATUSES}
    summary = {
        "name": experiment.name,
        "objective": {"metric": study.objective, "mode": study.mode},
        "search": experiment.search.algorithm,
        "scheduler": experiment.scheduler.name,
        "trials": {"total": len(trials), **counts},
        "best": best_block,
        "wall_time_s": round(wall_time_s, 3),
        "epochs_total": int(trials["epochs_run"].sum()),
        "resources_per_trial": {"cpu": experiment.resources.cpu, "gpu": experiment.resources.gpu},
        "cluster": cluster,
        "stopped": stopped,  # why the study ended before every trial ran, if it did
        "location": storage.location,
    }
    text = json.dumps(summary, indent=2, default=str)
    (study.path / "summary.json").write_text(text)
    study.summary = json.loads(text)  # what a load from disk now would read
    trials.to_csv(study.path / "trials.csv", index=False)
    storage.upload("summary.json", "trials.csv")
    return StudyResult(study.path, best_config, best_metrics, trials, summary, storage.reference,
                       study=study)
