"""The driver's memory over a long study (issue 14, measured with ``scripts/bench_overhead.py``).

What a study's driver keeps per trial is Ray Tune's bookkeeping, not tunefleet's: each finished
trial's last result, each metric's running statistics and the last 5 and 10 values of each
metric (``Trial.run_metadata``), and each trial's state as cached JSON for Ray's experiment
snapshots. Ray rewrites its experiment state periodically and copies it from new threads (with
``CheckpointConfig.num_to_keep``, which tunefleet no longer uses, after every trial checkpoint:
study/checkpoint_keeper.py), and that churn spreads free memory over glibc's per-thread
arenas, where it stays.

Two measures, both in the driver only (trial processes are untouched):

- :func:`limit_arenas`: at most :data:`ARENA_MAX` glibc arenas for the threads created from the
  study's preparation on (TensorFlow's and Ray's), as ``MALLOC_ARENA_MAX`` does at a process's
  start. A value the user set in the environment is kept; nothing is done where the C library is
  not glibc, or in a process that already has more than 8 arenas (glibc fixed its limit then).
- :func:`memory_callbacks`: once a trial has finished, its windows of last values go (Ray
  updates them only when a result arrives, and a finished trial sends none); the running
  statistics (max, min, average, last-5 and last-10 averages) stay, so Ray's analysis reads the
  same. Should a finished trial ever report again, its windows start afresh.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections import deque
from typing import Any, Optional

__all__ = ["ARENA_MAX", "DROP_WINDOWS", "glibc", "limit_arenas", "drop_windows",
           "memory_callbacks"]

ARENA_MAX = 2  # glibc arenas for the driver's threads; 0: glibc's default (8 per core)
DROP_WINDOWS = True  # drop a finished trial's windows of last metric values
_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


@functools.lru_cache(maxsize=1)
def glibc() -> Optional[ctypes.CDLL]:
    """The process's C library if it is glibc (it has ``mallopt``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):  # musl has no mallopt
        return None
    return libc


def limit_arenas(arenas: Optional[int] = None) -> bool:
    """Cap glibc's arenas for threads created from now on at ``arenas`` (default
    :data:`ARENA_MAX`). False where nothing was set: not glibc, ``arenas`` 0, or
    ``MALLOC_ARENA_MAX`` in the environment (the user's choice, which glibc applied at start)."""
    arenas = ARENA_MAX if arenas is None else int(arenas)
    libc = glibc()
    if arenas <= 0 or libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, arenas))


class _Windows(dict):
    """A finished trial's ``metric_n_steps`` once its windows are dropped: empty (as JSON too),
    and a metric looked up again gets new empty windows, as Ray's ``update_metric`` expects."""

    def __init__(self, sizes: Any = (5, 10)):
        super().__init__()
        self.sizes = tuple(int(n) for n in sizes)

    def __missing__(self, metric: str) -> dict[str, deque]:
        windows = self[metric] = {str(n): deque(maxlen=n) for n in self.sizes}
        return windows


def drop_windows(trial: Any) -> bool:
    """Drop a finished trial's windows of last metric values (Ray's
    ``trial.run_metadata.metric_n_steps``, two deques per reported metric); True if it had any.
    Replacing the attribute also clears Ray's cached JSON of it, so the next experiment
    snapshot writes the trial without them."""
    metadata: Any = getattr(trial, "run_metadata", None)
    windows = getattr(metadata, "metric_n_steps", None)
    if not isinstance(windows, dict) or not windows or isinstance(windows, _Windows):
        return False
    metadata.metric_n_steps = _Windows(getattr(metadata, "_n_steps", (5, 10)))
    return True


def memory_callbacks(drop: Optional[bool] = None) -> list[Any]:
    """The Ray Tune callback that drops each finished trial's windows (:func:`drop_windows`),
    or none when ``drop`` (default :data:`DROP_WINDOWS`) is False."""
    if not (DROP_WINDOWS if drop is None else drop):
        return []
    from ray.tune import Callback  # imported here: importing Ray is slow

    class _FinishedTrials(Callback):
        # Ray calls this once a trial will report no more (it then marks the trial TERMINATED
        # and snapshots its state); an errored trial keeps its windows (a resume may retry it).
        def on_trial_complete(self, iteration: int, trials: list, trial: Any,
                              **info: Any) -> None:
            drop_windows(trial)

    return [_FinishedTrials()]
