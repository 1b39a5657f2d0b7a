"""A trial's status from what it left behind: its error, and its last reported result."""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["trial_status", "STATUSES", "FINISHED_STATUSES", "STOP_REASONS", "RAY_KEYS"]

# What the trainable reports as ``stop_reason`` when it ends a trial itself ("" otherwise).
STOP_REASONS = ("completed", "early_stopping", "nan_loss")
# Keys Ray adds to every result, and the trainable's own bookkeeping: not training metrics.
RAY_KEYS = frozenset({
    "timestamp", "checkpoint_dir_name", "should_checkpoint", "done", "training_iteration",
    "trial_id", "date", "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip",
    "time_since_restore", "iterations_since_restore", "stop_reason", "epoch_time_s", "config"})

STATUSES = ("completed", "stopped_by_scheduler", "early_stopped", "failed", "errored")
# Trials that trained to an end; "failed" (NaN loss) and "errored" (an exception) did not.
FINISHED_STATUSES = ("completed", "early_stopped", "stopped_by_scheduler")


def trial_status(error: Optional[str], last: dict[str, Any]) -> tuple[str, str]:
    """(status, reason) from the trial's error text (or None) and its last result."""
    if error:
        return "errored", error
    completed, early, nan = STOP_REASONS
    reason = last.get("stop_reason", "")
    if reason == nan:
        return "failed", f"loss became NaN at epoch {last.get('epoch')}"
    if reason == early:
        return "early_stopped", f"no improvement, stopped at epoch {last.get('epoch')}"
    if reason == completed:
        return "completed", ""
    if not last:
        return "errored", "reported no result"
    return "stopped_by_scheduler", f"stopped at epoch {last.get('epoch')}"
