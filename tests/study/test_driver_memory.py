"""The driver's memory measures (study/driver_memory.py): the glibc arena cap, and dropping a
finished trial's windows of last metric values from Ray's bookkeeping. Real Ray ``Trial``
objects, no cluster; the arena cap in a fresh interpreter (it cannot be undone in this one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest
import ray.cloudpickle
from ray.tune.experiment import Trial

from tunefleet.study import driver_memory
from tunefleet.study.driver_memory import drop_windows, glibc, limit_arenas, memory_callbacks

_ROWS = [{"loss": 0.9, "val_accuracy": 0.61, "epoch": 1, "training_iteration": 1},
         {"loss": 0.5, "val_accuracy": 0.74, "epoch": 2, "training_iteration": 2}]


def _trial(rows=_ROWS) -> Trial:
    trial = Trial("bench", stub=True, config={"units": 16})
    for row in rows:
        trial.update_last_result(dict(row))
    return trial


def test_a_finished_trials_windows_go_and_its_statistics_stay():
    trial = _trial()
    analysis = json.loads(json.dumps(trial.run_metadata.metric_analysis))
    before = len(trial.get_json_state()[1])
    (callback,) = memory_callbacks(drop=True)
    callback.on_trial_complete(iteration=1, trials=[trial], trial=trial)
    windows = trial.run_metadata.metric_n_steps
    assert isinstance(windows, dict) and len(windows) == 0
    assert trial.run_metadata.metric_analysis == analysis  # Ray's analysis reads the same
    after = trial.get_json_state()[1]  # Ray's cache was cleared: re-encoded without them
    assert isinstance(after, str) and len(after) < before
    assert "deque" not in after and json.loads(after)["metric_n_steps"] == {}
    assert drop_windows(trial) is False  # once only


def test_a_trial_reporting_again_gets_new_windows():
    trial = _trial()
    assert drop_windows(trial) is True
    trial.update_last_result({"loss": 0.4, "val_accuracy": 0.8, "epoch": 3,
                              "training_iteration": 3})
    windows = trial.run_metadata.metric_n_steps["loss"]
    assert isinstance(windows["5"], deque) and list(windows["5"]) == [0.4]
    stats = trial.run_metadata.metric_analysis["loss"]
    assert isinstance(stats["last-5-avg"], float) and stats["last-5-avg"] == pytest.approx(0.4)
    assert stats["min"] == pytest.approx(0.4) and stats["max"] == pytest.approx(0.9)


def test_nothing_to_drop_before_a_result_or_without_ray_metadata():
    assert drop_windows(Trial("bench", stub=True)) is False
    assert drop_windows(object()) is False


def test_the_callback_pickles_and_can_be_turned_off(monkeypatch):
    callbacks = memory_callbacks()
    assert isinstance(callbacks, list) and len(callbacks) == 1
    assert isinstance(ray.cloudpickle.loads(ray.cloudpickle.dumps(callbacks)), list)
    assert memory_callbacks(drop=False) == []
    monkeypatch.setattr(driver_memory, "DROP_WINDOWS", False)
    assert memory_callbacks() == []


def test_the_arena_cap_keeps_a_users_setting_and_zero(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_arenas() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert limit_arenas(0) is False


_COUNT_ARENAS = """
import ctypes, importlib.util, os, sys, tempfile, threading
spec = importlib.util.spec_from_file_location("driver_memory", sys.argv[1])
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
capped = module.limit_arenas() if sys.argv[2] == "cap" else False
ready, go = threading.Barrier(7), threading.Event()
def work():
    block = bytearray(100_000)  # a glibc allocation in this thread: it takes an arena
    ready.wait(); go.wait()
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads: t.start()
ready.wait()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fclose.argtypes = [ctypes.c_void_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
path = tempfile.mktemp()
fp = libc.fopen(path.encode(), b"w"); libc.malloc_info(0, fp); libc.fclose(fp)
go.set()
for t in threads: t.join()
print(capped, open(path).read().count("<heap nr="))
os.remove(path)
"""


@pytest.mark.skipif(glibc() is None, reason="glibc only")
@pytest.mark.parametrize("mode", ["cap", "default"])
def test_threads_share_at_most_two_arenas_once_capped(mode):
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", _COUNT_ARENAS,
                          str(Path(driver_memory.__file__)), mode],
                         capture_output=True, text=True, env=env, timeout=60, check=True)
    capped, arenas = out.stdout.split()
    if mode == "cap":
        assert capped == "True" and int(arenas) <= 2
    else:  # glibc's default: one arena per thread here (7 threads)
        assert capped == "False" and int(arenas) > 2
