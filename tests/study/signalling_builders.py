"""A `module:function` builder that interrupts the study's driver (imported by trial processes)."""

from __future__ import annotations

import os
import signal
import time

from tests.builders import small_mlp


def interrupting_mlp(info, units: int = 16, interrupt_on_units: int = -1, oom_on_units: int = -1,
                     driver_pid: int = 0, marker: str = ""):
    """small_mlp; for ``interrupt_on_units`` the first time (``marker``), the trial sends the
    driver Ctrl-C (SIGINT) and waits to be stopped; ``oom_on_units`` raises MemoryError."""
    if int(units) == int(oom_on_units):
        raise MemoryError(f"could not allocate the layers for units={units}")
    if int(units) == int(interrupt_on_units) and os.getpid() != driver_pid \
            and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(driver_pid, signal.SIGINT)
        time.sleep(600)
    return small_mlp(info, units=units)
