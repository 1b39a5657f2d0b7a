"""The study's console (tunefleet/study/console.py and ray_console.py): what it collects from
Ray's results, drawn plain and with rich, and the output of a 12-trial `tunefleet run` when
stdout is not a terminal."""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest

from tunefleet.study.console import (TOP, ConsoleView, ErrorRow, StudyProgress, TrialRow,
                                     plain_error, plain_status, plain_table, rich_view)
from tunefleet.study.ray_console import quiet_ray_output, startup_lines_filtered


def _progress(mode: str = "max", planned: int = 4, epochs: int = 2) -> StudyProgress:
    progress = StudyProgress("study", "val_accuracy", mode, epochs, "/results/study")
    progress.start(planned, now=100.0)
    return progress


def _report(progress: StudyProgress, trial_id: str, values: list, config=None, **extra):
    for epoch, value in enumerate(values, start=1):
        progress.result(trial_id, {"epoch": epoch, "val_accuracy": value, **extra},
                        config or {"units": 16, "trial_seed": 123})


# -- what is collected ---------------------------------------------------------------------

def test_the_best_trial_is_the_one_with_the_best_epoch_not_the_best_last_epoch():
    # Ray's reporter would rank b first (its last epoch, 0.7, beats a's last, 0.5); the summary
    # ranks a first (its best epoch, 0.9): the console must agree with the summary.
    progress = _progress()
    _report(progress, "a", [0.9, 0.5])
    _report(progress, "b", [0.6, 0.7])
    view = progress.view(now=110.0)
    assert isinstance(view, ConsoleView) and isinstance(view.best, TrialRow)
    assert (view.best.trial_id, view.best.best, view.best.best_epoch) == ("a", 0.9, 1)
    assert [r.trial_id for r in view.top] == ["a", "b"]
    assert view.top[1].best == 0.7 and view.top[1].best_epoch == 2
    assert isinstance(view.best.best_epoch, int) and isinstance(view.best.epochs, int)


def test_a_lower_is_better_objective_ranks_the_lowest_first():
    progress = StudyProgress("study", "val_loss", "min", 3, "/r/study")
    progress.start(2, now=0.0)
    for trial_id, values in (("a", [0.5, 0.4, 0.6]), ("b", [0.45, 0.45, 0.45])):
        for epoch, value in enumerate(values, start=1):
            progress.result(trial_id, {"epoch": epoch, "val_loss": value}, {"lr": 0.01})
    view = progress.view(now=1.0)
    assert [(r.trial_id, r.best, r.best_epoch) for r in view.top] == [("a", 0.4, 2), ("b", 0.45, 1)]


def test_epochs_that_are_never_a_trials_best():
    progress = _progress()
    # A NaN-loss epoch's weights are lost: never the best, however good its value.
    _report(progress, "a", [0.5])
    progress.result("a", {"epoch": 2, "val_accuracy": 0.99, "stop_reason": "nan_loss"})
    # A failure's row records why the trial ended; it measured nothing (not an epoch).
    _report(progress, "b", [0.4])
    progress.result("b", {"epoch": 1, "val_accuracy": 0.98, "stop_reason": "out_of_memory"})
    # Infinite or missing values are not measurements.
    _report(progress, "c", [math.inf, None])
    # An epoch run again after a retry counts as its latest run.
    _report(progress, "d", [0.3, 0.8])
    progress.result("d", {"epoch": 2, "val_accuracy": 0.2})
    view = progress.view(now=101.0)
    rows = {r.trial_id: r for r in view.top}
    assert (rows["a"].best, rows["a"].best_epoch, rows["a"].epochs) == (0.5, 1, 2)
    assert (rows["b"].best, rows["b"].best_epoch, rows["b"].epochs) == (0.4, 1, 1)
    assert rows["c"].best is None and rows["c"].best_epoch is None and rows["c"].epochs == 2
    assert (rows["d"].best, rows["d"].best_epoch) == (0.3, 1)
    assert view.best is not None and view.best.trial_id == "a"
    assert view.top[-1].trial_id == "c"  # unscored trials come last


