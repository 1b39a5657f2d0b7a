"""Compiled models a warm trial process keeps between trials of the same architecture.

A reused trial process (``resources.reuse_processes``, on by default on CPU) runs one trial
after another. Building, compiling and, above all, tracing a model's train and test functions
is most of a short trial's time (measured: 1.3-2 s of a 2-epoch MLP trial whose later epochs take
0.1 s). When the next trial in the process has the same architecture (same builder, builder
parameters, data shapes and compile settings: everything in the configuration but the learning
rate, batch size and epochs), it trains the compiled model the previous one left, after taking
every variable — weights, the random layers' seed state, the optimizer's slots, step count and
learning rate — from a fresh build of its own configuration and seed. Building and compiling a
model is cheap; tracing is what is saved. The trial then trains exactly as on a fresh model.

Kept only for builder models on the TensorFlow backend, on one device, in full precision; a
model whose trial raised is never kept. A layer of your own that draws random numbers without
a seed generator of its own (``keras.random.*(seed=None)``) uses Keras' global one, whose
state the traced graph holds: such a model continues that state rather than starting from the
trial's seed; ``resources.reuse_processes: false`` builds every trial anew.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import replace
from typing import Any, Optional

from ..data import DataInfo
from ..spec import Experiment

__all__ = ["WarmModels", "MAX_KEPT"]

# Models kept per process (over all architectures; a trial of N executions keeps N), least
# recently used architecture dropped first: a search over a few widths or depths keeps each
# warm, and memory stays bounded with many executions per trial.
MAX_KEPT = 4
# Train settings a trial may change without touching the compiled graph (the learning rate is
# an optimizer variable; batch sizes share the traced function after one retrace).
_RUNTIME_FIELDS = {"learning_rate", "batch_size", "epochs", "shuffle", "early_stopping",
                   "reduce_lr_on_plateau", "lr_schedule", "trial_timeout_s"}
_KEPT: OrderedDict[str, list[Any]] = OrderedDict()


class WarmModels:
    """What one trial trains, for the process's kept models: :meth:`adopt` when its models
    are built, :meth:`keep` when it ends without an error (Ray ending a stopped trial, inside
    ``tune.report``, is no error)."""

    def __init__(self) -> None:
        self.key: Optional[str] = None
        self.trials: list[Any] = []
        self.reused = False

    def adopt(self, experiment: Experiment, info: DataInfo, trials: list[Any],
              hypermodel: Any = None, strategy: Any = None) -> list[Any]:
        """``trials`` (freshly built and compiled ``TrialModel``-s) with their models swapped
        for kept compiled ones of the same architecture holding the fresh models' state;
        unchanged when none is kept, the trial cannot keep one (see the module's docstring)
        or the kept ones do not match variable for variable."""
        self.key, self.trials = _key(experiment, info, trials[0].settings, hypermodel,
                                     strategy), trials
        kept = _KEPT.pop(self.key, None) if self.key is not None else None
        if kept is None or len(kept) != len(trials):
            return trials
        if not all(_transfer(fresh.model, warm) for fresh, warm in zip(trials, kept, strict=True)):
            return trials
        self.reused = True
        self.trials = [replace(t, model=warm, fit=warm.fit) for t, warm in zip(trials, kept, strict=True)]
        return self.trials

    def keep(self) -> None:
        """Keep the trial's compiled models for the next trial in this process."""
        if self.key is None or not self.trials:
            return
        _KEPT[self.key] = [t.model for t in self.trials]
        _KEPT.move_to_end(self.key)
        while sum(len(models) for models in _KEPT.values()) > MAX_KEPT and len(_KEPT) > 1:
            _KEPT.popitem(last=False)
        if sum(len(models) for models in _KEPT.values()) > MAX_KEPT:
            _KEPT.clear()  # one trial with more executions than MAX_KEPT: keep none
        self.trials = []


def _key(experiment: Experiment, info: DataInfo, settings: Any, hypermodel: Any,
         strategy: Any) -> Optional[str]:
    """The architecture and compile settings of a trial's models; None when not kept."""
    import keras

    train = settings.train
    if (not experiment.resources.reuse or hypermodel is not None or strategy is not None
            or train.mixed_precision is not None or train.distribute is not None
            or keras.backend.backend() != "tensorflow"):
        return None
    return json.dumps({
        "builder": experiment.model.builder, "params": settings.model_params,
        "info": [info.name, info.task, list(info.input_shape), info.num_classes],
        "train": train.model_dump(mode="json", exclude=_RUNTIME_FIELDS),
    }, sort_keys=True, default=repr)


def _transfer(fresh: Any, warm: Any) -> bool:
    """Assign every variable of ``fresh`` (model and optimizer, the latter built now as its
    first step would) to ``warm``; False, and nothing assigned, when they do not match."""
    if getattr(warm, "optimizer", None) is None or not warm.optimizer.built:
        return False
    fresh.optimizer.build(fresh.trainable_variables)
    if (len(warm.variables) != len(fresh.variables)
            or len(warm.optimizer.variables) != len(fresh.optimizer.variables)):
        return False
    pairs = [*zip(warm.variables, fresh.variables, strict=True),
             *zip(warm.optimizer.variables, fresh.optimizer.variables, strict=True)]
    if any(tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype for a, b in pairs):
        return False
    for a, b in pairs:
        a.assign(b.value)
    warm.stop_training = False
    return True
