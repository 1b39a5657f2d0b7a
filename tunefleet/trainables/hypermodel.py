"""KerasTuner hypermodels as tunefleet models: a user's ``build_model(hp)`` function or
``keras_tuner.HyperModel`` runs as written, with a real ``HyperParameters`` object whose values
come from the trial's configuration."""

from __future__ import annotations

import importlib
from typing import Any, Optional, Union

__all__ = ["resolve_hypermodel", "build_hypermodel", "hypermodel_reference", "HypermodelError",
           "overrides_fit", "active_values", "probe_hypermodel"]


class HypermodelError(ValueError):
    """The hypermodel cannot be used as it is (the message says why and what to change)."""


def _keras_tuner() -> Any:
    try:
        import keras_tuner
    except ImportError as exc:  # pragma: no cover - keras-tuner is a dependency
        raise ImportError("model.hypermodel needs KerasTuner: pip install keras-tuner") from exc
    return keras_tuner


def _function_hypermodel(fn: Any) -> Any:
    _keras_tuner()  # the install hint when KerasTuner is missing
    from keras_tuner import HyperModel

    class FunctionHyperModel(HyperModel):
        """Wraps ``build_model(hp)`` the way KerasTuner's tuners do."""

        def __init__(self, build_fn):
            super().__init__(name=getattr(build_fn, "__name__", "build_model"))
            self.build_fn = build_fn

        def build(self, hp):
            return self.build_fn(hp)

    return FunctionHyperModel(fn)


def resolve_hypermodel(ref: Union[str, Any]) -> Any:
    """A ``keras_tuner.HyperModel`` from ``"package.module:build_model"``, a HyperModel class or
    instance, or a ``build_model(hp)`` function."""
    kt = _keras_tuner()
    obj = ref
    if isinstance(ref, str):
        module_name, _, attr = ref.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # the user's module may fail in any way while importing
            # Chained, so the user's own traceback stays reachable below this message.
            raise HypermodelError(f"cannot import module '{module_name}' ({type(exc).__name__}: "
                                  f"{exc}); check the name and that it is on PYTHONPATH") from exc
        obj = getattr(module, attr, None)
        if obj is None:
            raise HypermodelError(f"module '{module_name}' has no attribute '{attr}'")
    if isinstance(obj, kt.HyperModel):
        return obj
    if isinstance(obj, type) and issubclass(obj, kt.HyperModel):
        try:
            return obj()
        except TypeError as exc:
            raise HypermodelError(f"HyperModel class {obj.__name__} needs constructor arguments "
                                  f"({exc}); point model.hypermodel at an instance or a "
                                  "function instead") from None
    if callable(obj):
        return _function_hypermodel(obj)
    raise HypermodelError(f"{ref!r} is neither a build_model(hp) function nor a "
                          "keras_tuner.HyperModel")


def hypermodel_reference(obj: Any) -> str:
    """``module:name`` that :func:`resolve_hypermodel` turns back into ``obj``: a function or
    HyperModel class in an importable module, or a HyperModel instance that is a module's
    attribute (its constructor arguments kept); otherwise a description."""
    target = getattr(obj, "build_fn", obj)
    if not callable(target) or (hasattr(target, "build") and not isinstance(target, type)):
        found = _instance_attribute(target)
        if found is not None:
            return found
        target = type(target)  # an instance no module holds: its class, built with no arguments
    module, name = getattr(target, "__module__", None), getattr(target, "__qualname__", None)
    if module and name and module != "__main__" and "<" not in name:
        return f"{module}:{name}"
    return f"<python object {name or type(obj).__name__}>"


def _instance_attribute(obj: Any) -> Optional[str]:
    """``module:attr`` of a module-level variable holding exactly ``obj`` (its class's module
    first, then every imported module but ``__main__``, which trials cannot import)."""
    import sys

    first = getattr(type(obj), "__module__", None)
    names = [first] if first in sys.modules else []
    names += [n for n in list(sys.modules) if n != first]
    for module_name in names:
        module = sys.modules.get(module_name)
        if module is None or module_name == "__main__" or module_name.startswith("_"):
            continue
        try:
            attrs = vars(module)
        except TypeError:
            continue
        for attr, value in list(attrs.items()):
            if value is obj and not attr.startswith("_"):
                return f"{module_name}:{attr}"
    return None


