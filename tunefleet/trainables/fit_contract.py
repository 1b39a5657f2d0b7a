"""KerasTuner's contract for ``HyperModel.fit``: how it is called (``fit(hp, model, x, y,
epochs=..., validation_data=..., callbacks=[...], **search kwargs)``), what its return value
means (a History, a dict of metrics, or the objective as a float), and how an error in the
user's code is told back to them (their own file and line, never tunefleet's frames)."""

from __future__ import annotations

import copy
import inspect
import os
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

from ..data import TrainingData

__all__ = ["fit_call", "copy_callbacks", "convert_result", "merge_result", "call_user",
           "UserCodeError", "EpochRecorder", "recorder_callback", "FIT_FORMS", "takes",
           "failed_trial_error", "fatal_error", "inner_hypermodel"]

FIT_FORMS = ("def fit(self, hp, model, x, y, **kwargs)",
             "def fit(self, hp, model, *args, **kwargs)")


# What the trial itself passes: the data, the epochs and the callbacks (the user's copied).
_OWN = ("x", "y", "epochs", "initial_epoch", "validation_data", "validation_split", "callbacks")


class UserCodeError(ValueError):
    """The user's hypermodel code raised (or cannot be called as KerasTuner calls it)."""


def _kt_error(name: str) -> tuple[type[BaseException], ...]:
    try:
        from keras_tuner import errors
    except ImportError:  # pragma: no cover - keras-tuner is a dependency
        return ()
    return (getattr(errors, name),)


def failed_trial_error() -> tuple[type[BaseException], ...]:
    """``keras_tuner.errors.FailedTrialError``: the user marks a configuration as failed
    (KerasTuner records the trial as FAILED and does not retry it)."""
    return _kt_error("FailedTrialError")


def fatal_error() -> tuple[type[BaseException], ...]:
    """``keras_tuner.errors.FatalError`` (and its subclasses): the search must stop."""
    return _kt_error("FatalError")


def inner_hypermodel(hypermodel: Any) -> Any:
    """The user's own hypermodel inside tunefleet's wrappers (``DeclaredHyperModel``)."""
    package = __name__.split(".")[0] + "."
    seen = 0
    while (getattr(type(hypermodel), "__module__", "") or "").startswith(package) \
            and getattr(hypermodel, "hypermodel", None) is not None and seen < 8:
        hypermodel, seen = hypermodel.hypermodel, seen + 1
    return hypermodel


def copy_callbacks(callbacks: Any, trial_id: Optional[str] = None,
                   execution: int = 0) -> list[Any]:
    """A fresh copy of the user's callbacks for one execution, as KerasTuner makes; a
    ``TensorBoard`` callback writes into ``log_dir/<trial_id>/execution<k>``, as KerasTuner
    points it (``Tuner._configure_tensorboard_dir``), so trials do not share one log; without
    a trial (the driver's discovery and check) it is left out."""
    try:
        copies = list(copy.deepcopy(list(callbacks or [])))
    except Exception as exc:  # noqa: BLE001 - any object may refuse to be copied
        raise UserCodeError(f"callbacks must be deep-copyable (each execution gets its own "
                            f"copy, as in KerasTuner); copy.deepcopy failed: "
                            f"{type(exc).__name__}: {exc}") from None
    import keras

    if trial_id is None:  # the driver's quick calls: nothing of theirs belongs in a log
        return [cb for cb in copies if not isinstance(cb, keras.callbacks.TensorBoard)]
    for cb in copies:
        if isinstance(cb, keras.callbacks.TensorBoard):
            cb.log_dir = os.path.join(str(cb.log_dir), trial_id, f"execution{execution}")
    return copies


def fit_call(data: TrainingData, fit_kwargs: Optional[dict[str, Any]], base: dict[str, Any],
             epochs: int, callbacks: list[Any], rows: Optional[int] = None,
             initial_epoch: int = 0) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` for ``hypermodel.fit(hp, model, *args, **kwargs)`` as KerasTuner
    passes them: x and y positionally, the rest by keyword. ``base``: tunefleet's own defaults
    (``verbose``, ``shuffle``, a spec's ``batch_size``), overridden by ``fit_kwargs`` (what the
    user gave ``search``, its callbacks already copied into ``callbacks``). ``rows``: only the
    first rows of each split (with ``sample_weight`` cut to match), for a quick call."""
    user = {k: v for k, v in (fit_kwargs or {}).items() if k not in _OWN}
    if rows is None:
        x, y, xv, yv = data.x_train, data.y_train, data.x_val, data.y_val
    else:  # cut before scaling: compact images become model inputs for these rows only
        x, y = data.model_inputs(data.stored_x_train[:rows]), data.y_train[:rows]
        xv, yv = data.model_inputs(data.stored_x_val[:rows]), data.y_val[:rows]
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


def merge_result(logs: list[dict[str, Any]], result: Any, objective: str) -> list[dict[str, Any]]:
    """The epochs a trial scores, as KerasTuner scores them: what ``fit`` returned counts
    (``on_epoch_end`` reports are intermediate). A float or dict is merged into the last
    epoch the callbacks saw (it describes the model trained so far); a History repeats those
    epochs, so with any epochs seen it adds nothing; without them it is the epochs."""
    import keras

    returned = convert_result(result, objective)
    if not logs:
        return returned
    if not returned or isinstance(result, keras.callbacks.History):
        return [dict(e) for e in logs]
    return [*(dict(e) for e in logs[:-1]), {**logs[-1], **returned[-1]}]


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
    obj = inner_hypermodel(obj)
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

    if own is not None and own.startswith(package):
        own = None  # a hypermodel tunefleet defines: the user's line is elsewhere
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
    :class:`UserCodeError` naming the hypermodel (the user's own, inside tunefleet's wrappers),
    the hyperparameter values it saw and the user's own line. ``FailedTrialError`` passes
    through unchanged: it marks the configuration as failed, not the code as wrong."""
    from .hypermodel import hypermodel_reference

    fn = getattr(hypermodel, method)
    inner = inner_hypermodel(hypermodel)
    build_fn = getattr(inner, "build_fn", None) if method == "build" else None
    called = "build_model(hp)" if build_fn is not None else f"{method}()"
    wrong = _signature_error(build_fn or getattr(inner, method, fn), (hp, *args), kwargs)
    if wrong is not None:
        shown = ", ".join([*("hp", "model", "x", "y")[:len(args) + 1],
                           *(f"{k}=..." for k in kwargs)])
        fix = ("write it as KerasTuner calls it: " + " or ".join(FIT_FORMS) if method == "fit"
               else "build_model must take one argument, hp")
        raise UserCodeError(f"hypermodel {hypermodel_reference(inner)}: {called} cannot be "
                            f"called as KerasTuner calls it, {method}({shown}): {wrong}; {fix}")
    try:
        return fn(hp, *args, **kwargs)
    except failed_trial_error():
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code may fail in any way
        values = dict(getattr(hp, "values", {}))
        # Named only here: finding a hypermodel instance's module scans every module.
        ref = hypermodel_reference(inner)
        raise UserCodeError(f"hypermodel {ref}: {called} raised {type(exc).__name__}: {exc}"
                            f"{_user_line(exc, hypermodel)} (hyperparameters: {values})") from None
