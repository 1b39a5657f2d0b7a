"""KerasTuner's ``hyperparameters=``, ``tune_new_entries`` and ``allow_new_entries``: a
hypermodel wrapper that declares the given hyperparameters before the user's ``build`` runs, so
they take precedence over the ranges in the user's code, as KerasTuner's oracle makes them."""

from __future__ import annotations

from typing import Any

import keras_tuner as kt

__all__ = ["DeclaredHyperModel", "with_declared"]


class DeclaredHyperModel(kt.HyperModel):
    """``hypermodel`` with ``declared`` registered first in every ``HyperParameters`` it gets.

    ``tune_new_entries=False``: the hyperparameters the code declares beyond ``declared`` keep
    their defaults (recorded as ``Fixed``, so the search never varies them).
    ``allow_new_entries=False``: declaring one is an error.
    """

    def __init__(self, hypermodel: Any, declared: Any, tune_new_entries: bool = True,
                 allow_new_entries: bool = True):
        super().__init__(name=getattr(hypermodel, "name", None),
                         tunable=getattr(hypermodel, "tunable", True))
        self.hypermodel = hypermodel
        self.declared = declared if declared is not None else kt.HyperParameters()
        self.tune_new_entries = tune_new_entries
        self.allow_new_entries = allow_new_entries

    def _new(self, hp: Any) -> list[Any]:
        return [p for p in hp.space if not self.declared._exists(p.name, p.conditions)]

    def _declare(self, hp: Any) -> None:
        if not self.tune_new_entries:  # values for undeclared names never reach the build
            names = {p.name for p in self.declared.space}
            for name in [n for n in hp.values if n not in names]:
                del hp.values[name]
        hp.merge(self.declared, overwrite=False)

    def _settle(self, hp: Any) -> None:
        new = self._new(hp)
        if new and not self.allow_new_entries:
            raise RuntimeError(f"allow_new_entries is False, but the hypermodel declares "
                               f"{sorted(p.name for p in new)}, which hyperparameters= does "
                               "not: declare them there, or allow_new_entries=True")
        if new and not self.tune_new_entries:
            # KerasTuner keeps such entries at their defaults; recording them as Fixed tells
            # the search not to vary them. HyperParameters has no public way to replace one.
            from keras_tuner.engine.hyperparameters import Fixed

            for p in new:
                fixed = Fixed(p.name, p.default, conditions=p.conditions)
                hp._space[hp._space.index(p)] = fixed
                hp._hps[p.name] = [fixed if q is p else q for q in hp._hps[p.name]]

    def build(self, hp: Any) -> Any:
        self._declare(hp)
        model = self.hypermodel.build(hp)
        self._settle(hp)
        return model

    def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
        self._declare(hp)
        result = self.hypermodel.fit(hp, model, *args, **kwargs)
        self._settle(hp)
        return result


def with_declared(hypermodel: Any, declared: Any, tune_new_entries: bool,
                  allow_new_entries: bool) -> Any:
    """``hypermodel`` itself when nothing is declared or restricted, else wrapped."""
    if declared is None and tune_new_entries and allow_new_entries:
        return hypermodel
    if declared is not None and not isinstance(declared, kt.HyperParameters):
        from ..spec import SpecError

        raise SpecError("hyperparameters", "must be a keras_tuner.HyperParameters",
                        type(declared).__name__, fix="hp = kt.HyperParameters(); "
                        "hp.Fixed('learning_rate', 1e-3); RandomSearch(..., hyperparameters=hp)")
    return DeclaredHyperModel(hypermodel, declared, tune_new_entries, allow_new_entries)
