"""The study's console: one compact view of a running study in place of Ray Tune's per-trial
result boxes. Counts by status, the best trial so far (by its best epoch, as the summary picks
it), the top 10 trials, epochs done of the budget with an ETA (under ``search.budget``: what is
spent of it), and each error or failure as one line with the path of its log. A live view (rich) on a terminal; elsewhere (CI logs, ``ray job
logs``) a status line every ``interval_s`` seconds when something changed, and a final table.

Compute separately from drawing: :class:`StudyProgress` collects what Ray reports into a
:class:`ConsoleView`; :func:`plain_status`/:func:`plain_table` and :func:`rich_view` draw it.
The Ray Tune callback that feeds it, and the quietening of Ray's and TensorFlow's own output,
are in study/ray_console.py.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from ..reports.load import NAN_LOSS
from ..spec import TRIAL_SEED_KEY
from ..trainables.reporter import ACTIVE_KEY, FAILURE_ROW_REASONS, TRAINED_KEY
from ..trainables.status import STATUSES, trial_status

if TYPE_CHECKING:
    from ..spec.budget import BudgetSpec

__all__ = ["n_trials", "TrialRow", "ErrorRow", "ConsoleView", "StudyProgress", "best_epoch", "plain_status",
           "plain_error", "plain_table", "rich_view", "TOP"]

TOP = 10  # trials the view lists
# Counted in this order; the finished ones in the summary's own words (trainables/status.py).
_ORDER = ("running", "pending", "paused", *STATUSES)
_TROUBLE = ("errored", "failed")  # each printed as one line, with its log's path


@dataclass(frozen=True)
class TrialRow:
    """One trial as the view lists it: its hyperparameters (no ``trial_seed``), its best
    objective and the epoch it was reached at, and the epochs it has trained."""

    trial_id: str
    status: str
    config: dict[str, Any]
    best: Optional[float]
    best_epoch: Optional[int]
    epochs: int


@dataclass(frozen=True)
class ErrorRow:
    """A trial that errored or failed: its one-line reason and where its log is."""

    trial_id: str
    status: str
    reason: str
    log: str


@dataclass(frozen=True)
class ConsoleView:
    """What the console shows at one moment, whichever way it is drawn."""

    name: str
    objective: str
    mode: str
    planned: Optional[int]  # trials the study will run (None: not known, or a budget decides)
    counts: dict[str, int]  # by status, in ``_ORDER``; only statuses some trial has
    top: list[TrialRow]  # best first; unscored trials last
    best: Optional[TrialRow]
    epochs_done: int
    epochs_budget: Optional[int]
    elapsed_s: float
    eta_s: Optional[float]
    errors: list[ErrorRow] = field(default_factory=list)
    # search.budget in epochs or seconds (a budget of trials is ``planned``): its unit and
    # amount, and what the study has spent of it (a resumed study's earlier runs included).
    budget_unit: Optional[str] = None
    budget_amount: Optional[float] = None
    budget_spent: float = 0.0


class _Trial:
    """What the console keeps of one trial: no Ray object, only plain values."""

    __slots__ = ("trial_id", "config", "status", "values", "best", "best_epoch", "error")

    def __init__(self, trial_id: str, config: dict[str, Any]):
        self.trial_id = trial_id
        self.config = config
        self.status = "pending"
        self.values: dict[int, float] = {}  # objective by epoch; NaN where not measured
        self.best: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.error: Optional[ErrorRow] = None

    @property
    def epochs(self) -> int:
        return max(self.values, default=0)


class StudyProgress:
    """Collects a study's progress from Ray's results, one trial at a time, into a
    :class:`ConsoleView`. A trial's best is its best epoch as reports/load.py reads it: an
    epoch run again after a retry counts as its latest run, an epoch whose loss went NaN (or
    that measured no finite value) is never the best, and a failure's row is no epoch; the
    best trial is the one with the best such epoch, the first trial id on a tie.

    ``budget``: the study's ``search.budget``. In epochs or seconds it, not a trial count, says
    when the study ends: the view then counts what is spent of it (epochs as the budget's
    stopper counts them: every execution's, see study/budget.py) and no planned trial count;
    ``spent``: what a resumed study had spent before this run."""

    def __init__(self, name: str, objective: str, mode: str, epochs_per_trial: int,
                 location: str, top: int = TOP, budget: Optional[BudgetSpec] = None,
                 spent: float = 0.0):
        self.name, self.objective, self.mode = name, objective, mode
        self.epochs_per_trial = epochs_per_trial
        self.location = location.rstrip("/")
        self.top = top
        # A budget of trials is Ray's trial count (``planned``): only epochs and seconds here.
        counted_here = budget is not None and budget.unit != "trials"
        self.budget_unit = budget.unit if budget is not None and counted_here else None
        self.budget_amount = budget.amount if budget is not None and counted_here else None
        self.spent_before = spent
        self.trained_this_run = 0  # epochs as search.budget counts them (every execution's)
        self.planned: Optional[int] = None
        self.trials: dict[str, _Trial] = {}
        self.errors: list[ErrorRow] = []
        self.started = time.monotonic()
        self.epochs_this_run = 0  # the ETA's rate: a resumed study's old epochs took no time

    def start(self, planned: Optional[int], now: Optional[float] = None) -> None:
        """The run starts; ``planned``: Ray's trial count (under a budget of epochs or seconds
        only the most the budget could start, so not shown)."""
        known = planned is not None and 0 < planned < 2**31 and self.budget_unit is None
        self.planned = planned if known else None
        self.started = time.monotonic() if now is None else now

    def trial(self, trial_id: str, config: Optional[dict[str, Any]] = None) -> _Trial:
        known = self.trials.get(trial_id)
        if known is None:
            known = self.trials[trial_id] = _Trial(trial_id, _shown(config or {}))
        return known

    def result(self, trial_id: str, result: dict[str, Any], config: Optional[dict] = None,
               counted: bool = True) -> None:
        """One reported row. ``counted``: trained in this run (not a resumed study's past)."""
        trial = self.trial(trial_id, config)
        if counted:  # as the budget's stopper counts: every result, a failure's row as 0
            self.trained_this_run += int(result.get(TRAINED_KEY, 1) or 0)
        epoch = result.get("epoch")
        if epoch is None or result.get("stop_reason") in FAILURE_ROW_REASONS:
            return  # a failure's row: it records why the trial ended, it measured nothing
        if trial.status in ("pending", "paused"):
            trial.status = "running"
        active_names = result.get(ACTIVE_KEY)
        if isinstance(active_names, str):  # as the reporter writes it: "units,dropout"
            active_names = [name for name in active_names.split(",") if name]
        if isinstance(active_names, (list, tuple)):
            active = set(active_names)  # a conditional space: only what the trial used
            trial.config = {k: v for k, v in trial.config.items() if k in active}
        value = _number(result.get(self.objective))
        if result.get("stop_reason") == NAN_LOSS:
            value = math.nan  # its weights are lost: never the trial's best
        epoch = int(epoch)
        if counted and epoch not in trial.values:
            self.epochs_this_run += 1
        trial.values[epoch] = value
        trial.best, trial.best_epoch = best_epoch(trial.values, self.mode)

    def status(self, trial_id: str, status: str, restarted: bool = False) -> None:
        """A trial's status while it runs: ``pending``, ``running`` or ``paused``. An ended
        trial stays ended, unless it ``restarted`` (a resumed study runs it again)."""
        trial = self.trial(trial_id)
        if restarted or trial.status not in STATUSES:
            trial.status = status

    def ended(self, trial_id: str, last: dict[str, Any], error: Optional[str] = None,
              failure: Optional[dict[str, Any]] = None,
              stopped_by_study: Optional[str] = None) -> Optional[ErrorRow]:
        """The trial will not run again: its status as the summary names it
        (:func:`~tunefleet.trainables.status.trial_status`); for an error or a failure, the
        :class:`ErrorRow` the console prints (once)."""
        trial = self.trial(trial_id)
        status, reason = trial_status(error, last or {}, failure, stopped_by_study)
        trial.status = status
        if status not in _TROUBLE or trial.error is not None:
            return None
        name = "error.txt" if error is not None else "failure.json" if failure else "result.json"
        log = f"{self.location}/trial_{trial_id}/{name}"
        trial.error = ErrorRow(trial_id, status, " ".join(str(reason).split()), log)
        self.errors.append(trial.error)
        return trial.error

    def view(self, now: Optional[float] = None) -> ConsoleView:
        now = time.monotonic() if now is None else now
        elapsed = max(0.0, now - self.started)
        sign = -1.0 if self.mode == "max" else 1.0
        ranked = sorted(self.trials.values(), key=lambda t: (
            (0, sign * t.best, t.trial_id) if t.best is not None else (1, 0.0, t.trial_id)))
        rows = [TrialRow(t.trial_id, t.status, t.config, t.best, t.best_epoch, t.epochs)
                for t in ranked[:self.top]]
        counts: dict[str, int] = {}
        for t in self.trials.values():
            counts[t.status] = counts.get(t.status, 0) + 1
        counts = {s: counts[s] for s in _ORDER if s in counts}
        done = sum(t.epochs for t in self.trials.values())
        budget = self.planned * self.epochs_per_trial if self.planned is not None else None
        eta = None
        if budget is not None and self.epochs_this_run and elapsed > 0:
            unseen = max(0, self.planned - len(self.trials)) if self.planned is not None else 0
            remaining = unseen * self.epochs_per_trial + sum(
                max(0, self.epochs_per_trial - t.epochs) for t in self.trials.values()
                if t.status in ("running", "pending", "paused"))
            eta = remaining * elapsed / self.epochs_this_run if remaining else None
        spent = 0.0
        if self.budget_unit is not None and self.budget_amount is not None:
            # The budget decides when the study ends, so the ETA is what is left of it.
            if self.budget_unit == "wall_s":
                spent = self.spent_before + elapsed
                eta = max(0.0, self.budget_amount - spent)
            else:
                spent = self.spent_before + self.trained_this_run
                left = max(0.0, self.budget_amount - spent)
                eta = (left * elapsed / self.trained_this_run
                       if left and self.trained_this_run and elapsed > 0 else None)
        best = rows[0] if rows and rows[0].best is not None else None
        return ConsoleView(self.name, self.objective, self.mode, self.planned, counts, rows,
                           best, done, budget, elapsed, eta, list(self.errors),
                           self.budget_unit, self.budget_amount, spent)


def best_epoch(values: dict[int, float], mode: str) -> tuple[Optional[float], Optional[int]]:
    """(best value, its epoch) of one trial's epochs (each epoch's latest value), NaN skipped;
    the earliest of equal values, as reports/load.py's idxmax/idxmin pick. (None, None) when
    no epoch measured a number."""
    best: Optional[float] = None
    at: Optional[int] = None
    for epoch in sorted(values):
        value = values[epoch]
        if math.isnan(value):
            continue
        if best is None or (value > best if mode == "max" else value < best):
            best, at = value, epoch
    return best, at


def _number(value: Any) -> float:
    """A reported value as a float; NaN for a missing, non-numeric or infinite one (load.py
    treats infinities as missing)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _shown(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The trial's hyperparameters as the view shows them: flat, without its seed."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == TRIAL_SEED_KEY:
            continue
        if isinstance(value, dict):
            out.update(_shown(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


# -- drawing -------------------------------------------------------------------------------

def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _config(config: dict[str, Any], width: int = 90) -> str:
    text = " ".join(f"{k}={_value(v)}" for k, v in config.items())
    return text if len(text) <= width else text[:width - 1] + "…"


def n_trials(n: int) -> str:
    """``1 trial``, ``2 trials``."""
    return f"{n} trial{'' if n == 1 else 's'}"


def _counts(view: ConsoleView) -> str:
    trials = "trials" if view.planned is None else n_trials(view.planned)
    parts = ", ".join(f"{s.replace('_', ' ')} {n}" for s, n in view.counts.items())
    return f"{trials}: {parts}" if parts else trials


def _progress(view: ConsoleView) -> str:
    eta = f", ETA {_duration(view.eta_s)}" if view.eta_s is not None else ""
    if view.budget_unit == "epochs":  # the budget's count: every execution's epochs
        return f"budget: {view.budget_spent:g}/{view.budget_amount:g} epochs spent{eta}"
    if view.budget_unit == "wall_s":
        return (f"epochs {view.epochs_done}; budget: {view.budget_spent:.0f}/"
                f"{view.budget_amount:g} s spent{eta}")
    budget = f"/{view.epochs_budget}" if view.epochs_budget is not None else ""
    return f"epochs {view.epochs_done}{budget}{eta}"


def _best(view: ConsoleView) -> str:
    best = view.best
    if best is None:
        return f"best {view.objective}: none yet"
    return (f"best {view.objective} {best.best:.4f} (trial {best.trial_id}, epoch "
            f"{best.best_epoch}): {_config(best.config)}").rstrip(": ")


def plain_status(view: ConsoleView) -> str:
    """One status line: elapsed time, counts, epochs and ETA, the best trial so far."""
    return (f"[{view.name} {_duration(view.elapsed_s)}] {_counts(view)} | {_progress(view)} | "
            f"{_best(view)}")


def plain_error(row: ErrorRow) -> str:
    """An error or a failure as one line, with the path of its log."""
    reason = row.reason if len(row.reason) <= 200 else row.reason[:199] + "…"
    return f"{row.status} trial {row.trial_id}: {reason} (log: {row.log})"


def plain_table(view: ConsoleView) -> list[str]:
    """The top trials as aligned plain lines: a title, a header, one line per trial."""
    arrow = "higher" if view.mode == "max" else "lower"
    title = (f"{view.name}: top {len(view.top)} of {n_trials(sum(view.counts.values()))} by "
             f"best {view.objective} ({arrow} is better)")
    header = ("trial", "status", view.objective, "epoch", "epochs", "hyperparameters")
    rows = [(r.trial_id, r.status.replace("_", " "),
             f"{r.best:.4f}" if r.best is not None else "-",
             str(r.best_epoch) if r.best_epoch is not None else "-", str(r.epochs),
             _config(r.config)) for r in view.top]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    lines = [title]
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]),
                 row[3].rjust(widths[3]), row[4].rjust(widths[4]), row[5]]
        lines.append("  ".join(cells).rstrip())
    return lines


def rich_view(view: ConsoleView) -> Any:
    """The same view as a rich renderable, for a live terminal display."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("trial")
    table.add_column("status")
    table.add_column(f"best {view.objective}", justify="right")
    table.add_column("epoch", justify="right")
    table.add_column("epochs", justify="right")
    table.add_column("hyperparameters", overflow="fold")
    for r in view.top:
        style = "bold green" if view.best is not None and r.trial_id == view.best.trial_id else (
            "red" if r.status in _TROUBLE else None)
        table.add_row(r.trial_id, r.status.replace("_", " "),
                      f"{r.best:.4f}" if r.best is not None else "-",
                      str(r.best_epoch) if r.best_epoch is not None else "-", str(r.epochs),
                      _config(r.config, 200), style=style)
    head = Text.assemble((view.name, "bold"), f"  {_duration(view.elapsed_s)}  ",
                         _progress(view))
    return Group(head, Text(_counts(view)), Text(_best(view), style="green"), table)
