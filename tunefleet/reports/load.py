"""Read a finished study from its directory alone (a study copied back from a cluster reads the
same as a live one) into two tidy tables: one row per trial, one row per trial per epoch."""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from ..spec import TRIAL_SEED_KEY, Experiment, SpecError, load_yaml
from ..spec.sections import metric_direction as _direction
from ..search_spaces.hypermodel_space import read_space_kinds
from ..trainables.executions import STD_PREFIX
from ..trainables.reporter import ACTIVE_KEY, FAILURE_ROW_REASONS, REPORTED_AT_KEY, TRAINED_KEY
from ..trainables.status import (RAY_KEYS, STOP_REASONS, STUDY_STOPS_FILE, error_summary, study_stop,
                                 trial_status)
from ..storage import StudyStorage, is_uri, study_storage
from ..trainables.watchdog import FAILURE_FILE, read_failure

# Written by the driver's failure policy for each retry of a trial (tunefleet/study/failure_policy.py).
RETRIES_FILE = "retries.json"

__all__ = ["StudyData", "load_study", "fetch_study", "metric_direction", "BOOKKEEPING"]

# Threads that read trial directories: the reads wait on the disk or the network, not the CPU.
READ_THREADS = 8

# Keys that are not training metrics (Ray's bookkeeping, the trial's own, the epoch counter).
BOOKKEEPING = RAY_KEYS | {"epoch", TRAINED_KEY, REPORTED_AT_KEY, "epochs_run"}
# An epoch whose loss went NaN: reported, but its weights are lost and it has no checkpoint.
NAN_LOSS = STOP_REASONS[2]


def metric_direction(name: str) -> str:
    """``min`` for losses and errors, ``max`` for scores and metrics we do not know."""
    return _direction(name) or "max"


@dataclass
class StudyData:
    """A study as read from disk: its spec, summary, trials table and per-epoch history."""

    path: Path
    experiment: Experiment
    summary: dict[str, Any]
    trials: pd.DataFrame
    history: pd.DataFrame
    hyperparameters: list[str]
    metrics: list[str]
    scales: dict[str, str]  # per hyperparameter: "categorical", "linear" or "log"
    # Where it was loaded from, when that was a URI or a StudyStorage: a report goes next to it.
    storage: Optional[StudyStorage] = None

    @property
    def log_scale(self) -> set[str]:
        return {k for k, v in self.scales.items() if v == "log"}

    @property
    def objective(self) -> str:
        return self.experiment.objective.metric

    @property
    def mode(self) -> str:
        return self.experiment.objective.direction

    @property
    def epochs_run(self) -> int:
        """Epochs actually trained, the work done: every execution's, epochs repeated after a
        retry or pause included (the last epoch reached, for a table without that column)."""
        column = "epochs_run" if "epochs_run" in self.trials else "epochs_trained"
        return int(self.trials[column].fillna(0).sum())

    def best_trial(self) -> Optional[pd.Series]:
        """The row of the trial with the best objective at any epoch (None if none scored)."""
        col = f"best_{self.objective}"
        scored = self.trials.dropna(subset=[col])
        if scored.empty:
            return None
        values = scored[col].astype(float)
        return scored.loc[values.idxmax() if self.mode == "max" else values.idxmin()]


def _error_text(trial_dir: Path, retries: int = 0) -> Optional[str]:
    """The last error of a trial that ended in one; None if it had none, or if every error was
    followed by a retry (Ray keeps the errors a retried trial recovered from in error.txt)."""
    path = trial_dir / "error.txt"
    if not path.exists():
        return None
    text = path.read_text()
    if text.count("Failure #") <= retries:
        return None
    return error_summary(text)


@dataclass
class _TrialFiles:
    """What one trial directory holds, read in one pass (one listing, each file once)."""

    trial_dir: Path
    trial_id: str
    config: dict[str, Any]
    records: list[dict[str, Any]]
    retries: int
    error: Optional[str]
    failure: Optional[dict[str, Any]]
    checkpoints: set[str]  # names of the checkpoint directories kept on disk


