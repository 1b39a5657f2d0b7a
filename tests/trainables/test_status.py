"""A trial's status and reason from what Ray wrote about its errors."""

from __future__ import annotations

import json

from tunefleet.trainables.status import (FINISHED_STATUSES, STATUSES, STUDY_STOPS_FILE,
                                         error_summary, study_stop, trial_status)

EXCEPTION = """Failure # 1 (occurred at 2026-11-23_01-00-00)
ray::ImplicitFunc.train() (pid=1, ip=127.0.0.1, actor_id=a, repr=train_trial)
  File "/x/function_trainable.py", line 9, in _trainable_func
    raise RuntimeError("deliberate failure for units=13")
RuntimeError: deliberate failure for units=13
"""
# What Ray 2.60 writes when its memory monitor kills a trial's process (abridged).
HOST_OOM = """Failure # 2 (occurred at 2026-11-23_01-42-37)
1 worker(s) were killed due to the node running low on memory. Memory on the node (IP: 127.0.0.1, ID: 7d95) was 1.26GB used / 23.54GB limit (0.053424)
OOM kill reason: Memory usage 1350361088B exceeded threshold of 252765136B (1.0% of 25276514304B limit)
Ray killed 1 worker(s) based on the killing policy
Top 10 memory users: PID	MEM(GB)	COMMAND
744	0.69	python -m tunefleet.cli run spec.yaml
Refer to the documentation on how to address the out of memory issue: https://docs.ray.io/en/latest/ray-observability/user-guides/debug-apps/debug-memory.html.
"""


def test_an_exception_is_summarised_by_its_own_line():
    assert error_summary(EXCEPTION) == "RuntimeError: deliberate failure for units=13"
    assert trial_status(error_summary(EXCEPTION), {}) == (
        "errored", "RuntimeError: deliberate failure for units=13")


def test_a_host_memory_kill_is_a_failure_that_says_so():
    # The last failure counts: the trial first raised, then was killed for memory.
    summary = error_summary(EXCEPTION + HOST_OOM)
    assert summary.startswith("1 worker(s) were killed due to the node running low on memory")
    status, reason = trial_status(summary, {})
    assert status == "failed"
    assert reason.startswith("killed for running out of host memory: 1 worker(s) were killed")
    assert "1.26GB used / 23.54GB limit" in reason


def test_a_failure_stop_reason_is_failed_even_without_its_record():
    # The trial said it ran out of memory, but its failure.json is missing (written where
    # the driver does not look, or lost): the status must not read as finished.
    for reason, words in (("out_of_memory", "ran out of memory"), ("timeout", "timed out")):
        status, text = trial_status(None, {"epoch": 2, "stop_reason": reason})
        assert (status, text) == ("failed", f"{words} at epoch 2")
    assert "failed" not in FINISHED_STATUSES


def test_trials_the_study_stopped_read_so_and_the_schedulers_cuts_do_not(tmp_path):
    (tmp_path / STUDY_STOPS_FILE).write_text(json.dumps({"a1": "failure.max_consecutive "
                                                               "stopped the study"}))
    stopped = study_stop(tmp_path / "trial_a1")
    assert stopped == "failure.max_consecutive stopped the study"
    assert study_stop(tmp_path / "trial_b2") is None
    assert trial_status(None, {"epoch": 1, "stop_reason": ""}, None, stopped) == (
        "stopped_by_study", "failure.max_consecutive stopped the study, at epoch 1")
    assert trial_status(None, {}, None, stopped)[0] == "stopped_by_study"  # never reported
    # What the trial itself said it ended with comes first.
    assert trial_status(None, {"epoch": 3, "stop_reason": "completed"}, None, stopped)[0] == \
        "completed"
    assert trial_status(None, {"epoch": 1, "stop_reason": ""}, None, None) == (
        "stopped_by_scheduler", "stopped at epoch 1")
    assert "stopped_by_study" in STATUSES and "stopped_by_study" not in FINISHED_STATUSES
    assert study_stop(tmp_path / "elsewhere" / "trial_a1") is None  # no record there
