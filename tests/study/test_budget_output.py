"""What a user sees of a study that search.budget stopped, or that ran HyperBand or PBT: Ray's
per-trial "Failed to fetch metrics" warnings filtered from the default console, and a resumed
study whose budget was spent saying how to train more."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest

from tunefleet import Experiment
from tunefleet.study.budget import spent_budget_note, spent_search_budget
from tunefleet.study.ray_console import quiet_ray_output
from tunefleet.study.runner import _stopped_before

_FETCH_LOGGER = "ray.tune.analysis.experiment_analysis"


def test_rays_failed_to_fetch_metrics_warning_is_filtered_unless_verbose():
    # The text as Ray 2.60 writes it (ray/tune/analysis/experiment_analysis.py), read from the
    # installed package without importing Ray: the filter must keep matching Ray's own words.
    spec = importlib.util.find_spec("ray")
    assert spec is not None and spec.origin is not None
    source = Path(spec.origin).parent / "tune" / "analysis" / "experiment_analysis.py"
    assert 'f"Failed to fetch metrics for {len(failures)} trial(s):\\n{fail_str}"' in \
        source.read_text()
    assert "logger = logging.getLogger(__name__)" in source.read_text()

    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    class Closing:
        def close(self):
            pass

    logger = logging.getLogger(_FETCH_LOGGER)
    handler = Keep()
    logger.addHandler(handler)
    flood = ("Failed to fetch metrics for 3 trial(s):\n- train_trial_1a2b: FileNotFoundError("
             "'Could not fetch metrics for train_trial_1a2b')")
    try:
        with quiet_ray_output(Closing()):
            logger.warning(flood)
            logger.warning("Could not load the experiment state")  # an ordinary line
        with quiet_ray_output(None):  # --verbose: Ray's own output, all of it
            logger.warning(flood)
        logger.warning(flood)  # outside a study the filter is gone
    finally:
        logger.removeHandler(handler)
    assert seen == ["Could not load the experiment state", flood, flood]
    assert all(isinstance(line, str) for line in seen)
    assert not logger.filters


def _budgeted(budget: dict) -> Experiment:
    return Experiment.from_dict({
        "name": "b", "search_space": {"learning_rate": {"type": "loguniform", "low": 1e-3,
                                                        "high": 1e-1}},
        "search": {"algorithm": "random", "budget": budget}})


@pytest.mark.parametrize("budget, why, words", [
    ({"epochs": 6}, "the budget (search.budget: 6 epochs) was spent",
     "`tunefleet run SPEC --set search.budget.epochs=12 --set name=NEW`"),
    ({"wall_s": 30}, "the budget (search.budget: 30 s) was spent",
     "`tunefleet run SPEC --set search.budget.wall_s=60 --set name=NEW`"),
    ({"wall_s": 0.5}, "the budget (search.budget: 0.5 s) was spent",
     "--set search.budget.wall_s=1 --set"),
])
def test_a_resumed_study_whose_search_budget_was_spent_says_how_to_train_more(budget, why,
                                                                              words):
    experiment = _budgeted(budget)
    stopped = _stopped_before(why, experiment)
    assert isinstance(stopped, str) and stopped.startswith(why + " (before it was resumed; ")
    assert "a resume cannot add to a spent search.budget" in stopped
    assert "start a new study with a larger budget" in stopped and words in stopped
    assert "are not run again" not in stopped  # the failure policy's words, not the budget's
    assert spent_search_budget(stopped)  # still a planned end for the CLI (exit 0)
    assert _stopped_before(stopped, experiment) == stopped  # resumed again: one note


def test_a_resumed_study_the_failure_policy_stopped_keeps_its_note():
    why = "the study stopped after 2 consecutive failed trials (failure.max_consecutive=2): a; b"
    stopped = _stopped_before(why, _budgeted({"epochs": 6}))
    assert stopped == why + (" (before it was resumed; the trials it stopped are not run "
                             "again: start a new study to run them)")
    assert _stopped_before(stopped, _budgeted({"epochs": 6})) == stopped
    # Without the budget at hand, the note says what to do without an example command.
    note = spent_budget_note(None)
    assert "larger budget" in note and "--set" not in note


class _RayTrial:
    """The attributes of Ray's Trial the console reads."""

    def __init__(self, trial_id: str, lr: float):
        self.trial_id, self.config = trial_id, {"learning_rate": lr}
        self.status, self.last_result, self.error_file = "PENDING", {}, None


