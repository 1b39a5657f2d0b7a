"""Ending the process groups the cluster tests start (a Ray head, a node in its own namespace)."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_group(proc: subprocess.Popen, timeout_s: float = 60) -> None:
    """SIGTERM the group ``proc`` leads (started with ``start_new_session=True``), then SIGKILL
    it if it is still there after ``timeout_s``."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
