"""Search spaces (spec → Ray) and searchers (grid, random, hyperopt)."""

from .convert import TRIAL_SEED_KEY, describe_entry, grid_size, to_ray_space
from .searchers import SEARCHERS, make_searcher, total_trials

__all__ = ["TRIAL_SEED_KEY", "describe_entry", "grid_size", "to_ray_space", "SEARCHERS", "make_searcher",
           "total_trials"]
