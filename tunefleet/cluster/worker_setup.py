"""Run by Ray in each worker process of a local study, before any task: the driver's current
directory is importable in trials, but *after* the installed packages, so a user's
``module:function`` there is found while a ``yaml.py`` or ``keras.py`` beside it shadows nothing."""

from __future__ import annotations

import importlib.machinery
import os
import sys
from typing import Any, Optional, Sequence

__all__ = ["USER_PATH_VAR", "SETUP_HOOK", "append_user_path"]

# The driver's current directory, set in the runtime_env's env_vars (cluster/connection.py).
USER_PATH_VAR = "TUNEFLEET_USER_PATH"
# Ray's runtime_env ``worker_process_setup_hook``: a dotted path each worker imports and calls.
SETUP_HOOK = "tunefleet.cluster.worker_setup.append_user_path"


class _InstalledFirst:
    """A top-level import looks in every ``sys.path`` entry but ``late`` first. Ray itself
    puts the driver's directory at the *front* of a worker's sys.path (its job config's
    ``py_driver_sys_path``) when the worker's first task starts; this keeps it last in effect."""

    def __init__(self, late: str):
        self.late = late

    def find_spec(self, name: str, path: Optional[Sequence[str]] = None,
                  target: Any = None) -> Any:
        if path is not None:  # a submodule: its package's own path decides
            return None
        early = [p for p in sys.path if os.path.abspath(p or ".") != self.late]
        return importlib.machinery.PathFinder.find_spec(name, early, target)


def append_user_path() -> None:
    """Append ``$TUNEFLEET_USER_PATH`` to ``sys.path`` and rank it after every other entry
    (on PYTHONPATH it would come before the installed packages)."""
    path = os.environ.get(USER_PATH_VAR)
    if not path:
        return
    path = os.path.abspath(path)
    if path not in sys.path:
        sys.path.append(path)
    if not any(isinstance(f, _InstalledFirst) for f in sys.meta_path):
        at = sys.meta_path.index(importlib.machinery.PathFinder) \
            if importlib.machinery.PathFinder in sys.meta_path else len(sys.meta_path)
        sys.meta_path.insert(at, _InstalledFirst(path))
