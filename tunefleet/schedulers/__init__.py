"""Trial schedulers (fifo, asha, hyperband, median) with the epoch as time unit."""

from .cuts import Bracket, brackets, cut_epochs
from .registry import SCHEDULERS, TIME_ATTR, make_scheduler

__all__ = ["SCHEDULERS", "TIME_ATTR", "Bracket", "brackets", "cut_epochs", "make_scheduler"]