def test_ties_go_to_the_first_trial_and_its_first_epoch():
    progress = _progress()
    _report(progress, "b", [0.7, 0.7])
    _report(progress, "a", [0.6, 0.7])
    view = progress.view(now=101.0)
    assert [(r.trial_id, r.best_epoch) for r in view.top] == [("a", 2), ("b", 1)]


def test_hyperparameters_are_shown_without_the_trial_seed():
    progress = _progress()
    _report(progress, "a", [0.5], config={"units": 16, "trial_seed": 99,
                                          "optimizer": {"name": "adam", "lr": 0.001}})
    row = progress.view(now=101.0).top[0]
    assert row.config == {"units": 16, "optimizer/name": "adam", "optimizer/lr": 0.001}
    # A conditional (hypermodel) trial shows only the hyperparameters it used.
    progress.result("a", {"epoch": 2, "val_accuracy": 0.6,
                          "active_hyperparameters": "units"})  # as the reporter writes it
    assert progress.view(now=102.0).top[0].config == {"units": 16}


def test_counts_epochs_and_eta():
    progress = _progress(planned=4, epochs=2)
    progress.status("a", "running")
    progress.status("b", "pending")
    _report(progress, "a", [0.5])  # 1 of 8 epochs in 10 s
    view = progress.view(now=110.0)
    assert view.counts == {"running": 1, "pending": 1}
    assert (view.planned, view.epochs_done, view.epochs_budget) == (4, 1, 8)
    # 7 epochs to go (a: 1, b: 2, two trials not created yet: 4) at 10 s an epoch.
    assert view.eta_s == pytest.approx(70.0) and isinstance(view.eta_s, float)
    assert view.elapsed_s == pytest.approx(10.0)
    progress.ended("a", {"epoch": 1, "stop_reason": "early_stopping"})
    view = progress.view(now=110.0)
    assert view.counts == {"pending": 1, "early_stopped": 1}
    assert view.eta_s == pytest.approx(60.0)  # a's second epoch will not run


def test_a_resumed_studys_past_epochs_count_but_take_no_time():
    progress = _progress(planned=2, epochs=2)
    progress.result("a", {"epoch": 1, "val_accuracy": 0.5}, counted=False)
    progress.result("a", {"epoch": 2, "val_accuracy": 0.6}, counted=False)
    progress.ended("a", {"epoch": 2, "stop_reason": "completed"})
    view = progress.view(now=110.0)
    assert view.epochs_done == 2 and view.eta_s is None  # no epoch run yet: no rate
    _report(progress, "b", [0.4])
    assert progress.view(now=110.0).eta_s == pytest.approx(10.0)


def test_errors_and_failures_are_one_line_each_with_their_log():
    progress = _progress()
    _report(progress, "a", [0.5])
    errored = progress.ended("a", {"epoch": 1}, error="RuntimeError: bad\n  units=7")
    failed = progress.ended("b", {"epoch": 1, "stop_reason": "out_of_memory"},
                            failure={"kind": "out_of_memory", "reason": "out of memory"})
    nan = progress.ended("c", {"epoch": 3, "stop_reason": "nan_loss"})
    completed = progress.ended("d", {"epoch": 2, "stop_reason": "completed"})
    assert completed is None
    assert isinstance(errored, ErrorRow)
    assert (errored.status, errored.reason, errored.log) == (
        "errored", "RuntimeError: bad units=7", "/results/study/trial_a/error.txt")
    assert (failed.status, failed.reason, failed.log) == (
        "failed", "out of memory", "/results/study/trial_b/failure.json")
    assert (nan.status, nan.log) == ("failed", "/results/study/trial_c/result.json")
    assert "NaN at epoch 3" in nan.reason
    assert progress.ended("a", {"epoch": 1}, error="again") is None  # said once
    view = progress.view(now=101.0)
    assert [e.trial_id for e in view.errors] == ["a", "b", "c"]
    assert view.counts == {"completed": 1, "failed": 2, "errored": 1}
    line = plain_error(errored)
    assert "\n" not in line
    assert line == ("errored trial a: RuntimeError: bad units=7 "
                    "(log: /results/study/trial_a/error.txt)")


