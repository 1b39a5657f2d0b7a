"""Ray connection, per-trial resources, device setup inside a trial, and job submission."""

from .connection import (ClusterInfo, check_fits, check_shared_storage, concurrent_trials,
                         connect, disconnect, keep_ray_on_loopback, planned_concurrency)
from .devices import configure_trial_devices

__all__ = ["ClusterInfo", "check_fits", "check_shared_storage", "concurrent_trials", "connect",
           "disconnect", "planned_concurrency", "keep_ray_on_loopback", "configure_trial_devices"]