def test_the_final_table_shows_the_trials_a_budget_stopped_as_stopped_by_the_study():
    """Ray ends a study its stopper stops by marking every trial left TERMINATED, with no
    on_trial_complete: the console's last table names them as the summary does (stopped by
    the study, at an epoch or before the first), never as running or pending, and prints no
    error line for them."""
    import io
    from types import SimpleNamespace

    from tunefleet.study.ray_console import study_console

    why = "the budget (search.budget: 3 epochs) was spent"
    stops: dict[str, str] = {}
    stream = io.StringIO()
    console = study_console("s", "val_loss", "min", 2,
                            SimpleNamespace(location="/r/s", remote=True),
                            stops=lambda: stops, live=False, stream=stream, interval_s=3600)
    done, running, waiting = _RayTrial("a", 0.01), _RayTrial("b", 0.02), _RayTrial("c", 0.03)
    trials = [done, running, waiting]
    console.setup(total_num_samples=3)
    for trial in (done, running):
        trial.status = "RUNNING"
        console.on_trial_start(1, trials, trial)
    running.last_result = {"epoch": 1, "val_loss": 0.7}
    console.on_trial_result(2, trials, running, running.last_result)
    done.status, done.last_result = "TERMINATED", {"epoch": 2, "val_loss": 0.5,
                                                   "stop_reason": "completed"}
    console.on_trial_result(3, trials, done, done.last_result)
    console.on_trial_complete(3, trials, done)
    # The budget's stopper: the failure policy records the stops, then Ray ends the trials.
    stops.update({"b": why, "c": why})
    running.status = waiting.status = "TERMINATED"
    console.on_experiment_end(trials)
    view = console.progress.view()
    statuses = {row.trial_id: row.status for row in view.top}
    assert statuses == {"a": "completed", "b": "stopped_by_study", "c": "stopped_by_study"}
    assert view.counts == {"completed": 1, "stopped_by_study": 2} and view.errors == []
    table = stream.getvalue().split("(lower is better)")[-1]
    assert "running" not in table and "pending" not in table
    assert [line.split()[:4] for line in table.splitlines()[2:]] == [
        ["a", "completed", "0.5000", "2"], ["b", "stopped", "by", "study"],
        ["c", "stopped", "by", "study"]]


# -- Ray ending a trial's process: its SIGTERM traceback is dropped, real errors are kept ----

# As a trial's worker wrote it when Ray removed the trial's placement group while its process
# was exiting (a Ray session's worker-*.err), and as Ray forwards it: one batch of lines.
_SIGTERM_TRACE = [
    "Exception ignored in: <function WeakSet.__init__.<locals>._remove at 0x7fec9745e520>",
    "Traceback (most recent call last):",
    '  File "/usr/lib/python3.11/_weakrefset.py", line 39, in _remove',
    "    def _remove(item, selfref=ref(self)):",
    "",
    ('  File "/venv/lib/python3.11/site-packages/ray/_private/worker.py", line 1063, in '
     "sigterm_handler"),
    "    raise_sys_exit_with_custom_error_message(",
    ('  File "python/ray/_raylet.pyx", line 712, in '
     "ray._raylet.raise_sys_exit_with_custom_error_message"),
    "SystemExit: 1",
]
_TRIAL_ERROR = [
    "Traceback (most recent call last):",
    '  File "/work/builders.py", line 11, in small_mlp',
    '    raise RuntimeError(f"deliberate failure for units={units}")',
    "RuntimeError: deliberate failure for units=13",
]
_USER_EXIT = [  # a trial's own sys.exit(1) is its error, not Ray's stop
    "Traceback (most recent call last):",
    '  File "/work/train.py", line 3, in fit',
    "    sys.exit(1)",
    "SystemExit: 1",
]


@pytest.mark.parametrize("lines, kept", [
    (_SIGTERM_TRACE, []),
    (["epoch 1 done", *_SIGTERM_TRACE, "epoch 2 done"], ["epoch 1 done", "epoch 2 done"]),
    (_TRIAL_ERROR, _TRIAL_ERROR),
    (_USER_EXIT, _USER_EXIT),
    ([*_TRIAL_ERROR, *_SIGTERM_TRACE, *_USER_EXIT], [*_TRIAL_ERROR, *_USER_EXIT]),
    (_SIGTERM_TRACE[:-1], _SIGTERM_TRACE[:-1]),  # cut off at the batch's end: undecided, kept
    (["plain line", ""], ["plain line", ""]),
    # Ray's note of a PBT exploit's restore, in the trial's process; a trial's own line kept.
    ([("Restored on 127.0.0.1 from checkpoint: Checkpoint(filesystem=local, "
       "path=/r/s/trial_1/checkpoint_000002)"), "Restored on my terms", "epoch 3"],
     ["Restored on my terms", "epoch 3"]),
])
def test_rays_sigterm_traceback_is_dropped_and_every_other_line_kept(lines, kept):
    from tunefleet.study.worker_output import drop_worker_noise

    out = drop_worker_noise(list(lines))
    assert isinstance(out, list) and out == kept


