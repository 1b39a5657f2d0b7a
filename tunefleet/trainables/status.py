"""A trial's status from what it left behind: its error, and its last reported result."""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["trial_status", "error_summary", "STATUSES", "FINISHED_STATUSES", "STOP_REASONS",
           "RAY_KEYS", "FAILED_REASONS"]

# What the trainable reports as ``stop_reason`` when it ends a trial itself ("" otherwise).
STOP_REASONS = ("completed", "early_stopping", "nan_loss", "out_of_memory", "timeout")
# Stop reasons that make a trial *failed* (recorded, not retried).
FAILED_REASONS = ("nan_loss", "out_of_memory", "timeout")
# What an error from Ray says when it killed a trial's process for using too much host memory.
_HOST_OOM = ("OutOfMemoryError", "running low on memory")
# Keys Ray adds to every result, and the trainable's own bookkeeping: not training metrics.
RAY_KEYS = frozenset({
    "timestamp", "checkpoint_dir_name", "should_checkpoint", "done", "training_iteration",
    "trial_id", "date", "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip",
    "time_since_restore", "iterations_since_restore", "stop_reason", "epoch_time_s", "config",
    "replicas", "global_batch_size", "gpu_ids", "active_hyperparameters", "node_id"})

STATUSES = ("completed", "stopped_by_scheduler", "early_stopped", "failed", "errored")
# Trials that trained to an end; "failed" (NaN loss) and "errored" (an exception) did not.
FINISHED_STATUSES = ("completed", "early_stopped", "stopped_by_scheduler")


def error_summary(text: str) -> str:
    """One line for the last failure in a Ray error file (``Failure # N ...`` blocks): the
    exception's own line, or for a process Ray killed for host memory, the line saying so."""
    block = text.rsplit("Failure #", 1)[-1]
    lines = [line for line in block.splitlines()[1:] if line.strip() and not line.startswith(" ")]
    host_oom = next((line for line in lines if any(m in line for m in _HOST_OOM)), None)
    return (host_oom or (lines[-1] if lines else "error"))[:500]


def trial_status(error: Optional[str], last: dict[str, Any],
                 failure: Optional[dict[str, Any]] = None) -> tuple[str, str]:
    """(status, reason) from the trial's failure record (``failure.json``, or None), its error
    text (or None) and its last result."""
    if failure:
        return "failed", str(failure.get("reason", failure.get("kind", "failed")))
    if error and any(marker in error for marker in _HOST_OOM):
        return "failed", f"killed for running out of host memory: {error}"
    if error:
        return "errored", error
    completed, early, nan, _, _ = STOP_REASONS
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
