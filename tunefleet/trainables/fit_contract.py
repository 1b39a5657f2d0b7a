"""KerasTuner's contract for ``HyperModel.fit``: how it is called (``fit(hp, model, x, y,
epochs=..., validation_data=..., callbacks=[...], **search kwargs)``), what its return value
means (a History, a dict of metrics, or the objective as a float), and how an error in the
user's code is told back to them (their own file and line, never tunefleet's frames)."""

from __future__ import annotations

import copy
import inspect
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

from ..data import TrainingData

__all__ = ["fit_call", "copy_callbacks", "convert_result", "call_user", "UserCodeError",
           "EpochRecorder", "recorder_callback", "FIT_FORMS", "takes"]

FIT_FORMS = ("def fit(self, hp, model, x, y, **kwargs)",
             "def fit(self, hp, model, *args, **kwargs)")


# What the trial itself passes: the data, the epochs and the callbacks (the user's copied).
_OWN = ("x", "y", "epochs", "initial_epoch", "validation_data", "validation_split", "callbacks")


class UserCodeError(ValueError):
    """The user's hypermodel code raised (or cannot be called as KerasTuner calls it)."""


def copy_callbacks(callbacks: Any) -> list[Any]:
    """A fresh copy of the user's callbacks for one execution, as KerasTuner makes."""
    try:
        return list(copy.deepcopy(list(callbacks or [])))
    except Exception as exc:  # noqa: BLE001 - any object may refuse to be copied
        raise UserCodeError(f"callbacks must be deep-copyable (each execution gets its own "
                            f"copy, as in KerasTuner); copy.deepcopy failed: "
                            f"{type(exc).__name__}: {exc}") from None


