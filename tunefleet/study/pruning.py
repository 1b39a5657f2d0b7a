"""``output.keep_checkpoints: best_trials``: delete, as trials finish, the checkpoints of
finished trials that can no longer be among the study's best.

A trial's score is its best finite objective over its measured epochs (the rule the summary
ranks by; failure rows and NaN-loss epochs do not count). A finished (``TERMINATED``) trial's
checkpoints go once ``OutputSpec.BEST_TRIALS_KEPT`` other trials, of any status, score better:
scores only improve, so it can never climb back into the top. Trials that are running, paused,
pending or errored keep theirs (a resumed study continues them), as do the top few: the best
one is the one the report evaluates, and the next ones are what ``get_best_models(n)`` of the
KerasTuner drop-in or a comparison of the leaders restores. An epoch repeated after a retry
counts with its latest value, as in the summary. A study resumed later knows only the scores
it sees again: a trial that finished before the resume has no score here and is never
pruned (it may be one of the best), which can only keep more.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from ..spec import Experiment
from ..trainables.reporter import FAILURE_ROW_REASONS
from ..trainables.status import STOP_REASONS
from .console import best_epoch

__all__ = ["CheckpointPruner", "checkpoint_callbacks"]

logger = logging.getLogger(__name__)


class CheckpointPruner:
    """Deletes the checkpoints of finished trials out of the top ``keep`` (by best
    objective); a Ray Tune callback as :func:`checkpoint_callbacks` makes it."""

    def __init__(self, metric: str, mode: str, keep: int):
        self.metric, self.mode, self.keep = metric, mode, int(keep)
        self.epochs: dict[str, dict[int, float]] = {}  # trial -> epoch -> latest value
        self.pruned: set[str] = set()

    @property
    def scores(self) -> dict[str, float]:
        """Each trial's best objective over its epochs (an epoch's latest value)."""
        best = {trial: best_epoch(values, self.mode)[0] for trial, values in self.epochs.items()}
        return {trial: value for trial, value in best.items() if value is not None}

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.mode == "max" else a < b

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        reason = result.get("stop_reason")
        if reason in FAILURE_ROW_REASONS or reason == STOP_REASONS[2]:
            return  # no measured epoch, or weights lost (NaN loss): never the best
        try:
            value = float(result.get(self.metric, math.nan))
            epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        except (TypeError, ValueError):
            return
        values = self.epochs.setdefault(trial.trial_id, {})
        if math.isfinite(value):
            values[epoch] = value  # a repeated epoch (after a retry): its latest value
        else:
            values.pop(epoch, None)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.prune(trials)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.prune(trials)

    def prune(self, trials: list) -> list[str]:
        """Delete what can go now; return the ids of the trials pruned by this call."""
        scores = self.scores
        ranked = list(scores.values())
        if len(ranked) <= self.keep:
            return []
        pruned = []
        for trial in trials:
            if trial.trial_id in self.pruned or trial.status != "TERMINATED":
                continue
            score = scores.get(trial.trial_id)
            if score is None:  # not seen in this run (finished before a resume): may be the best
                continue
            # Out of the top once `keep` others are strictly better (a tie stays).
            if sum(self._better(s, score) for s in ranked) < self.keep:
                continue
            _delete_checkpoints(trial)
            self.pruned.add(trial.trial_id)
            pruned.append(trial.trial_id)
        return pruned


def _delete_checkpoints(trial: Any) -> None:
    """Remove the trial's ``checkpoint_*`` directories where Ray stored them (a path or a
    URI: Ray's own filesystem for the study)."""
    import pyarrow.fs

    storage = trial.storage
    fs, root = storage.storage_filesystem, storage.trial_fs_path
    try:
        found = fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True))
    except OSError as exc:
        logger.warning("could not list %s to delete its checkpoints: %s", root, exc)
        return
    for entry in found:
        if entry.type == pyarrow.fs.FileType.Directory and \
                entry.base_name.startswith("checkpoint_"):
            try:
                fs.delete_dir(entry.path)
            except OSError as exc:
                logger.warning("could not delete %s: %s", entry.path, exc)


def checkpoint_callbacks(experiment: Experiment) -> list[Any]:
    """The callbacks ``output.keep_checkpoints`` asks for (none for ``all``)."""
    if experiment.output.keep_checkpoints != "best_trials":
        return []
    from ray.tune import Callback

    class _Pruner(CheckpointPruner, Callback):
        pass

    return [_Pruner(experiment.objective.metric, experiment.objective.direction,
                    experiment.output.BEST_TRIALS_KEPT)]