# -- drawing: the same view, plain and rich ------------------------------------------------

def _twelve() -> ConsoleView:
    progress = _progress(planned=12, epochs=2)
    for i in range(12):
        _report(progress, f"t{i:02d}", [0.5 + i / 100, 0.4], config={
            "units": i, "learning_rate": 0.00123456, "trial_seed": 1000 + i})
        progress.ended(f"t{i:02d}", {"epoch": 2, "stop_reason": "completed"})
    return progress.view(now=165.0)


def test_the_plain_status_line():
    view = _twelve()
    line = plain_status(view)
    assert line == ("[study 1:05] 12 trials: completed 12 | epochs 24/24 | best val_accuracy "
                    "0.6100 (trial t11, epoch 1): units=11 learning_rate=0.001235")
    assert "trial_seed" not in line and "\n" not in line
    progress = _progress()
    progress.status("x", "pending")
    assert plain_status(progress.view(now=100.0)) == (
        "[study 0:00] 4 trials: pending 1 | epochs 0/8 | best val_accuracy: none yet")


def test_the_plain_table_lists_the_top_ten():
    lines = plain_table(_twelve())
    assert isinstance(lines, list) and all(isinstance(line, str) for line in lines)
    assert len(lines) == 2 + TOP == 12
    assert lines[0] == "study: top 10 of 12 trials by best val_accuracy (higher is better)"
    assert lines[1].split() == ["trial", "status", "val_accuracy", "epoch", "epochs",
                                "hyperparameters"]
    assert lines[2].split() == ["t11", "completed", "0.6100", "1", "2", "units=11",
                                "learning_rate=0.001235"]
    assert [line.split()[0] for line in lines[2:]] == [f"t{i:02d}" for i in range(11, 1, -1)]
    # Aligned columns: every trial's value ends where the header's does.
    end = lines[1].index("val_accuracy") + len("val_accuracy")
    assert all(line[end - 6:end] == line[end - 6:end].strip().rjust(6) for line in lines[2:])
    assert not any("trial_seed" in line for line in lines)


def test_the_rich_view_shows_the_same_data():
    from rich.console import Console

    view = _twelve()
    buffer = io.StringIO()
    Console(file=buffer, width=140, color_system=None).print(rich_view(view))
    text = buffer.getvalue()
    assert "12 trials: completed 12" in text and "epochs 24/24" in text
    assert "best val_accuracy 0.6100 (trial t11, epoch 1)" in text
    shown = re.findall(r"^\s*(t\d\d)\s", text, flags=re.M)
    assert shown == [f"t{i:02d}" for i in range(11, 1, -1)]  # the top 10, best first
    assert "trial_seed" not in text


# -- the Ray Tune callback, driven as Ray drives it ------------------------------------------

class _Trial:
    """The attributes of Ray's Trial the console reads."""

    def __init__(self, trial_id: str, units: int):
        self.trial_id, self.config = trial_id, {"units": units, "trial_seed": 5}
        self.status, self.last_result, self.error_file = "PENDING", {}, None


def _console(stream, interval_s: float = 0.2):
    from types import SimpleNamespace

    from tunefleet.study.ray_console import study_console

    storage = SimpleNamespace(location="/r/s", remote=True)
    return study_console("s", "val_accuracy", "max", 2, storage, interval_s=interval_s,
                         live=False, stream=stream)


