"""The study's failure policy on the driver: retries are Ray's (``FailureConfig``); this adds
what Ray lacks: a record of every retry per trial, and stopping the study after
``failure.max_consecutive`` trials in a row ended failed or errored.

Trial-side kinds (see ``trainables/watchdog.py``): an exception is an *error*, retried from the
last checkpoint up to ``failure.max_retries``; a NaN loss, running out of memory, passing
``train.trial_timeout_s`` or KerasTuner's ``FailedTrialError`` is a *failure*, recorded with its
reason and not retried; KerasTuner's ``FatalError`` is a failure that also stops the study.

Trials the study itself ends (the policy tripping, ``search.time_budget_s`` spent, Ctrl-C, the
driver stopping) are recorded in ``STUDY_STOPS_FILE``, so that they read ``stopped_by_study``,
not as cut by the scheduler.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

from ..reports.load import RETRIES_FILE
from ..spec.budget import SEARCH_BUDGET_SPENT
from ..trainables.status import FAILED_REASONS, STOP_REASONS, STUDY_STOPS_FILE, error_summary
from ..trainables.watchdog import FailureRecord

__all__ = ["FailureTracker", "RETRIES_FILE", "INTERRUPTED", "SEARCH_BUDGET_SPENT",
           "budget_spent"]

INTERRUPTED = "the study was interrupted (Ctrl-C) or its driver stopped"
_BUDGET = "the time budget (search.time_budget_s={}) was spent"
# SEARCH_BUDGET_SPENT (search.budget, study/budget.py) lives in spec/budget.py, which the reports
# may import too (they never import the study package); re-exported here.


def budget_spent(stopped: Optional[str]) -> bool:
    """Whether a summary's ``stopped`` says the study ended because its time budget
    (``search.time_budget_s``) was spent: a planned end, not a failure, and a resume starts the
    trials it had not created yet. ``search.budget`` has its own predicate,
    :func:`tunefleet.study.budget.spent_search_budget`."""
    return stopped is not None and stopped.startswith(_BUDGET.split("{")[0])


_ENDED = ("TERMINATED", "ERROR")  # Ray's Trial statuses of a trial that will not run again
_FATAL = STOP_REASONS[6]  # the trial raised keras_tuner.errors.FatalError


def _error_line(trial: Any) -> str:
    text = ""
    path = getattr(trial, "error_file", None) or ""
    try:
        text = Path(path).read_text() if path else ""
    except OSError:
        pass
    return error_summary(text)[:300] if text else "error"


# The driver's per-trial result logs, which Ray copies back from the study's storage when a
# trial restarts from a checkpoint (a retry, a HyperBand pause).
_RESULT_LOGS = ("result.json", "progress.csv")


def _upload_results(trial: Any) -> None:
    """Bring the study's copy of a restarting trial's result logs up to date from the driver's.

    When a trial restarts from a checkpoint, Ray's loggers replace the driver's logs with the
    copy in the study's storage, which Ray syncs only every few checkpoints or seconds: the
    epochs measured since then would be erased. This callback runs before Ray's loggers (user
    callbacks come first), so the copy they restore is the whole log."""
    if not getattr(trial, "checkpoint", None):
        return  # Ray restores nothing for a trial that starts from scratch
    import pyarrow.fs as pafs

    storage = trial.storage
    for name in _RESULT_LOGS:
        local = Path(trial.local_path, name)
        remote = Path(storage.trial_fs_path, name).as_posix()
        if not local.is_file() or (isinstance(storage.storage_filesystem, pafs.LocalFileSystem)
                                   and Path(remote).resolve() == local.resolve()):
            continue
        pafs.copy_files(local.as_posix(), remote, source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=storage.storage_filesystem)


def FailureTracker(storage: Any, max_consecutive: Optional[int],
                   time_budget_s: Optional[float] = None) -> Any:
    """A Ray Tune callback that is also the study's stopper (pass it as both); ``storage`` is
    the study's :class:`~tunefleet.storage.StudyStorage`.

    It also keeps ``search.time_budget_s`` (``time_budget_s``), in place of Ray's
    ``TuneConfig(time_budget_s=...)``: the budget runs from Ray's first step, as Ray's does,
    but the stopper that ends the study must be the one that records which trials it cut; a
    second clock in Ray could fire first and leave them reading as cut by the scheduler."""
    # Imported here, not at the top: importing Ray is slow.
    from ray.tune import Callback
    from ray.tune.stopper import Stopper

    class _Tracker(Callback, Stopper):
        def __init__(self):
            self.storage = storage
            self.max_consecutive = max_consecutive
            self.streak: list[str] = []
            self.tripped: Optional[str] = None
            self._tripped_why = "failure.max_consecutive stopped the study"
            self.interrupted = False
            self.time_budget_s = time_budget_s
            self._deadline: Optional[float] = None
            self._trials: list = []  # Ray's own list of the study's trials, kept up to date
            # Trials still to run when the last step ended (Ray marks them TERMINATED when it
            # cleans up after an interruption, so their status then says nothing).
            self._live: list[str] = []
            # A resumed study's earlier stops; a trial that runs again leaves this record.
            self.stops: dict[str, str] = json.loads(storage.read_text(STUDY_STOPS_FILE) or "{}")

        def __getstate__(self) -> dict:
            # Ray pickles the stopper into every snapshot of the experiment state: without
            # Ray's trial list (40 KB a trial: 8 MB rewritten at each snapshot of a 200-trial
            # study). A resumed study gets a new tracker (runner._restored_tuner).
            return {**self.__dict__, "_trials": []}

        @property
        def stopped(self) -> Optional[str]:
            """Why the study ended before every trial ran, if it did."""
            return self.tripped or (INTERRUPTED if self.interrupted else None)

        def _record_stops(self, trial_ids: list[str], why: str) -> None:
            new = {t: why for t in trial_ids if t not in self.stops}
            if new:
                self.stops.update(new)
                self.storage.write_text(STUDY_STOPS_FILE, json.dumps(self.stops, indent=1))

        def interrupt(self) -> None:
            """The driver is stopping (Ctrl-C): the trials still running or waiting were
            stopped by the study. Also called by the runner on KeyboardInterrupt, which Ray
            lets through on a second Ctrl-C without telling its callbacks."""
            if self._live and self.tripped is None:
                self.interrupted = True
                self._record_stops(self._live, INTERRUPTED)

        # -- Callback --------------------------------------------------------------
        def on_step_end(self, iteration, trials, **info):
            self._live = [t.trial_id for t in trials if t.status not in _ENDED]
            if self.tripped is not None:  # trials the searcher added as the study stopped
                self._record_stops(self._live, self._tripped_why)

        def on_step_begin(self, iteration, trials, **info):
            self._trials = trials

        def on_experiment_end(self, trials, **info):
            # The loop ends with trials still to run only if it was interrupted or stopped.
            self.interrupt()

        def on_trial_start(self, iteration, trials, trial, **info):
            if self.stops.pop(trial.trial_id, None) is not None:  # resumed: it runs again
                self.storage.write_text(STUDY_STOPS_FILE, json.dumps(self.stops, indent=1))
            _upload_results(trial)

        def on_trial_recover(self, iteration, trials, trial, **info):
            relative = f"trial_{trial.trial_id}/{RETRIES_FILE}"
            retries = json.loads(self.storage.read_text(relative) or "[]")
            retries.append({"time": time.time(), "error": _error_line(trial),
                            "epoch": (trial.last_result or {}).get("epoch")})
            self.storage.write_text(relative, json.dumps(retries, indent=1))

        def on_trial_error(self, iteration, trials, trial, **info):
            self._ended(trial.trial_id, f"errored: {_error_line(trial)}", trials)

        def on_trial_complete(self, iteration, trials, trial, **info):
            reason = (trial.last_result or {}).get("stop_reason", "")
            if reason not in FAILED_REASONS:
                self.streak.clear()
                return
            # A timeout or running out of memory left a record with the fuller reason.
            failure = FailureRecord(self.storage, trial.trial_id).read() or {}
            self._ended(trial.trial_id, f"failed: {failure.get('reason', reason)}", trials)
            if reason == _FATAL and self.tripped is None:
                self.tripped = (f"the study stopped because trial {trial.trial_id} raised "
                                f"{failure.get('reason', 'FatalError')} (a KerasTuner "
                                "FatalError ends the search)")
                self._tripped_why = "a FatalError in another trial stopped the study"
                self._record_stops([t.trial_id for t in trials if t.status not in _ENDED
                                    and t.trial_id != trial.trial_id], self._tripped_why)

        def _ended(self, trial_id: str, why: str, trials: list) -> None:
            self.streak.append(f"{trial_id} {why}")
            if self.max_consecutive and len(self.streak) >= self.max_consecutive \
                    and self.tripped is None:
                self.tripped = (f"the study stopped after {len(self.streak)} consecutive failed "
                                f"trials (failure.max_consecutive={self.max_consecutive}): "
                                + "; ".join(self.streak[-self.max_consecutive:]))
                self._record_stops([t.trial_id for t in trials if t.status not in _ENDED
                                    and t.trial_id != trial_id],
                                   "failure.max_consecutive stopped the study")

        def stop_study(self, why: str) -> None:
            """End the study for a planned reason (a budget spent): the trials running or not
            yet started are recorded as stopped by the study, then Ray stops them (this
            stopper's ``stop_all`` says so from now on)."""
            if self.tripped is None:
                self.tripped = self._tripped_why = why
                self._record_stops([t.trial_id for t in self._trials
                                    if t.status not in _ENDED], why)

        # -- Stopper ---------------------------------------------------------------
        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            if self.tripped is None and self.time_budget_s is not None:
                now = time.monotonic()
                self._deadline = self._deadline or now + self.time_budget_s
                if now >= self._deadline:
                    self.stop_study(_BUDGET.format(f"{self.time_budget_s:g}"))
            return self.tripped is not None

    return _Tracker()
