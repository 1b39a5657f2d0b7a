"""The console's side of Ray Tune (see study/console.py for what it shows): the callback that
collects a running study's progress and draws it, live on a terminal or as plain lines, and
Ray's and TensorFlow's own output quietened while it does."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from ..cluster.connection import STARTUP_NOISE
from ..reports.load import NAN_LOSS
from ..trainables.reporter import FAILURE_ROW_REASONS
from ..trainables.status import STATUSES, error_summary
from ..spec.budget import BudgetSpec
from .budget import until_spent
from .console import StudyProgress, n_trials, plain_error, plain_status, plain_table, rich_view

__all__ = ["study_console", "console_for", "quiet_ray_output", "startup_lines_filtered"]


def _read(path: Optional[str]) -> Optional[str]:
    try:
        return Path(path).read_text() if path else None
    except OSError:
        return None


def _past_results(location: str, trial_id: str) -> list[dict[str, Any]]:
    """A resumed trial's earlier rows from the study's directory (empty for a URI study)."""
    import json

    text = _read(os.path.join(location, f"trial_{trial_id}", "result.json"))
    rows = []
    for line in (text or "").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def _plan_line(planned: Optional[int], epochs_per_trial: int, budget: Optional[BudgetSpec],
               spent: float) -> str:
    """What the run will do, as its first line says it: ``12 trials, up to 24 epochs``, or
    under ``search.budget`` ``runs until 24 epochs are spent (search.budget)``."""
    if budget is not None and budget.unit != "trials":
        unit = "s" if budget.unit == "wall_s" else "epochs"
        before = f", {spent:.0f} {unit} spent before this run" if spent else ""
        return f"runs {until_spent(budget)} (search.budget{before})"
    epochs = f", up to {planned * epochs_per_trial} epochs" if planned is not None else ""
    own = " (search.budget)" if budget is not None else ""
    trials = "? trials" if planned is None else n_trials(planned)
    return f"{trials}{own}{epochs}"


def study_console(name: str, objective: str, mode: str, epochs_per_trial: int, storage: Any,
                  stops: Optional[Callable[[], dict[str, str]]] = None,
                  interval_s: float = 30.0, live: Optional[bool] = None, stream: Any = None,
                  budget: Optional[BudgetSpec] = None, spent: float = 0.0) -> Any:
    """A Ray Tune callback that shows the study's progress (what: study/console.py).
    ``storage``: the study's :class:`~tunefleet.storage.StudyStorage` (log paths, failure
    records); ``stops``: the trials the study itself stopped (the failure policy's record);
    ``live``: a rich live view (default: when ``stream`` is a terminal); ``stream``: where it
    prints (default ``sys.stdout``); ``budget``, ``spent``: the study's ``search.budget`` and
    what a resumed study had spent of it. Call ``close()`` if the run ends by an exception."""
    from ray.tune import Callback  # imported here: importing Ray is slow

    class _Console(Callback):
        def __init__(self):
            self.progress = StudyProgress(name, objective, mode, epochs_per_trial,
                                          storage.location, budget=budget, spent=spent)
            self.interval_s = interval_s
            self._live: Any = None
            self._last_draw = -math.inf
            self._last_state: Any = None  # what the last status line said, its time aside
            self._last_line_at = -math.inf
            self._last_check = -math.inf
            self._broken = False

        def __getstate__(self):  # Ray saves its callbacks with the tuner: no drawing objects
            state = self.__dict__.copy()
            state["_live"] = None
            return state

        # -- drawing, guarded: a console bug must never fail the study ------------------
        def _stream(self):
            return stream if stream is not None else sys.stdout

        def _guard(self, what: Callable[[], None]) -> None:
            if self._broken:
                return
            try:
                what()
            except Exception as exc:  # noqa: BLE001 -- the study goes on without its view
                self._broken = True
                self.close()
                warnings.warn(f"the study's console stopped ({type(exc).__name__}: {exc}); "
                              "the study goes on, and its summary is printed at the end",
                              RuntimeWarning, stacklevel=2)

        def _print(self, line: str) -> None:
            if self._live is not None:
                self._live.console.print(line, markup=False, highlight=False, soft_wrap=True)
            else:
                print(line, file=self._stream(), flush=True)

        def _start(self) -> None:
            use_live = live
            if use_live is None:
                isatty = getattr(self._stream(), "isatty", None)
                use_live = bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"
            if use_live:
                from rich.console import Console
                from rich.live import Live

                console = Console(file=self._stream())
                self._live = Live(rich_view(self.progress.view()), console=console,
                                  auto_refresh=False, transient=False)
                self._live.start()
            else:
                # The first status line after a while: the line below says enough at the start.
                self._last_line_at = self._last_check = time.monotonic()
                plan = _plan_line(self.progress.planned, epochs_per_trial, budget, spent)
                self._print(f"{name}: {plan}; a status line every {self.interval_s:g} s while "
                            "it changes")

        def _draw(self, trials: list, final: bool = False) -> None:
            now = time.monotonic()
            if self._live is not None:
                if final or now - self._last_draw >= 0.5:
                    self._sync(trials)
                    self._live.update(rich_view(self.progress.view(now)), refresh=True)
                    self._last_draw = now
                return
            if not final and now - self._last_check < self.interval_s:
                return
            self._last_check = now
            self._sync(trials)
            view = self.progress.view(now)
            state = (view.counts, view.epochs_done,
                     view.best.trial_id if view.best else None, view.best.best if view.best else None)
            # A quiet study (a long epoch) still says it is alive, at a fifth of the pace.
            if final or state != self._last_state or now - self._last_line_at >= 5 * self.interval_s:
                self._print(plain_status(view))
                self._last_state, self._last_line_at = state, now
            if final:
                for text in plain_table(view):
                    self._print(text)

        def _sync(self, trials: list) -> None:
            for trial in trials:
                self._see(trial)
                if trial.status in ("PENDING", "RUNNING", "PAUSED"):
                    self.progress.status(trial.trial_id, trial.status.lower())
                elif trial.status == "TERMINATED" and \
                        self.progress.trials[trial.trial_id].status not in STATUSES:
                    # Ended without on_trial_complete: Ray stops every trial left when a
                    # stopper ends the study (search.budget, the failure policy), and calls
                    # no callback for them; the table must not call them running.
                    self._ended(trial, None)

        def _see(self, trial: Any) -> None:
            """A trial seen for the first time. One a resumed study restored brings its past
            epochs (its best may be among them) and, if it had ended, its end."""
            if trial.trial_id in self.progress.trials:
                return
            self.progress.trial(trial.trial_id, getattr(trial, "config", None))
            last = getattr(trial, "last_result", None) or {}
            ended = trial.status in ("TERMINATED", "ERROR")
            if not last and not ended:
                return  # a new trial
            past = [] if storage.remote else _past_results(storage.location, trial.trial_id)
            for row in past or [last]:
                self.progress.result(trial.trial_id, row, counted=False)
            if ended:
                stop = (stops() if stops else {}).get(trial.trial_id)
                error = self._error(trial) if trial.status == "ERROR" else None
                self.progress.ended(trial.trial_id, last, error, None, stop)

        def _error(self, trial: Any) -> str:
            """The last line of an errored trial's error (Ray's error file)."""
            text = _read(getattr(trial, "error_file", None))
            if text is None and not storage.remote:  # a restored trial's, where it was kept
                text = _read(os.path.join(storage.location, f"trial_{trial.trial_id}",
                                          "error.txt"))
            return error_summary(text) if text else "error"

        def _ended(self, trial: Any, error: Optional[str]) -> None:
            self._see(trial)
            last = trial.last_result or {}
            failure = None
            if error is None and last.get("stop_reason") in FAILURE_ROW_REASONS + (NAN_LOSS,):
                from ..trainables.watchdog import FailureRecord

                failure = FailureRecord(storage, trial.trial_id).read()
            stop = (stops() if stops else {}).get(trial.trial_id)
            row = self.progress.ended(trial.trial_id, last, error, failure, stop)
            if row is not None:
                self._print(plain_error(row))

        # -- Ray Tune's hooks -----------------------------------------------------------
        def setup(self, stop=None, num_samples=None, total_num_samples=None, **info):
            self.progress.start(total_num_samples)
            self._guard(self._start)

        def on_step_begin(self, iteration, trials, **info):
            if iteration == 0 or not self.progress.trials:  # a resumed study's trials
                self._guard(lambda: self._sync(trials))

        def on_trial_start(self, iteration, trials, trial, **info):
            def started():
                self._see(trial)
                self.progress.status(trial.trial_id, "running", restarted=True)
            self._guard(started)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            def reported():
                self._see(trial)
                self.progress.result(trial.trial_id, result)
            self._guard(reported)

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._guard(lambda: self._ended(trial, None))

        def on_trial_error(self, iteration, trials, trial, **info):
            self._guard(lambda: self._ended(trial, self._error(trial)))

        def on_step_end(self, iteration, trials, **info):
            self._guard(lambda: self._draw(trials))

        def on_experiment_end(self, trials, **info):
            self._guard(lambda: self._draw(trials, final=True))
            self.close()

        def close(self) -> None:
            """Stop the live display (idempotent)."""
            live_view, self._live = self._live, None
            if live_view is not None:
                try:
                    live_view.stop()
                except Exception:  # noqa: BLE001 -- closing must not raise over the real error
                    pass

    return _Console()


# -- Ray's own output, quietened -----------------------------------------------------------

class _Drop(logging.Filter):
    """Drops Ray Tune's records the console already shows, as one line each."""

    def __init__(self, *starts: str):
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.starts)


