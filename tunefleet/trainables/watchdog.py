"""Trial failures that are not retried: a trial that hangs past ``train.trial_timeout_s`` or runs
out of memory is recorded as failed, with its reason, in ``failure.json`` in its directory.

Ray has no per-trial time limit, and a hung trial reports nothing for a scheduler to act on,
so the watchdog ends the trial's process itself. Ray then sees the trial's process die; if it
retries the trial, the new attempt finds ``failure.json`` and ends at once instead of hanging
again.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any, Optional

__all__ = ["FAILURE_FILE", "FailureRecord", "read_failure", "Watchdog", "is_out_of_memory"]

FAILURE_FILE = "failure.json"


class FailureRecord:
    """A trial's failure record, ``trial_<id>/failure.json`` where its study is stored (a
    directory or a URI: a retry may run on another node)."""

    def __init__(self, storage: Any, trial_id: str):
        self.storage, self.relative = storage, f"trial_{trial_id}/{FAILURE_FILE}"

    def write(self, kind: str, reason: str, epoch: Optional[int] = None) -> None:
        self.storage.write_text(self.relative,
                                json.dumps({"kind": kind, "reason": reason, "epoch": epoch}))

    def read(self) -> Optional[dict[str, Any]]:
        text = self.storage.read_text(self.relative)
        try:
            return json.loads(text) if text else None
        except ValueError:
            return None


def read_failure(path: Path) -> Optional[dict[str, Any]]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def is_out_of_memory(exc: BaseException) -> bool:
    """TensorFlow's ResourceExhaustedError (GPU or host allocation), or a MemoryError."""
    return isinstance(exc, MemoryError) or type(exc).__name__ in (
        "ResourceExhaustedError", "OutOfMemoryError") or "RESOURCE_EXHAUSTED" in str(exc)[:2000]


class Watchdog:
    """Ends this trial process ``timeout_s`` after :meth:`start` unless :meth:`cancel` is called
    first, after writing the failure record."""

    def __init__(self, timeout_s: Optional[float], record: FailureRecord):
        self.timeout_s, self.record = timeout_s, record
        self._timer: Optional[threading.Timer] = None
        self.epoch: Optional[int] = None  # the last epoch the trial finished, for the record

    def _expire(self) -> None:
        self.record.write("timeout", f"timed out after {self.timeout_s:g} s "
                          "(train.trial_timeout_s)", self.epoch)
        os.kill(os.getpid(), signal.SIGKILL)  # a hung thread cannot be stopped any other way

    def start(self) -> "Watchdog":
        if self.timeout_s:
            self._timer = threading.Timer(self.timeout_s, self._expire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
