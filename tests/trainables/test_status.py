"""A trial's status and reason from what Ray wrote about its errors."""

from __future__ import annotations

from tunefleet.trainables.status import error_summary, trial_status

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
