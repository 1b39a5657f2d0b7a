"""Ray connection, per-trial resources, and device setup inside a trial."""

from .connection import (ClusterInfo, check_fits, concurrent_trials, connect, disconnect,
                         keep_ray_on_loopback)
from .devices import configure_trial_devices

__all__ = ["ClusterInfo", "check_fits", "concurrent_trials", "connect", "disconnect",
           "keep_ray_on_loopback", "configure_trial_devices"]
