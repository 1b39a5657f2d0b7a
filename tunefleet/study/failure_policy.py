"""The study's failure policy on the driver: retries are Ray's (``FailureConfig``); this adds
what Ray lacks: a record of every retry per trial, and stopping the study after
``failure.max_consecutive`` trials in a row ended failed or errored.

Trial-side kinds (see ``trainables/watchdog.py``): an exception is an *error*, retried from the
last checkpoint up to ``failure.max_retries``; a NaN loss, running out of memory, or passing
``train.trial_timeout_s`` is a *failure*, recorded with its reason and not retried.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

from ..reports.load import RETRIES_FILE
from ..trainables.status import FAILED_REASONS, error_summary
from ..trainables.watchdog import FailureRecord

__all__ = ["FailureTracker", "RETRIES_FILE"]


def _error_line(trial: Any) -> str:
    text = ""
    path = getattr(trial, "error_file", None) or ""
    try:
        text = Path(path).read_text() if path else ""
    except OSError:
        pass
    return error_summary(text)[:300] if text else "error"


def _tracker_base():
    from ray.tune import Callback
    from ray.tune.stopper import Stopper

    return Callback, Stopper


def FailureTracker(storage: Any, max_consecutive: Optional[int]) -> Any:  # noqa: N802
    """A Ray Tune callback that is also the study's stopper (pass it as both); ``storage`` is
    the study's :class:`~tunefleet.storage.StudyStorage`."""
    Callback, Stopper = _tracker_base()

    class _Tracker(Callback, Stopper):
        def __init__(self):
            self.storage = storage
            self.max_consecutive = max_consecutive
            self.streak: list[str] = []
            self.tripped: Optional[str] = None

        # -- Callback --------------------------------------------------------------
        def on_trial_recover(self, iteration, trials, trial, **info):
            relative = f"trial_{trial.trial_id}/{RETRIES_FILE}"
            retries = json.loads(self.storage.read_text(relative) or "[]")
            retries.append({"time": time.time(), "error": _error_line(trial),
                            "epoch": (trial.last_result or {}).get("epoch")})
            self.storage.write_text(relative, json.dumps(retries, indent=1))

        def on_trial_error(self, iteration, trials, trial, **info):
            self._ended(trial.trial_id, f"errored: {_error_line(trial)}")

        def on_trial_complete(self, iteration, trials, trial, **info):
            reason = (trial.last_result or {}).get("stop_reason", "")
            if reason not in FAILED_REASONS:
                self.streak.clear()
                return
            # A timeout or running out of memory left a record with the fuller reason.
            failure = FailureRecord(self.storage, trial.trial_id).read() or {}
            self._ended(trial.trial_id, f"failed: {failure.get('reason', reason)}")

        def _ended(self, trial_id: str, why: str) -> None:
            self.streak.append(f"{trial_id} {why}")
            if self.max_consecutive and len(self.streak) >= self.max_consecutive:
                self.tripped = (f"the study stopped after {len(self.streak)} consecutive failed "
                                f"trials (failure.max_consecutive={self.max_consecutive}): "
                                + "; ".join(self.streak[-self.max_consecutive:]))

        # -- Stopper ---------------------------------------------------------------
        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            return self.tripped is not None

    return _Tracker()
