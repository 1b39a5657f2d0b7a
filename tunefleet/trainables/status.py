"""A trial's status from what it left behind: its error, and its last reported result."""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["trial_status", "STATUSES", "FINISHED_STATUSES"]

STATUSES = ("completed", "stopped_by_scheduler", "early_stopped", "failed", "errored")
# Trials that trained to an end; "failed" (NaN loss) and "errored" (an exception) did not.
FINISHED_STATUSES = ("completed", "early_stopped", "stopped_by_scheduler")


def trial_status(error: Optional[str], last: dict[str, Any]) -> tuple[str, str]:
    """(status, reason) from the trial's error text (or None) and its last result."""
    if error:
        return "errored", error
    reason = last.get("stop_reason", "")
    if reason == "nan_loss":
        return "failed", f"loss became NaN at epoch {last.get('epoch')}"
    if reason == "early_stopping":
        return "early_stopped", f"no improvement, stopped at epoch {last.get('epoch')}"
    if reason == "completed":
        return "completed", ""
    if not last:
        return "errored", "reported no result"
    return "stopped_by_scheduler", f"stopped at epoch {last.get('epoch')}"