def test_the_filter_wraps_rays_log_printer_while_connected_and_unwraps_after(monkeypatch):
    """On Ray's own dispatcher of forwarded worker output (no Ray started): the batch Ray
    prints loses the SIGTERM traceback only, an emptied batch is not printed, and afterwards
    (or with --verbose) Ray's printer is as it was."""
    import ray._private.ray_logging as ray_logging

    from tunefleet.study.worker_output import worker_output_filtered

    printed: list[dict] = []
    dispatcher = ray_logging.WorkerStandardStreamDispatcher()
    dispatcher.add_handler("ray_print_logs", printed.append)
    dispatcher.add_handler("other", lambda data: None)
    before = list(dispatcher.handlers)
    monkeypatch.setattr(ray_logging, "global_worker_stdstream_dispatcher", dispatcher)
    batch = {"pid": 7, "is_err": True, "actor_name": "train_trial",
             "lines": ["epoch 1", *_SIGTERM_TRACE]}
    with worker_output_filtered():
        assert dispatcher.handlers[0] != before[0] and dispatcher.handlers[1] == before[1]
        dispatcher.emit(batch)
        dispatcher.emit({**batch, "lines": list(_SIGTERM_TRACE)})  # nothing left: no print
        dispatcher.emit({**batch, "lines": list(_TRIAL_ERROR)})
    assert dispatcher.handlers == before
    with worker_output_filtered(enabled=False):  # --verbose: Ray's output as it is
        assert dispatcher.handlers == before
        dispatcher.emit(batch)
    with worker_output_filtered():
        dispatcher.remove_handler("ray_print_logs")  # ray.shutdown inside the block
    assert [name for name, _ in dispatcher.handlers] == ["other"]
    assert [d["lines"] for d in printed] == [["epoch 1"], _TRIAL_ERROR, batch["lines"]]
    assert isinstance(printed[0], dict) and printed[0]["pid"] == 7
    assert batch["lines"] == ["epoch 1", *_SIGTERM_TRACE]  # Ray's batch itself untouched


# -- a budget-stopped study, as a user runs it ------------------------------------------------

def test_a_budget_stopped_study_reports_no_failure(ray_local, tmp_path, monkeypatch):
    """`tunefleet run` as a user runs it, in this process (the session's Ray: it does not
    forward the trials' output, so the tracebacks Ray's SIGTERM leaves are the pure tests'
    above): 1 epoch of budget, trials of 3 epochs, 2 at a time. The budget stops the study
    with every trial running or waiting: they read as stopped by the study, in trials.csv,
    summary.json and the console's final table alike, and the run succeeds, since its best
    (of the epochs trained) is what the budget bought, though no trial finished."""
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from tunefleet.cli import app

    (tmp_path / "spec.yaml").write_text(
        "name: spent\ndata: {dataset: digits}\nmodel: {builder: mlp, params: {units: 8}}\n"
        "train: {epochs: 3, batch_size: 64}\nsearch_space:\n"
        "  learning_rate: {type: loguniform, low: 0.001, high: 0.02}\n"
        "search: {algorithm: random, seed: 1, budget: {epochs: 1}}\n"
        "output: {storage: results}\n")
    monkeypatch.chdir(tmp_path)
    proc = CliRunner().invoke(app, ["run", "spec.yaml", "--no-report"])
    output = proc.output
    assert proc.exit_code == 0, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    why = "the budget (search.budget: 1 epoch) was spent"
    assert f"study ended: {why}" in " ".join(output.split())
    assert "no trial trained to its end within the budget" in " ".join(output.split())

    study = tmp_path / "results" / "spent"
    summary = json.loads((study / "summary.json").read_text())
    trials = pd.read_csv(study / "trials.csv")
    assert summary["stopped"] == why
    statuses = trials["status"].tolist()
    assert set(statuses) == {"stopped_by_study"}  # no trial reached its 3rd epoch
    assert summary["best"]["epoch"] == 1 and isinstance(summary["best"]["epoch"], int)
    counts = summary["trials"]
    assert isinstance(counts["stopped_by_study"], int)
    assert counts["total"] == len(trials) and counts.get("failed", 0) == 0
    assert counts.get("errored", 0) == 0
    assert counts["stopped_by_study"] == statuses.count("stopped_by_study")
    stopped = trials[trials["status"] == "stopped_by_study"]
    assert all(reason.startswith(why + ", ") for reason in stopped["reason"])
    # The console's final table: each trial as the summary names it, none left "running".
    table = output.split("trials by best val_loss")[-1].splitlines()[2:]
    shown = {line.split()[0]: line.split()[1] for line in table if line[:1].isalnum()
             and line.split()[0] in set(trials["trial_id"])}
    assert shown and all(status in ("completed", "stopped") for status in shown.values()), \
        output[-3000:]
    for trial_id, status in zip(trials["trial_id"], trials["status"], strict=True):
        if trial_id in shown:
            assert shown[trial_id] == status.split("_")[0]