def overrides_fit(hypermodel: Any) -> bool:
    """Whether the hypermodel defines its own ``fit`` (and may tune fit arguments there)."""
    kt = _keras_tuner()
    return type(hypermodel).fit is not kt.HyperModel.fit


def active_values(hp: Any) -> dict[str, Any]:
    """The values of the hyperparameters active in ``hp`` after a build."""
    return {h.name: hp.values[h.name] for h in hp.space
            if hp.is_active(h) and h.name in hp.values}


def build_hypermodel(hypermodel: Any, values: dict[str, Any],
                     checked: bool = False, hp: Any = None) -> tuple[Any, Any]:
    """Build (and, as KerasTuner requires, compile) the model for ``values``.

    Returns ``(model, hp)``; ``hp`` is the real ``keras_tuner.HyperParameters`` the user's code
    saw, so it also records which hyperparameters were active. A hypermodel with its own
    ``fit`` may return an uncompiled model (a custom training loop makes its own optimizer).
    ``checked``: errors in the user's code become :class:`HypermodelError`s naming their line
    (in the driver; a trial keeps the original exception for Ray's retries and memory checks).
    ``hp``: the ``HyperParameters`` to build with (kept by the caller if the build raises).
    """
    from .fit_contract import UserCodeError, call_user

    kt = _keras_tuner()
    hp = kt.HyperParameters() if hp is None else hp
    hp.values.update(values)
    try:
        model = call_user(hypermodel, "build", hp) if checked else hypermodel.build(hp)
    except UserCodeError as exc:
        raise HypermodelError(str(exc)) from None
    if model is None or not hasattr(model, "fit"):
        raise HypermodelError(f"{hypermodel.name}.build(hp) returned {type(model).__name__}, not "
                              "a Keras model; return the model")
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        if not overrides_fit(hypermodel):
            raise HypermodelError(f"{hypermodel.name}.build(hp) returned an uncompiled model; "
                                  "call model.compile(optimizer=..., loss=..., metrics=[...]) "
                                  "before returning it, as KerasTuner requires (or train it in "
                                  "your own HyperModel.fit)")
        if not hasattr(model, "optimizer"):
            object.__setattr__(model, "optimizer", None)  # checkpoints read it
    return model, hp


def probe_hypermodel(hypermodel: Any, values: dict[str, Any], data: Any = None,
                     fit_kwargs: Optional[dict[str, Any]] = None,
                     base: Optional[dict[str, Any]] = None, rows: int = 8) -> Any:
    """Build for ``values`` and, for a hypermodel with its own ``fit``, call it as KerasTuner
    does on ``rows`` rows of ``data`` with ``model.fit`` doing nothing (a custom loop runs on
    those rows), so hyperparameters declared in ``fit`` are found too (without ``data``, only
    a ``fit`` that can be called without it, ``fit(hp, model, *args, **kwargs)``). Returns the
    ``HyperParameters`` it declared; errors in the user's code are :class:`HypermodelError`s.
    A configuration the user's code marks failed (``keras_tuner.errors.FailedTrialError``) is
    part of the space: :class:`FailedConfiguration`, holding what it declared until then."""
    import keras

    from ..search_spaces.hypermodel_space import FailedConfiguration
    from .fit_contract import (UserCodeError, call_user, copy_callbacks, failed_trial_error,
                               fit_call, takes)

    hp = _keras_tuner().HyperParameters()
    model = None
    try:
        model, hp = build_hypermodel(hypermodel, values, checked=True, hp=hp)
        if overrides_fit(hypermodel):
            history = keras.callbacks.History()
            history.history = {}
            object.__setattr__(model, "fit", lambda *a, **k: history)  # no training here
            if data is not None:
                callbacks = copy_callbacks((fit_kwargs or {}).get("callbacks"))
                args, kwargs = fit_call(data, fit_kwargs, base or {"verbose": 0}, 1, callbacks,
                                        rows=rows)
                call_user(hypermodel, "fit", hp, model, *args, **kwargs)
            elif takes(hypermodel.fit, hp, model):  # no data: only a fit(hp, model, *args)
                call_user(hypermodel, "fit", hp, model)
    except UserCodeError as exc:
        raise HypermodelError(str(exc)) from None
    except failed_trial_error() as exc:
        raise FailedConfiguration(hp, f"{type(exc).__name__}: {exc}") from None
    finally:
        del model
        keras.backend.clear_session(free_memory=False)  # called in a loop: no gc.collect() each time
    return hp
