"""``output.num_to_keep``: each trial keeps its ``num_to_keep`` best checkpoints and its latest,
the others are deleted, as Ray Tune's ``CheckpointConfig(num_to_keep)`` does, but without its
cost on long studies.

Ray deletes a superseded checkpoint the moment a trial registers a new one, and so that its
experiment snapshot (``experiment_state-*.json``, what a resume reads) never names a deleted
checkpoint as a trial's latest, it then rewrites and copies that snapshot at once, whatever its
snapshot period says. The snapshot holds every trial of the study, so a study of n short trials
rewrote it about 2n times: the driver spent half its time there at 400 trials, and trials per
minute fell as the study grew (``scripts/bench_overhead.py --trials 400``).

Here Ray keeps every checkpoint (``num_to_keep=None``: it never forces a snapshot) and this
callback deletes the superseded ones when Ray writes its next periodic snapshot (every 10 s or
more: Ray's ``checkpoint_period``, at most 5% of the time), except those the last
:data:`NAMED_SNAPSHOTS` snapshots named as a trial's latest (:data:`NAMED_SNAPSHOTS_REMOTE` at a
URI, where Ray skips uploading a snapshot while the previous upload runs), so that the snapshot
on storage can restore every trial unless its uploads fall further behind than that. A
checkpoint is kept while it is among the trial's ``num_to_keep`` best by the objective (Ray's
ordering of its checkpoints: NaN and missing scores last) or is its latest. Once the study's
``Tuner.fit`` has returned (Ray has then written and uploaded its final snapshot), only those
rules remain (:func:`finish`); a study that ended in an error keeps the protected ones.

Ray's experiment state may still list checkpoints deleted since its last snapshot (tunefleet's
reports read the trial directories, not that list).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Optional

__all__ = ["CheckpointKeeper", "keeper_callbacks", "finish"]

logger = logging.getLogger(__name__)

NAMED_SNAPSHOTS = 2  # a trial's latest checkpoint in each of its last N snapshots is kept
NAMED_SNAPSHOTS_REMOTE = 6  # the same for a study at a URI (slower uploads)
_RUNNING: list["CheckpointKeeper"] = []  # the keepers of the study being fit (finish())


def _path(result: Any) -> Optional[str]:
    checkpoint = getattr(result, "checkpoint", None)
    return getattr(checkpoint, "path", None)


class CheckpointKeeper:
    """Deletes checkpoints outside each trial's ``keep`` best and its latest once no recent
    experiment snapshot names them (see the module's docstring); a Ray Tune callback as
    :func:`keeper_callbacks` makes it."""

    def __init__(self, keep: int, named: int = NAMED_SNAPSHOTS):
        self.keep, self.named = int(keep), int(named)
        self._pending: dict[str, Any] = {}  # trial id -> trial that may hold superseded ones
        self._named: dict[str, deque] = {}  # trial id -> its latest in the last snapshots
        self.deleted = 0

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any,
                      **info: Any) -> None:
        # Ray calls this before it registers the checkpoint: the trial's latest is still the
        # one its last snapshot named (if no other was registered since).
        if trial.trial_id not in self._pending:
            manager = _manager(trial)
            latest = _path(manager.latest_checkpoint_result) if manager is not None else None
            if latest:
                self._named.setdefault(trial.trial_id, deque(maxlen=self.named)).append(latest)
        self._pending[trial.trial_id] = trial

    def get_state(self) -> Optional[dict]:
        """Ray calls this as it writes each experiment snapshot (with the trials' states
        already written): the time to delete what earlier snapshots no longer name."""
        self._sweep(final=False)
        return None  # nothing to restore

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        # Also when the study ended in an error, with no final snapshot: keep what is named.
        self._sweep(final=False)

    def finish(self) -> None:
        """Delete every superseded checkpoint: for after ``Tuner.fit`` has returned, when
        Ray's final snapshot (which names only the trials' latest) is on storage."""
        self._sweep(final=True)

    def _sweep(self, final: bool) -> None:
        for trial_id, trial in list(self._pending.items()):
            manager = _manager(trial)
            if manager is None:
                del self._pending[trial_id]
                continue
            results = list(manager._checkpoint_results)  # ascending by score (Ray's order)
            latest = _path(manager.latest_checkpoint_result)
            kept = {_path(r) for r in results[-self.keep:]} | {latest}
            named = self._named.setdefault(trial_id, deque(maxlen=self.named))
            protected = set() if final else set(named)
            gone = [r for r in results if _path(r) not in kept | protected]
            for result in gone:
                self._delete(result.checkpoint)
            if gone:
                manager._checkpoint_results = [r for r in results if r not in gone]
                trial.run_metadata.invalidate_cache()  # the next snapshot lists what is left
            named.append(latest)
            if all(_path(r) in kept for r in manager._checkpoint_results):
                del self._pending[trial_id]

    def _delete(self, checkpoint: Any) -> None:
        try:
            checkpoint.filesystem.delete_dir(checkpoint.path)
            self.deleted += 1
        except FileNotFoundError:
            pass  # already gone (output.keep_checkpoints: best_trials deletes whole trials')
        except OSError as exc:  # a URI that refuses: the checkpoint stays, the study goes on
            logger.warning("could not delete superseded checkpoint %s: %s", checkpoint.path, exc)


def _manager(trial: Any) -> Any:
    return getattr(getattr(trial, "run_metadata", None), "checkpoint_manager", None)


def keeper_callbacks(keep: int, remote: bool = False) -> list[Any]:
    """The Ray Tune callback that keeps ``keep`` best checkpoints and the latest per trial
    (``remote``: the study is at a URI); :func:`finish` ends its work after ``Tuner.fit``."""
    from ray.tune import Callback  # imported here: importing Ray is slow

    class _Keeper(CheckpointKeeper, Callback):
        pass

    keeper = _Keeper(keep, NAMED_SNAPSHOTS_REMOTE if remote else NAMED_SNAPSHOTS)
    _RUNNING[:] = [keeper]  # one study at a time per driver (a comparison runs them in turn)
    return [keeper]


def finish(fitted: bool) -> None:
    """After the study's ``Tuner.fit``: if it returned (``fitted``), delete every superseded
    checkpoint; either way, forget the study's keeper."""
    keepers, _RUNNING[:] = list(_RUNNING), []
    if fitted:
        for keeper in keepers:
            keeper.finish()