def test_plain_lines_come_at_the_interval_and_only_when_something_changed():
    stream = io.StringIO()
    console = _console(stream)
    trial = _Trial("a", 4)
    console.setup(total_num_samples=1)
    console.on_step_end(0, [trial])  # just started: the header says enough
    time.sleep(0.25)
    trial.status = "RUNNING"
    console.on_step_end(1, [trial])
    result = {"epoch": 1, "val_accuracy": 0.5}
    console.on_trial_result(2, [trial], trial, result)
    console.on_step_end(2, [trial])  # too soon after the last line
    time.sleep(0.25)
    console.on_step_end(3, [trial])  # it changed: a line
    time.sleep(0.25)
    console.on_step_end(4, [trial])  # nothing changed: no line
    trial.status, trial.last_result = "TERMINATED", {"epoch": 2, "val_accuracy": 0.4,
                                                     "stop_reason": "completed"}
    console.on_trial_result(5, [trial], trial, trial.last_result)
    console.on_trial_complete(5, [trial], trial)
    console.on_experiment_end([trial])
    lines = stream.getvalue().splitlines()
    assert lines[0] == "s: 1 trial, up to 2 epochs; a status line every 0.2 s while it changes"
    best = "best val_accuracy 0.5000 (trial a, epoch 1): units=4"
    assert [re.sub(r"ETA \d+:\d\d", "ETA ?", line.split("] ", 1)[1]) for line in lines[1:4]] == [
        "1 trial: running 1 | epochs 0/2 | best val_accuracy: none yet",
        f"1 trial: running 1 | epochs 1/2, ETA ? | {best}",
        f"1 trial: completed 1 | epochs 2/2 | {best}"]
    assert lines[4:] == plain_table(console.progress.view())
    assert len(lines) == 7


def test_a_resumed_studys_trials_bring_their_past(tmp_path):
    """Trials Ray restored: their best epoch may be before the last one Ray remembers, and an
    errored one's error is where the study kept it."""
    from types import SimpleNamespace

    from tunefleet.study.ray_console import study_console

    (tmp_path / "trial_a").mkdir()
    (tmp_path / "trial_a" / "result.json").write_text("".join(
        json.dumps({"epoch": e, "val_accuracy": v}) + "\n" for e, v in ((1, 0.9), (2, 0.5))))
    (tmp_path / "trial_b").mkdir()
    (tmp_path / "trial_b" / "error.txt").write_text(
        "Failure # 1 (occurred at 2026)\nTraceback (most recent call last):\n  File x\n"
        "RuntimeError: deliberate failure for units=7\n")
    done, errored, paused = _Trial("a", 4), _Trial("b", 7), _Trial("c", 8)
    done.status, done.last_result = "TERMINATED", {"epoch": 2, "val_accuracy": 0.5,
                                                   "stop_reason": "completed"}
    errored.status = "ERROR"
    paused.last_result = {"epoch": 1, "val_accuracy": 0.6}
    stream = io.StringIO()
    console = study_console("s", "val_accuracy", "max", 2,
                            SimpleNamespace(location=str(tmp_path), remote=False),
                            live=False, stream=stream)
    console.setup(total_num_samples=3)
    console.on_step_begin(0, [done, errored, paused])
    view = console.progress.view()
    rows = {r.trial_id: r for r in view.top}
    assert (rows["a"].status, rows["a"].best, rows["a"].best_epoch) == ("completed", 0.9, 1)
    assert rows["b"].status == "errored" and rows["c"].status == "pending"
    assert view.errors == [ErrorRow("b", "errored", "RuntimeError: deliberate failure for units=7",
                                    f"{tmp_path}/trial_b/error.txt")]
    assert view.epochs_done == 3 and view.eta_s is None  # nothing trained in this run yet
    assert "errored trial" not in stream.getvalue()  # an earlier run's error: not news


def test_a_console_that_fails_warns_and_lets_the_study_go_on():
    class Broken:
        def write(self, text):
            raise OSError("the terminal went away")

        def flush(self):
            pass

    console = _console(Broken())
    with pytest.warns(RuntimeWarning, match="console stopped .*the terminal went away"):
        console.setup(total_num_samples=1)
    trial = _Trial("a", 4)
    console.on_trial_result(1, [trial], trial, {"epoch": 1, "val_accuracy": 0.5})
    console.on_experiment_end([trial])  # no exception, nothing more drawn


