"""The study's stopper as Ray Tune snapshots it: a reference to the running study's, not a copy.

Ray writes its stopper into every experiment snapshot (``runner_data``) by pickling it, and a
resume puts the unpickled object in place of the stopper the resumed run was given. tunefleet's
stoppers (the failure policy's tracker, ``search.budget``'s counter) are classes made at run
time, so each snapshot pickled their code (a sixth of the driver's time in a 400-trial study),
and a resumed study was stopped by a copy of the old run's objects, not by the ones its
callbacks keep up to date. Pickled through :func:`study_stopper`, the stopper is a reference to
the stopper of the study this process is running now (one at a time: a comparison runs its
studies in turn), whatever directory the study has moved to; unpickled where none runs, it
stops nothing. Through Ray Client the tuner runs in another process, which could not resolve
the reference, so there the stopper travels as itself, as Ray would send it.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["study_stopper"]

_CURRENT: Optional[Any] = None  # the stopper of the study this process runs now


def _live() -> Any:
    if _CURRENT is None:
        from ray.tune.stopper import NoopStopper

        return NoopStopper()
    return _CURRENT


def study_stopper(inner: Any) -> Any:
    """A Ray ``Stopper`` that asks ``inner`` and pickles as a reference to the stopper of the
    study this process runs when it is unpickled; it becomes that stopper. Through Ray Client,
    ``inner`` itself."""
    global _CURRENT
    from ray.tune.stopper import Stopper  # imported here: importing Ray is slow
    from ray.util.client import ray as ray_client

    if ray_client.is_connected():
        return inner

    class _StudyStopper(Stopper):
        def __call__(self, trial_id: str, result: dict) -> bool:
            return bool(inner(trial_id, result))

        def stop_all(self) -> bool:
            return bool(inner.stop_all())

        def __reduce__(self) -> tuple:
            return (_live, ())

    _CURRENT = _StudyStopper()
    return _CURRENT