def fit_call(data: TrainingData, fit_kwargs: Optional[dict[str, Any]], base: dict[str, Any],
             epochs: int, callbacks: list[Any], rows: Optional[int] = None,
             initial_epoch: int = 0) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` for ``hypermodel.fit(hp, model, *args, **kwargs)`` as KerasTuner
    passes them: x and y positionally, the rest by keyword. ``base``: tunefleet's own defaults
    (``verbose``, ``shuffle``, a spec's ``batch_size``), overridden by ``fit_kwargs`` (what the
    user gave ``search``, its callbacks already copied into ``callbacks``). ``rows``: only the
    first rows of each split (with ``sample_weight`` cut to match), for a quick call."""
    x, y, xv, yv = data.x_train, data.y_train, data.x_val, data.y_val
    user = {k: v for k, v in (fit_kwargs or {}).items() if k not in _OWN}
    if rows is not None:
        x, y, xv, yv = x[:rows], y[:rows], xv[:rows], yv[:rows]
        weights = user.get("sample_weight")
        if weights is not None and hasattr(weights, "__len__") and len(weights) == len(data.y_train):
            user["sample_weight"] = weights[:rows]
    kwargs = {**base, **user, "epochs": int(epochs), "validation_data": (xv, yv),
              "callbacks": callbacks}
    if initial_epoch:
        kwargs["initial_epoch"] = int(initial_epoch)
    return (x, y), kwargs


def convert_result(result: Any, objective: str) -> list[dict[str, float]]:
    """Per-epoch logs from what ``HyperModel.fit`` returned, read as KerasTuner reads it
    (``tuner_utils.convert_to_metrics_dict``): a History gives its epochs, a dict one set of
    metrics, a number the objective's value; a list (several runs) their average."""
    import keras
    import numpy as np

    if isinstance(result, keras.callbacks.History):
        history = result.history or {}
        length = max((len(v) for v in history.values()), default=0)
        return [{k: float(v[i]) for k, v in history.items() if i < len(v)}
                for i in range(length)]
    if isinstance(result, (list, tuple)) and result:
        import keras_tuner as kt
        from keras_tuner.src.engine import tuner_utils  # not exported: 1.4.8's location

        merged = tuner_utils.convert_to_metrics_dict(list(result), kt.Objective(objective, "min"))
        return [{k: float(v) for k, v in merged.items()}]
    if isinstance(result, (int, float, np.floating, np.integer)) and not isinstance(result, bool):
        return [{objective: float(result)}]
    if isinstance(result, dict):
        return [{k: float(v) for k, v in result.items() if _numeric(v)}]
    return []


def _numeric(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


class EpochRecorder:
    """Collects ``on_epoch_end`` logs. Made a Keras callback by :func:`recorder_callback`;
    holds nothing Keras sets (``set_model``, ``on_train_begin``): hand-written loops call
    only ``on_epoch_end``."""

    def __init__(self, on_epoch: Optional[Callable[[int, dict[str, Any]], None]] = None):
        self.logs: list[dict[str, Any]] = []
        self.on_epoch = on_epoch

    def end(self, epoch: int, logs: Optional[dict[str, Any]]) -> None:
        entry = {k: v for k, v in (logs or {}).items() if _numeric(v)}
        self.logs.append(entry)
        if self.on_epoch is not None:
            self.on_epoch(epoch, entry)


def recorder_callback(recorder: EpochRecorder,
                      begin: Optional[Callable[[int], None]] = None) -> Any:
    """A Keras callback that passes each epoch's logs to ``recorder`` (and its start to
    ``begin``)."""
    import keras

    class _Recorder(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if begin is not None:
                begin(epoch)

        def on_epoch_end(self, epoch, logs=None):
            recorder.end(epoch, logs)

    return _Recorder()


def _source_file(obj: Any) -> Optional[str]:
    target = getattr(obj, "build_fn", None) or type(obj)
    try:
        return str(Path(inspect.getsourcefile(target) or "").resolve())
    except (TypeError, OSError):
        return None


def _user_line(exc: BaseException, hypermodel: Any) -> str:
    """``file:line: source`` of the innermost frame in the hypermodel's own file (else the
    innermost frame outside tunefleet and installed packages)."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = _source_file(hypermodel)
    package = str(Path(__file__).resolve().parents[1])

    def usable(frame: traceback.FrameSummary) -> bool:
        name = str(Path(frame.filename).resolve()) if frame.filename else ""
        return not (name.startswith(package) or "site-packages" in name
                    or "/lib/python" in name or name.startswith("<"))

    chosen = ([f for f in frames if own and str(Path(f.filename).resolve()) == own]
              or [f for f in frames if usable(f)])
    if not chosen:
        return ""
    frame = chosen[-1]
    return f" at {frame.filename}:{frame.lineno}: {(frame.line or '').strip()}"


def _signature_error(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Optional[str]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        return f"{exc} (its signature: {signature})"
    return None


def takes(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Whether ``fn`` can be called with these arguments (by its signature)."""
    return _signature_error(fn, args, kwargs) is None


def call_user(hypermodel: Any, method: str, hp: Any, *args: Any, **kwargs: Any) -> Any:
    """``hypermodel.<method>(hp, *args, **kwargs)``; anything the user's code raises becomes a
    :class:`UserCodeError` naming the hypermodel, the hyperparameter values it saw and the
    user's own line."""
    from .hypermodel import hypermodel_reference

    fn = getattr(hypermodel, method)
    build_fn = getattr(hypermodel, "build_fn", None) if method == "build" else None
    called = "build_model(hp)" if build_fn is not None else f"{method}()"
    ref = hypermodel_reference(hypermodel)
    wrong = _signature_error(build_fn or fn, (hp, *args), kwargs)
    if wrong is not None:
        shown = ", ".join([*("hp", "model", "x", "y")[:len(args) + 1],
                           *(f"{k}=..." for k in kwargs)])
        fix = ("write it as KerasTuner calls it: " + " or ".join(FIT_FORMS) if method == "fit"
               else "build_model must take one argument, hp")
        raise UserCodeError(f"hypermodel {ref}: {called} cannot be called as KerasTuner calls "
                            f"it, {method}({shown}): {wrong}; {fix}")
    try:
        return fn(hp, *args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the user's code may fail in any way
        values = dict(getattr(hp, "values", {}))
        raise UserCodeError(f"hypermodel {ref}: {called} raised {type(exc).__name__}: {exc}"
                            f"{_user_line(exc, hypermodel)} (hyperparameters: {values})") from None
