"""What Ray forwards from the trials' processes to the driver, without the lines that say
nothing to a user: the tracebacks of Ray ending a trial's process, and Ray's note of each
checkpoint a trial was restored from (PBT restores one at every exploit). Unless ``--verbose``;
a trial's own output and its real errors always come through."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Callable, Iterator

__all__ = ["worker_output_filtered", "drop_worker_noise"]

# Ray ends a trial's process with SIGTERM when it stops the trial (it removes the trial's
# placement group): search.budget or the failure policy ending a study, a scheduler's cut, the
# end of a study. Ray's SIGTERM handler raises SystemExit(1) in the process's main thread; if
# that thread is then in a finalizer or a weakref callback (the process is already exiting),
# Python prints the SystemExit as an "Exception ignored in: ..." traceback, which Ray forwards
# to the driver. Such a traceback passes through Ray's handler, which no trial error does.
_TRACE_STARTS = ("Exception ignored in", "Traceback (most recent call last):")
_RAY_SIGTERM_FRAME = "in sigterm_handler"
# Ray's Trainable.restore logs this at INFO in the trial's process for every restore (a PBT
# exploit, a retry, a resumed trial); the study's files record each (trials.csv, schedules).
_RESTORED = re.compile(r"^Restored on \S+ from checkpoint: Checkpoint\(")


def drop_worker_noise(lines: list[str]) -> list[str]:
    """``lines`` (a batch of one worker's output, as Ray forwards it) without the tracebacks of
    Ray ending the process (a ``SystemExit`` raised by Ray's SIGTERM handler) and Ray's
    "Restored on ... from checkpoint" notes. Every other line, every other traceback (a
    trial's real errors) and a traceback cut off at the batch's end are kept."""
    kept: list[str] = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith(_TRACE_STARTS):
            if not _RESTORED.match(lines[i]):
                kept.append(lines[i])
            i += 1
            continue
        # A traceback runs to its first line that is neither indented nor empty nor a header.
        end = i + 1
        while end < len(lines) and (not lines[end] or lines[end][0].isspace()
                                    or lines[end].startswith(_TRACE_STARTS)):
            end += 1
        block = lines[i:end + 1]
        ours = (end < len(lines) and lines[end].startswith("SystemExit")
                and any(_RAY_SIGTERM_FRAME in line for line in block))
        if not ours:
            kept.extend(block)
        i = end + 1
    return kept


@contextmanager
def worker_output_filtered(enabled: bool = True) -> Iterator[None]:
    """While the block runs (Ray connected), the workers' output Ray prints in this process
    goes without the tracebacks of Ray ending a trial's process and its restore notes
    (:func:`drop_worker_noise`). Nothing changes where Ray does not forward the workers'
    output (``log_to_driver=False``) or where its internals differ."""
    dispatcher: Any = None
    try:
        from ray._private import ray_logging

        dispatcher = getattr(ray_logging, "global_worker_stdstream_dispatcher", None)
    except ImportError:
        pass
    lock = getattr(dispatcher, "_lock", None)
    if not enabled or lock is None or not isinstance(getattr(dispatcher, "handlers", None), list):
        yield
        return

    def filtered(handler: Callable[[dict], Any]) -> Callable[[dict], Any]:
        def handle(data: dict) -> Any:
            lines = data.get("lines") if isinstance(data, dict) else None
            if isinstance(lines, list):
                kept = drop_worker_noise(lines)
                if not kept:
                    return None
                data = {**data, "lines": kept}
            return handler(data)
        return handle

    originals: list[tuple[Any, Any]] = []  # (our wrapper, Ray's handler)
    with lock:
        handlers = []
        for name, handler in dispatcher.handlers:
            if name == "ray_print_logs":
                originals.append((filtered(handler), handler))
                handler = originals[-1][0]
            handlers.append((name, handler))
        dispatcher.handlers = handlers
    try:
        yield
    finally:
        with lock:  # ray.shutdown removes the handler itself: only what is still there
            dispatcher.handlers = [
                (name, next((ray_h for ours, ray_h in originals if ours is handler), handler))
                for name, handler in dispatcher.handlers]
