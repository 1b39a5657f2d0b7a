"""The study's stopper as Ray Tune snapshots it: a reference to the running study's, not a copy.

Ray writes its stopper into every experiment snapshot (``runner_data``) by pickling it, and a
resume puts the unpickled object in place of the stopper the resumed run was given. tunefleet's
stoppers (the failure policy's tracker, ``search.budget``'s counter) are classes made at run
time, so each snapshot pickled their code (a sixth of the driver's time in a 400-trial study),
and a resumed study was stopped by a copy of the old run's objects, not by the ones its
callbacks keep up to date. Pickled through :func:`study_stopper`, the stopper is a name:
unpickled in a run that registered one for the same study, it is that run's stopper; elsewhere
(a snapshot read by another process that runs nothing) it stops nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["study_stopper"]

_LIVE: dict[str, Any] = {}  # study location -> the stopper of the run now driving it


def _live(key: str) -> Any:
    stopper = _LIVE.get(key)
    if stopper is None:
        from ray.tune.stopper import NoopStopper

        return NoopStopper()
    return stopper


def study_stopper(key: str, inner: Any) -> Any:
    """A Ray ``Stopper`` that asks ``inner`` and pickles as a reference to the stopper
    registered for ``key`` (the study's location) when it is unpickled; registers it."""
    from ray.tune.stopper import Stopper  # imported here: importing Ray is slow

    class _StudyStopper(Stopper):
        def __call__(self, trial_id: str, result: dict) -> bool:
            return bool(inner(trial_id, result))

        def stop_all(self) -> bool:
            return bool(inner.stop_all())

        def __reduce__(self) -> tuple:
            return (_live, (key,))

    stopper = _StudyStopper()
    _LIVE[key] = stopper
    return stopper