# Ray Tune's loggers and the messages of theirs the console replaces: the traceback of every
# trial error (the console prints its last line and the path of its error.txt) and the list of
# trials that did not complete (the summary has them).
_REPLACED = {"ray.tune.execution.tune_controller": ("Trial task failed for trial",),
             # Ctrl-C: tunefleet says how to resume (`tunefleet resume DIR`), not Tuner.restore.
             "ray.tune.tune": ("Trials did not complete", "Experiment has been interrupted"),
             # Ray's ResultGrid, built as fit returns, reads every trial's result.json and
             # warns with one line per trial that has none: the trials HyperBand or PBT created
             # and a stop (search.budget, the failure policy) never started. tunefleet reads
             # the study from its directory (reports/load.py), where those trials are counted.
             "ray.tune.analysis.experiment_analysis": ("Failed to fetch metrics for",)}


@contextmanager
def quiet_ray_output(console: Any) -> Iterator[None]:
    """While a study runs with ``console`` (None: Ray's own reporter, nothing changes): Ray
    Tune's legacy output engine, which prints nothing at ``verbose=0`` (the new one still
    prints its configuration box), and Ray's messages the console replaces filtered out."""
    if console is None:
        yield
        return
    saved = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    filters = [(logging.getLogger(name), _Drop(*starts)) for name, starts in _REPLACED.items()]
    for logger, drop in filters:
        logger.addFilter(drop)
    try:
        yield
    finally:
        console.close()
        for logger, drop in filters:
            logger.removeFilter(drop)
        if saved is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = saved


@contextmanager
def startup_lines_filtered(enabled: bool = True) -> Iterator[None]:
    """Hold this process's standard error (file descriptor 2) in a file during the block,
    then write out every line but TensorFlow's and absl's start-up chatter
    (``STARTUP_NOISE``), which native code writes there when the driver first imports
    TensorFlow and no environment variable silences. Python's warnings and errors in the
    block come out after it, in order; nothing is dropped but those lines."""
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no real descriptor 2 (some notebooks)
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (AttributeError, OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode(errors="replace")
            kept = [line for line in text.splitlines(keepends=True)
                    if not STARTUP_NOISE.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def console_for(experiment: Any, storage: Any, tracker: Any, verbose: bool,
                spent: float = 0.0) -> Any:
    """The study's console callback, or None where Ray Tune's own reporter is wanted
    (``verbose``). ``tracker``: the study's failure policy, whose record says which trials the
    study itself stopped; ``spent``: what a resumed study had spent of its ``search.budget``."""
    if verbose:
        return None
    return study_console(experiment.name, experiment.objective.metric,
                         experiment.objective.direction,
                         min(experiment.max_epochs, experiment.epoch_budget), storage,
                         stops=lambda: tracker.stops, budget=experiment.search.budget,
                         spent=spent)
