"""KerasTuner hypermodels as tunefleet models: a user's ``build_model(hp)`` function or
``keras_tuner.HyperModel`` runs as written, with a real ``HyperParameters`` object whose values
come from the trial's configuration."""

from __future__ import annotations

import importlib
from typing import Any, Union

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
    """``module:name`` that :func:`resolve_hypermodel` turns back into ``obj`` when it is a
    function or HyperModel class in an importable module; otherwise a description."""
    target = getattr(obj, "build_fn", obj)
    if not callable(target) or (hasattr(target, "build") and not isinstance(target, type)):
        target = type(target)  # a HyperModel instance: its class, built with no arguments
    module, name = getattr(target, "__module__", None), getattr(target, "__qualname__", None)
    if module and name and module != "__main__" and "<" not in name:
        return f"{module}:{name}"
    return f"<python object {name or type(obj).__name__}>"


def overrides_fit(hypermodel: Any) -> bool:
    """Whether the hypermodel defines its own ``fit`` (and may tune fit arguments there)."""
    kt = _keras_tuner()
    return type(hypermodel).fit is not kt.HyperModel.fit


def active_values(hp: Any) -> dict[str, Any]:
    """The values of the hyperparameters active in ``hp`` after a build."""
    return {h.name: hp.values[h.name] for h in hp.space
            if hp.is_active(h) and h.name in hp.values}


def build_hypermodel(hypermodel: Any, values: dict[str, Any]) -> tuple[Any, Any]:
    """Build (and, as KerasTuner requires, compile) the model for ``values``.

    Returns ``(model, hp)``; ``hp`` is the real ``keras_tuner.HyperParameters`` the user's code
    saw, so it also records which hyperparameters were active.
    """
    kt = _keras_tuner()
    hp = kt.HyperParameters()
    hp.values.update(values)
    model = hypermodel.build(hp)
    if model is None or not hasattr(model, "fit"):
        raise HypermodelError(f"{hypermodel.name}.build(hp) returned {type(model).__name__}, not "
                              "a Keras model; return the model")
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise HypermodelError(f"{hypermodel.name}.build(hp) returned an uncompiled model; call "
                              "model.compile(optimizer=..., loss=..., metrics=[...]) before "
                              "returning it, as KerasTuner requires")
    return model, hp


class _NoTraining:
    """Stands in for the model inside ``HyperModel.fit`` while the search space is discovered:
    the user's ``fit`` runs (so the hyperparameters it declares are found) but nothing trains."""

    def __init__(self, model: Any):
        self._model = model

    def fit(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def probe_hypermodel(hypermodel: Any, values: dict[str, Any]) -> Any:
    """Build for ``values`` without training and return the ``HyperParameters`` it declared."""
    import keras

    model, hp = build_hypermodel(hypermodel, values)
    if overrides_fit(hypermodel):
        hypermodel.fit(hp, _NoTraining(model))
    del model
    keras.backend.clear_session()
    return hp