# -- Ray's and TensorFlow's output, quietened ----------------------------------------------

def test_quiet_ray_output_uses_the_silent_engine_and_filters_what_the_console_replaces(
        monkeypatch):
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "1")
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    logger = logging.getLogger("ray.tune.execution.tune_controller")
    handler = Keep()
    logger.addHandler(handler)

    class Closing:
        closed = 0

        def close(self):
            self.closed += 1

    console = Closing()
    try:
        with quiet_ray_output(console):
            assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0"
            logger.error("Trial task failed for trial x")
            logger.error("something else")
        logger.error("Trial task failed for trial y")
    finally:
        logger.removeHandler(handler)
    assert seen == ["something else", "Trial task failed for trial y"]
    assert os.environ["RAY_AIR_NEW_OUTPUT"] == "1" and console.closed == 1
    with quiet_ray_output(None):  # verbose: nothing changes
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == "1"


def test_startup_lines_are_dropped_from_this_processs_stderr(capfd):
    noise = ("WARNING: All log messages before absl::InitializeLog() is called are written to "
             "STDERR\nI0000 00:00:1796218617.389991   24865 port.cc:153] oneDNN custom "
             "operations are on. You may see slightly different numerical results. To turn them "
             "off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n")
    with startup_lines_filtered():
        os.write(2, (noise + "a real error\n").encode())
        os.write(2, b"W0000 port.cc:1] a warning\n")
        os.write(1, b"stdout is left alone\n")
    out, err = capfd.readouterr()
    assert err == "a real error\nW0000 port.cc:1] a warning\n"
    assert out == "stdout is left alone\n"
    with startup_lines_filtered(enabled=False):
        os.write(2, noise.encode())
    assert capfd.readouterr().err == noise


def test_workers_start_quietly_unless_you_set_the_variable(monkeypatch):
    from tunefleet.cluster.connection import STARTUP_NOISE, worker_env_vars

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert worker_env_vars()["TF_CPP_MIN_LOG_LEVEL"] == "2"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert worker_env_vars()["TF_CPP_MIN_LOG_LEVEL"] == "0"
    # The lines TensorFlow 2.21 writes at start-up whatever TF_CPP_MIN_LOG_LEVEL says.
    assert STARTUP_NOISE.search("WARNING: All log messages before absl::InitializeLog() is "
                                "called are written to STDERR")
    assert STARTUP_NOISE.search("I0000 00:00:1796218617.389991   24865 port.cc:153] oneDNN "
                                "custom operations are on. You may see slightly different")
    assert not STARTUP_NOISE.search("RuntimeError: deliberate failure for units=7")


def test_rays_driver_drops_the_workers_startup_lines_unless_you_set_its_filter(monkeypatch):
    from ray._private import ray_logging

    from tunefleet.cluster.connection import STARTUP_NOISE, _skip_startup_lines

    for name in ("stdout_deduplicator", "stderr_deduplicator"):
        monkeypatch.setattr(getattr(ray_logging, name), "skip_re", None)
    monkeypatch.setenv("RAY_DEDUP_LOGS_SKIP_REGEX", "")  # yours, empty: every line shows
    _skip_startup_lines()
    assert os.environ["RAY_DEDUP_LOGS_SKIP_REGEX"] == ""
    assert ray_logging.stderr_deduplicator.skip_re is None
    monkeypatch.delenv("RAY_DEDUP_LOGS_SKIP_REGEX")
    _skip_startup_lines()  # Ray is imported already: its filters get the pattern too
    assert os.environ["RAY_DEDUP_LOGS_SKIP_REGEX"] == STARTUP_NOISE.pattern
    noise = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
    batch = {"ip": "127.0.0.1", "pid": 7, "task_name": "train_trial", "actor_name": None,
             "is_err": True, "lines": [noise, "a real error"]}
    kept = ray_logging.stderr_deduplicator.deduplicate(batch)
    assert [line for b in kept for line in b["lines"]] == ["a real error"]


# -- a study through the command line, its output not a terminal -----------------------------