def _read_trial(trial_dir: Path) -> _TrialFiles:
    trial_id = trial_dir.name.removeprefix("trial_")
    try:
        names = set(os.listdir(trial_dir))
    except NotADirectoryError:
        names = set()
    config = json.loads((trial_dir / "params.json").read_text()) if "params.json" in names else {}
    records: list[dict[str, Any]] = []
    if "result.json" in names:
        lines = [line for line in (trial_dir / "result.json").read_text().splitlines() if line.strip()]
        # One parse per file, not one per line: the same values, a tenth of the calls.
        records = json.loads("[" + ",".join(lines) + "]") if lines else []
        for record in records:
            record["trial_id"] = trial_id
    retries = (len(json.loads((trial_dir / RETRIES_FILE).read_text()))
               if RETRIES_FILE in names else 0)
    return _TrialFiles(trial_dir, trial_id, config, records, retries,
                       _error_text(trial_dir, retries) if "error.txt" in names else None,
                       read_failure(trial_dir / FAILURE_FILE) if FAILURE_FILE in names else None,
                       {n for n in names if n.startswith("checkpoint_")})


def _read_trials(path: Path) -> list[_TrialFiles]:
    """Every trial directory of the study, in name order; files are read by a few threads, so
    that a study on a network filesystem does not wait for one small file at a time."""
    dirs = sorted(path.glob("trial_*"))
    if len(dirs) < 64:
        return [_read_trial(d) for d in dirs]
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        return list(pool.map(_read_trial, dirs, chunksize=32))


def _best_checkpoints(history: pd.DataFrame, kept: dict[str, set[str]], objective: str,
                      mode: str) -> dict[str, str]:
    """Per trial, the name of the kept checkpoint whose epoch scored best on the objective
    (the first such epoch on a tie); trials with none are left out."""
    if "checkpoint_dir_name" not in history or objective not in history:
        return {}
    named = history[history["checkpoint_dir_name"].notna()]
    if named.empty:
        return {}
    on_disk = [name in kept.get(trial, ()) for trial, name in
               zip(named["trial_id"], named["checkpoint_dir_name"], strict=True)]
    named = named[np.asarray(on_disk, dtype=bool)]
    values = named[objective].astype(float)
    finite = np.isfinite(values)
    named, values = named[finite], values[finite]
    if named.empty:
        return {}
    by_trial = values.groupby(named["trial_id"], sort=False)
    pick = by_trial.idxmax() if mode == "max" else by_trial.idxmin()
    return dict(zip(pick.index, named.loc[pick.to_numpy(), "checkpoint_dir_name"], strict=True))


def fetch_study(location: str | Path | StudyStorage) -> Path:
    """The local directory of the study at ``location``: the directory itself, or for a URI
    (``s3://bucket/results/name``) its local mirror, brought up to date: every trial's results,
    and the checkpoints of the best trial only (the one the report evaluates)."""
    if isinstance(location, (str, Path)) and not is_uri(str(location)):
        return Path(location).expanduser().resolve()
    return load_study(location).path


def load_study(path: str | Path | StudyStorage) -> StudyData:
    """Load ``path`` (``output.storage/<name>``, a directory or a URI); raise SpecError if it is
    not a study. A study at a URI is downloaded into its local mirror first (every trial's
    results, then the checkpoints of the best trial only, the one the report evaluates).

    Load a study once and pass the :class:`StudyData` on: every report function takes it."""
    if isinstance(path, (str, Path)) and not is_uri(str(path)):
        return _load_local(Path(path).expanduser().resolve())
    storage = path if isinstance(path, StudyStorage) else study_storage(str(path))
    if not storage.remote:
        study = _load_local(storage.local_dir)
        study.storage = storage
        return study
    if storage.read_text("spec.yaml") is None:
        raise SpecError(storage.location, "not a tunefleet study (no spec.yaml)",
                        fix="pass the URI `tunefleet run` wrote: output.storage/<name>")
    study = _load_local(storage.download(checkpoints=False))
    study.storage = storage
    best = study.best_trial()
    if best is not None:  # its checkpoints only: the row's checkpoint column is then refreshed
        trial = f"trial_{best['trial_id']}"
        storage.download(checkpoints=True, under=trial)
        rows = study.history[study.history["trial_id"] == best["trial_id"]]
        kept = {best["trial_id"]: _read_trial(study.path / trial).checkpoints}
        name = _best_checkpoints(rows, kept, study.objective, study.mode).get(best["trial_id"])
        study.trials.loc[best.name, "checkpoint"] = (
            str(study.path / trial / name) if name is not None else None)
    return study


