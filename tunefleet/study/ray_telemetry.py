"""Ray's usage telemetry of a study's callbacks, counted without tunefleet's own.

At the start of every run Ray Tune records which callbacks the user passed (its
``AIR_CALLBACKS`` usage tag, ray/air/_internal/usage.py). To tell its built-in integrations
apart it imports them, and with them MLflow and W&B wherever those are installed: 2.3 s of the
driver's start-up before any trial begins (measured on 2 cores with mlflow-skinny and wandb),
for every study. The callbacks tunefleet adds itself (progress, failure policy, checkpoints,
memory) are no user's choice, so they are left out of the count; the trackers a spec asks for
(``output.trackers``, Ray's own MLflow/W&B/TensorBoard callbacks) are counted as before. A
study with none of those records nothing, as a Ray Tune run without callbacks does.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

__all__ = ["users_callbacks_counted"]

_OWN = __name__.split(".")[0] + "."


def _users(callbacks: Any) -> list[Any]:
    from ray.tune.logger import LoggerCallback

    return [c for c in callbacks or [] if not type(c).__module__.startswith(_OWN)
            or isinstance(c, LoggerCallback)]


@contextmanager
def users_callbacks_counted() -> Iterator[None]:
    """During the block, Ray Tune's callback telemetry counts only callbacks that are not
    tunefleet's own, and the trackers (tunefleet's subclasses of Ray's logger callbacks)."""
    try:
        from ray.air._internal import usage
    except ImportError:  # pragma: no cover - another Ray layout: it counts as it does
        yield
        return
    tag = getattr(usage, "tag_callbacks", None)
    if tag is None:  # pragma: no cover - another Ray version
        yield
        return

    def tag_callbacks(callbacks: Any) -> Any:
        return tag(_users(callbacks))

    usage.tag_callbacks = tag_callbacks
    try:
        yield
    finally:
        usage.tag_callbacks = tag