TWELVE = """\
name: twelve
data: {dataset: breast_cancer}
model: {builder: 'chatty:mlp', params: {fail_on_units: 15}}
train: {epochs: 2, batch_size: 64}
search_space:
  units: {type: grid, values: [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]}
search: {algorithm: grid}
failure: {max_retries: 0}
cluster: {num_cpus: 2}
objective: {metric: val_accuracy, mode: max}
output: {storage: results}
"""


# A builder in the current directory, as a user's would be, that prints in one trial and
# raises in the last (no trial is left for Ray to start a process in place of the one that
# raised). Its `import keras` must find the installed Keras, not the keras.py beside it.
CHATTY = """\
import keras


def mlp(info, units=16, fail_on_units=-1):
    if int(units) == 4:
        print("chatty: building units=4", flush=True)
    if int(units) == int(fail_on_units):
        raise RuntimeError(f"deliberate failure for units={units}")
    inputs = keras.Input(shape=info.input_shape)
    x = keras.layers.Dense(int(units), activation="relu")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(info.num_outputs, activation="sigmoid")(x))
"""
# Modules beside it that must not shadow the installed packages, in the driver or in its
# trials (tests/test_cli.py asserts on that, from this same run).
SHADOWS = ("yaml", "keras")


class UserRun(NamedTuple):
    """`tunefleet run spec.yaml --no-report` in ``path``, as a user runs it."""
    path: Path
    returncode: int
    stdout: str
    stderr: str
    took_s: float


def twelve_trial_run(tmp_path_factory: pytest.TempPathFactory,
                     environ: dict[str, str] | None = None) -> UserRun:
    """TWELVE run once per session by the console script, in a directory holding its builder
    (chatty.py) and a yaml.py and keras.py that fail if imported; no PYTHONPATH (tunefleet is
    installed, and nothing puts that directory first) and tunefleet's own output defaults, as
    a user gets them (from ``environ``, or this process's). For this module's test and
    tests/test_cli.py's shadowing test, which imports this module under another name: the run
    is kept in the session's temporary directory, not in a variable."""
    path = tmp_path_factory.getbasetemp() / "twelve_trial_run"
    record = path / "run.json"
    if not record.exists():
        path.mkdir(exist_ok=True)
        (path / "spec.yaml").write_text(TWELVE)
        (path / "chatty.py").write_text(CHATTY)
        for name in SHADOWS:
            (path / f"{name}.py").write_text(
                f"raise ImportError('the {name}.py here was imported')\n")
        script = Path(sys.executable).parent / "tunefleet"
        env = {**(os.environ if environ is None else environ),
               "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        for name in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL", "RAY_DEDUP_LOGS_SKIP_REGEX",
                     "RAY_AIR_NEW_OUTPUT"):
            env.pop(name, None)
        started = time.perf_counter()
        try:
            proc = subprocess.run([str(script), "run", "spec.yaml", "--no-report"], cwd=path,
                                  env=env, capture_output=True, text=True, timeout=400)
        except subprocess.TimeoutExpired as exc:  # shadowing packages kept trials from starting
            pytest.fail(f"the study hung: {str(exc.stderr)[-2000:]}")
        record.write_text(json.dumps({"returncode": proc.returncode, "stdout": proc.stdout,
                                      "stderr": proc.stderr,
                                      "took_s": time.perf_counter() - started}))
    return UserRun(path, **json.loads(record.read_text()))


@pytest.fixture(scope="module", autouse=True)
def twelve_trials_beside(request, tmp_path_factory):
    """``twelve_trial_run``, started with this module's first test, in a thread: its process
    runs beside the tests before its own, which waits for it. Not started when that test is
    not selected; started with the environment as it is before those tests change it."""
    if not any(item.name == "test_a_twelve_trial_study_prints_a_few_dozen_lines"
               for item in request.session.items):
        yield None
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(twelve_trial_run, tmp_path_factory, dict(os.environ))


