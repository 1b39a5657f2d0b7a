"""Weights & Biases runs of a study (``output.trackers: [wandb]``), offline unless configured."""

from __future__ import annotations

import os
from typing import Any

from ray.air.integrations.wandb import WandbLoggerCallback, _WandbLoggingActor

from ...spec import TRIAL_SEED_KEY, Experiment
from . import wandb_settings

__all__ = ["WandbLogger"]


class _LoggingActor(_WandbLoggingActor):
    """Ray's logging actor, with the run's mode in the process' environment too (W&B's
    process-wide telemetry reads the mode there, not from ``wandb.init``: offline, it would
    still contact W&B's server), and without the trial's seed in the run's config."""

    def run(self) -> None:
        os.environ["WANDB_MODE"] = self.kwargs.get("mode") or os.environ.get("WANDB_MODE", "")
        super().run()
        # Shut W&B's service process down too before Ray, finding this actor done, kills it.
        self._wandb.teardown()

    def _handle_result(self, result: dict) -> tuple[dict, dict]:
        # Ray copies each result's config into the run's config, past the excluded keys.
        log, config_update = super()._handle_result(result)
        config_update.pop(TRIAL_SEED_KEY, None)
        return log, config_update


class WandbLogger(WandbLoggerCallback):
    """Ray's W&B logger: a run per trial, written by a logging actor in the trial's
    directory (``trial_<id>/wandb/``), grouped by study, its config the trial's
    hyperparameters (without the seed). Offline it needs no API key (Ray's asks for one)."""

    _logger_actor_cls = _LoggingActor

    def __init__(self, experiment: Experiment) -> None:
        super().__init__(project=os.environ.get("WANDB_PROJECT") or experiment.name,
                         group=experiment.name, excludes=[TRIAL_SEED_KEY], **wandb_settings())

    # Offline, a trial's run is finished (locally) before the study goes on; left to Ray,
    # the last trial's actor was killed while finishing and its records were lost.
    finish_timeout_s = 60

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        future = self._trial_logging_futures.get(trial)
        if future is None or self.kwargs.get("mode") not in ("offline", "disabled"):
            super().log_trial_end(trial, failed)
            return
        import ray

        self._signal_logging_actor_stop(trial=trial)
        ray.wait([future], timeout=self.finish_timeout_s)
        self._cleanup_logging_actors()

    def setup(self, *args: Any, **kwargs: Any) -> None:
        if self.kwargs.get("mode") in ("offline", "disabled"):
            self.api_key_file = None  # nothing is uploaded: no key to look for
            return
        super().setup(*args, **kwargs)