def _load_local(path: Path) -> StudyData:
    if not (path / "spec.yaml").is_file():
        raise SpecError(str(path), "not a tunefleet study directory (no spec.yaml)",
                        fix="pass the directory `tunefleet run` wrote: output.storage/<name>")
    experiment = Experiment.from_dict(load_yaml(path / "spec.yaml"))
    summary_path = path / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    objective, mode = experiment.objective.metric, experiment.objective.direction
    scales = read_space_kinds(path)
    if scales is None:
        scales = {k: ("categorical" if e.type in ("choice", "grid") else
                      "log" if e.type == "loguniform" else "linear")
                  for k, e in experiment.search_space.items() if e.type != "fixed"}
    searched = list(scales)

    # Read once for all trials (study_stop would read it again for each).
    stops_file = (path / STUDY_STOPS_FILE).exists()
    files = _read_trials(path)
    records, rows_meta = [], []
    for trial in files:
        config, last = trial.config, (trial.records[-1] if trial.records else {})
        records.extend(trial.records)
        status, reason = trial_status(trial.error, last, trial.failure,
                                      study_stop(trial.trial_dir) if stops_file else None)
        row: dict[str, Any] = {"trial_id": trial.trial_id}
        row.update({k: config.get(k) for k in searched})
        if ACTIVE_KEY in last:
            row[ACTIVE_KEY] = last[ACTIVE_KEY]
        row.update({"status": status, "reason": reason, "retries": trial.retries,
                    "epochs_trained": 0, "epochs_run": 0,
                    "time_s": float(last.get("time_total_s", 0.0)),
                    "cpu": experiment.resources.cpu, "gpu": experiment.resources.gpu,
                    TRIAL_SEED_KEY: config.get(TRIAL_SEED_KEY)})
        rows_meta.append((row, trial.trial_dir))

    history = pd.DataFrame.from_records(records) if records else pd.DataFrame(
        columns=["trial_id", "epoch", "timestamp", "time_total_s"])
    # A failure's row (out of memory, timeout) carries the last finished epoch's number but no
    # measurement: it must not replace that epoch. The trial's status still reads it (``last``).
    if "stop_reason" in history:
        history = history[~history["stop_reason"].isin(FAILURE_ROW_REASONS)]
    # Epochs actually trained, summed over every reported row before repeats are dropped: each
    # row says how many executions trained it (studies from before that count one per row).
    per_row = (history[TRAINED_KEY].fillna(1) if TRAINED_KEY in history else
               pd.Series(1.0, index=history.index)).astype(int)
    trained = per_row.groupby(history["trial_id"]).sum()
    # Per epoch kept below: the work of that epoch and of its repeats, so the history sums to it.
    history = history.assign(epochs_run=per_row.groupby(
        [history["trial_id"], history["epoch"]], dropna=False).transform("sum"))
    # A retried trial repeats the epochs after its checkpoint: keep the latest of each.
    history = history.drop_duplicates(["trial_id", "epoch"], keep="last").sort_values(
        ["trial_id", "epoch"], kind="stable").reset_index(drop=True)
    # Per-execution values and spreads ("execution_0/loss", "std/loss") stay in the history.
    metrics = [c for c in history.columns if c not in BOOKKEEPING and c != "trial_id"
               and "/" not in c and pd.api.types.is_numeric_dtype(history[c])]
    spread = f"{STD_PREFIX}{objective}"  # across executions, when there were several
    values = history[metrics].astype(float).replace([math.inf, -math.inf], np.nan)
    groups = values.groupby(history["trial_id"], sort=False)
    # A NaN-loss epoch stays in the history but is never a trial's best: no model to restore.
    measured = values.copy()
    if "stop_reason" in history:
        measured.loc[history["stop_reason"].eq(NAN_LOSS).to_numpy()] = np.nan
    best_groups = measured.groupby(history["trial_id"], sort=False)
    aggregated = {}
    for m in metrics:
        direction = mode if m == objective else metric_direction(m)
        aggregated[f"best_{m}"] = best_groups[m].max() if direction == "max" else best_groups[m].min()
        aggregated[f"last_{m}"] = groups[m].last()
    epochs = history.groupby("trial_id", sort=False)["epoch"].max()
    best_epoch, best_spread = {}, {}
    if objective in history:
        scored = measured[objective].dropna()
        if not scored.empty:
            by_trial = scored.groupby(history.loc[scored.index, "trial_id"], sort=False)
            idx = by_trial.idxmax() if mode == "max" else by_trial.idxmin()
            best_epoch = history.loc[idx.to_numpy(), "epoch"].set_axis(idx.index).to_dict()
            if spread in history:
                best_spread = history.loc[idx.to_numpy(), spread].set_axis(idx.index).to_dict()
    kept = {t.trial_id: t.checkpoints for t in files if t.checkpoints}
    checkpoints = _best_checkpoints(history, kept, objective, mode) if kept else {}
    # Plain dicts: one lookup per trial and column, not a pandas call each.
    aggregated_values = {key: series.to_dict() for key, series in aggregated.items()}
    epochs_by_trial, trained_by_trial = epochs.to_dict(), trained.to_dict()
    table = []
    for row, trial_dir in rows_meta:
        trial_id = row["trial_id"]
        row["epochs_trained"] = int(epochs_by_trial.get(trial_id, 0))
        row["epochs_run"] = int(trained_by_trial.get(trial_id, 0))
        name = checkpoints.get(trial_id)
        row["checkpoint"] = str(trial_dir / name) if name is not None else None
        for key, values_by_trial in aggregated_values.items():
            value = values_by_trial.get(trial_id, np.nan)
            row[key] = None if pd.isna(value) else float(value)
        best = best_epoch.get(trial_id)
        row["best_epoch"] = int(best) if best is not None else None
        if spread in history:
            value = best_spread.get(trial_id)
            row[f"std_{objective}"] = None if value is None or pd.isna(value) else float(value)
        table.append(row)
    # A study whose trials all failed before reporting still has every column a report reads.
    columns = ["trial_id", *searched, "status", "reason", "retries", "epochs_trained", "epochs_run",
               "time_s", "cpu", "gpu",
               TRIAL_SEED_KEY, "checkpoint", f"best_{objective}", "best_epoch"]
    trials_df = pd.DataFrame(table).reindex(columns=list(dict.fromkeys(
        [*columns, *(table[0] if table else [])])))
    # An integer hyperparameter some trials did not use stays integer (nullable Int64), not the
    # float column pandas would make of it (``units_1: 24.0`` breaks ``keras.layers.Dense``).
    for name in searched:
        used = [row[name] for row in table if row.get(name) is not None]
        if used and all(type(v) is int for v in used):
            trials_df[name] = pd.array([row.get(name) for row in table], dtype="Int64")

    if history.empty:
        history = pd.DataFrame(columns=["trial_id", "epoch", "elapsed_s", "time_total_s", "epochs_run"])
    else:
        # The trial's float wall-clock time; Ray's whole-second timestamp for older studies.
        when = (history[REPORTED_AT_KEY].fillna(history["timestamp"])
                if REPORTED_AT_KEY in history else history["timestamp"]).astype(float)
        start = (when - history["time_total_s"]).min()
        history["elapsed_s"] = when - start
        keep = ["trial_id", "epoch", "elapsed_s", "time_total_s", "epochs_run", *metrics,
                *(c for c in history.columns if "/" in c)]
        if "checkpoint_dir_name" in history:
            keep.append("checkpoint_dir_name")
        history = history[keep].reset_index(drop=True)
    return StudyData(path, experiment, summary, trials_df, history, searched, metrics, scales)