# What a Ray worker process prints when it dies (a segfault, a SIGTERM raising SystemExit in
# Python's cleanup): Ray's, seen now and then on a loaded machine, in processes that ran no
# trial or had finished theirs; not counted in the console's budget.
_CRASH = ("Fatal Python error", "raise_sys_exit_with_custom_error_message", "*** SIGSEGV")


def _ray_crash_reports(lines: list[str]) -> set[int]:
    """Indices of the lines Ray forwarded from worker processes that crashed (``_CRASH``)."""
    def pid(line: str):
        found = re.search(r"\(\w*\s*pid=(\d+)", line)
        return found.group(1) if found else None

    crashed = {pid(line) for line in lines if any(mark in line for mark in _CRASH)} - {None}
    return {i for i, line in enumerate(lines) if pid(line) in crashed}


def test_verbose_restores_rays_reporter(ray_local, tmp_path):
    """In this process (the session's Ray): Ray Tune's table instead of the console."""
    from typer.testing import CliRunner

    from tunefleet.cli import app

    spec = TWELVE.replace("values: [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]", "values: [5]")
    spec = spec.replace("chatty:mlp", "tests.builders:small_mlp")
    spec = spec.replace("epochs: 2", "epochs: 1").replace("cluster: {num_cpus: 2}\n", "")
    (tmp_path / "spec.yaml").write_text(spec)
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        proc = CliRunner().invoke(app, ["run", "spec.yaml", "--no-report", "--verbose"])
    finally:
        os.chdir(here)
    assert proc.exit_code == 0, proc.output[-3000:]
    assert "Trial status:" in proc.stdout and "train_trial_" in proc.stdout
    assert "a status line every" not in proc.stdout  # no console


@pytest.mark.slow
def test_a_twelve_trial_study_prints_a_few_dozen_lines(twelve_trials_beside):
    proc = twelve_trials_beside.result()
    took, tmp_path = proc.took_s, proc.path
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    lines = output.splitlines()
    crashes = _ray_crash_reports(lines)
    counted = len(lines) - len(crashes)
    assert counted <= 40, f"{counted} lines in {took:.0f} s:\n{output}"
    # No per-trial boxes, no traceback of the errored trial (chatty.py raised it), no
    # start-up lines of TensorFlow or absl (what trial code prints still comes through).
    for noise in ("oneDNN", "absl", "TF_ENABLE_ONEDNN_OPTS", "cuda", "Trial status",
                  "Trial task failed", "│ Trial", "chatty.py"):
        assert noise not in output, f"{noise!r} in:\n{output}"
    assert "trial_seed" not in output
    # What trial code prints still reaches the user.
    assert any("train_trial pid=" in line and line.endswith("chatty: building units=4")
               for line in lines), output
    # The error is one line, with the path of the trial's error file.
    study = tmp_path / "results" / "twelve"
    summary = json.loads((study / "summary.json").read_text())
    errored = [line for line in lines if "deliberate failure for units=15" in line]
    console_line = [line for line in errored if line.startswith("errored trial")]
    assert len(console_line) == 1, output
    log = re.search(r"\(log: (.+)\)$", console_line[0]).group(1)
    assert Path(log).is_file() and Path(log).parent.parent == study
    assert "deliberate failure for units=15" in Path(log).read_text()
    # The console's best is the summary's, and the summary is printed.
    best = summary["best"]
    assert summary["trials"]["completed"] == 11 and summary["trials"]["errored"] == 1
    claim = (f"best val_accuracy {best['metrics']['val_accuracy']:.4f} "
             f"(trial {best['trial_id']}, epoch {best['epoch']})")
    status_lines = [line for line in lines if line.startswith("[twelve ")]
    assert status_lines and claim in status_lines[-1], output
    assert "completed 11, errored 1" in status_lines[-1]
    table = lines.index("twelve: top 10 of 12 trials by best val_accuracy (higher is better)")
    assert lines[table + 2].split()[:2] == [best["trial_id"], "completed"]
    assert "best val_accuracy" in proc.stdout.split("twelve: 12 trials in")[-1]  # the summary
