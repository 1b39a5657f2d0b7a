"""A trial's status from what it left behind: its error, its last reported result, and what
the study's driver recorded about stopping it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

__all__ = ["trial_status", "error_summary", "study_stop", "STATUSES", "FINISHED_STATUSES",
           "STOP_REASONS", "RAY_KEYS", "FAILED_REASONS", "STUDY_STOPS_FILE", "FAILURE_REASON_KEY"]

# Written by the driver in the study's directory (tunefleet/study/failure_policy.py): the trials
# the study itself stopped (failure.max_consecutive, Ctrl-C, the driver ending), with why.
STUDY_STOPS_FILE = "stopped_by_study.json"

# What the trainable reports as ``stop_reason`` when it ends a trial itself ("" otherwise).
# failed_trial: the user's code raised keras_tuner.errors.FailedTrialError; fatal_error: it
# raised keras_tuner.errors.FatalError, which also stops the study; storage_not_visible: the
# trial's node cannot see the study's directory (a node that joined after the driver's check).
STOP_REASONS = ("completed", "early_stopping", "nan_loss", "out_of_memory", "timeout",
                "failed_trial", "fatal_error", "storage_not_visible")
# Stop reasons that make a trial *failed* (recorded, not retried).
FAILED_REASONS = ("nan_loss", "out_of_memory", "timeout", "failed_trial", "fatal_error",
                  "storage_not_visible")
# A failed trial's reason, in the row that records its failure (where no failure.json can be
# written: the study's directory is not visible from the trial's node).
FAILURE_REASON_KEY = "failure_reason"
# What an error from Ray says when it killed a trial's process for using too much host memory.
_HOST_OOM = ("OutOfMemoryError", "running low on memory")
# Keys Ray adds to every result, and the trainable's own bookkeeping: not training metrics.
RAY_KEYS = frozenset({
    "timestamp", "checkpoint_dir_name", "should_checkpoint", "done", "training_iteration",
    "trial_id", "date", "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip",
    "time_since_restore", "iterations_since_restore", "stop_reason", "epoch_time_s", "config",
    "replicas", "global_batch_size", "gpu_ids", "active_hyperparameters", "node_id",
    "failure_reason"})

STATUSES = ("completed", "stopped_by_scheduler", "early_stopped", "stopped_by_study", "failed",
            "errored")
# Trials that trained to an end; "failed" (NaN loss, memory, timeout), "errored" (an exception)
# and "stopped_by_study" (the study ended before they did) did not.
FINISHED_STATUSES = ("completed", "early_stopped", "stopped_by_scheduler")


def error_summary(text: str) -> str:
    """One line for the last failure in a Ray error file (``Failure # N ...`` blocks): the
    exception's own line, or for a process Ray killed for host memory, the line saying so."""
    block = text.rsplit("Failure #", 1)[-1]
    lines = [line for line in block.splitlines()[1:] if line.strip() and not line.startswith(" ")]
    host_oom = next((line for line in lines if any(m in line for m in _HOST_OOM)), None)
    return (host_oom or (lines[-1] if lines else "error"))[:500]


def study_stop(trial_dir: Path) -> Optional[str]:
    """Why the study stopped the trial in ``trial_dir`` (``STUDY_STOPS_FILE`` next to it), or
    None if it did not."""
    try:
        stops = json.loads((Path(trial_dir).parent / STUDY_STOPS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stops, dict):
        return None
    reason = stops.get(Path(trial_dir).name.removeprefix("trial_"))
    return str(reason) if reason else None


def trial_status(error: Optional[str], last: dict[str, Any],
                 failure: Optional[dict[str, Any]] = None,
                 stopped_by_study: Optional[str] = None) -> tuple[str, str]:
    """(status, reason) from the trial's failure record (``failure.json``, or None), its error
    text (or None), its last result, and why the study stopped it (:func:`study_stop`). What
    the trial itself said it ended with comes first: only a trial that stopped without saying
    why was stopped by the scheduler or, if the driver recorded it, by the study."""
    if failure:
        return "failed", str(failure.get("reason", failure.get("kind", "failed")))
    if error and any(marker in error for marker in _HOST_OOM):
        return "failed", f"killed for running out of host memory: {error}"
    if error:
        return "errored", error
    completed, early, nan, oom, timeout = STOP_REASONS[:5]
    reason = last.get("stop_reason", "")
    epoch = last.get("epoch")
    if reason == nan:
        return "failed", f"loss became NaN at epoch {epoch}"
    if reason in (oom, timeout):  # its failure.json is missing, but the trial said so
        what = "ran out of memory" if reason == oom else "timed out"
        return "failed", f"{what} at epoch {epoch}"
    if reason in FAILED_REASONS:  # failed_trial, fatal_error without their record
        return "failed", str(last.get(FAILURE_REASON_KEY) or f"{reason} at epoch {epoch}")
    if reason == early:
        return "early_stopped", f"no improvement, stopped at epoch {epoch}"
    if reason == completed:
        return "completed", ""
    if stopped_by_study:
        return "stopped_by_study", (f"{stopped_by_study}, at epoch {epoch}" if last
                                    else f"{stopped_by_study}, before its first epoch")
    if not last:
        return "errored", "reported no result"
    return "stopped_by_scheduler", f"stopped at epoch {epoch}"
