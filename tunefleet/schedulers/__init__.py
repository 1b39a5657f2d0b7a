"""Trial schedulers (fifo, asha, hyperband, median) with the epoch as time unit."""

from .registry import SCHEDULERS, TIME_ATTR, cut_epochs, make_scheduler

__all__ = ["SCHEDULERS", "TIME_ATTR", "cut_epochs", "make_scheduler"]
