"""A trial's training state in a directory: weights, optimizer state, epoch, callback state.

Plain ``.npz`` + JSON rather than a ``.keras`` archive: writing it each epoch costs
milliseconds, and restoring needs only the model the builder makes anyway.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np

__all__ = ["save_state", "load_state", "callback_states", "restore_callbacks", "CALLBACK_STATE",
           "execution_dir", "restore_trial", "origin", "apply_new_config", "SAVED_BY",
           "CONFIG_LR"]

STATE_FILE = "state.npz"
META_FILE = "meta.json"
# Meta key: indices of the saved model variables that are random layers' seed states.
SEED_STATES = "seed_states"
# Attributes that carry a callback's progress across a pause (set again after on_train_begin).
CALLBACK_STATE = ("wait", "best", "stopped_epoch", "best_epoch", "cooldown_counter")


def save_state(directory: Path, model: Any, epoch: int, callbacks: list[Any],
               extra: dict[str, Any] | None = None) -> None:
    """Write the state after ``epoch`` epochs into ``directory``.

    ``model.variables`` rather than the weights: it includes the random-seed state of dropout
    and other random layers, so a resumed trial continues exactly as an uninterrupted one.
    """
    # Any: the keys (w0, o0, ...) never collide with np.savez's own allow_pickle argument.
    arrays: dict[str, Any] = {f"w{i}": np.asarray(v) for i, v in enumerate(model.variables)}
    optimizer = model.optimizer
    if optimizer is not None and optimizer.built:
        arrays.update({f"o{i}": np.asarray(v) for i, v in enumerate(optimizer.variables)})
    np.savez(directory / STATE_FILE, **arrays)
    meta = {"epoch": int(epoch), "callbacks": callback_states(callbacks), **(extra or {}),
            "input_shape": _input_shape(model),
            SEED_STATES: [i for i, v in enumerate(model.variables) if _is_seed_state(v)]}
    (directory / META_FILE).write_text(json.dumps(meta))


def _input_shape(model: Any) -> Optional[list[Optional[int]]]:
    """The input shape ``model`` was built for (None when it has several inputs, or none)."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        return None
    if isinstance(shape, tuple) and all(d is None or isinstance(d, int) for d in shape):
        return list(shape)
    return None


def load_state(directory: Path, model: Any,
               input_shape: Optional[tuple[int, ...]] = None) -> dict[str, Any]:
    """Restore weights and optimizer state into a freshly built, compiled ``model``.

    A model written without an ``Input`` (KerasTuner's guide builds it at its first batch)
    is first built for the shape it was trained on, as saved with the state (older states:
    ``input_shape``, the data's shape without the batch). Returns the metadata (``epoch``,
    ``callbacks``); apply the callback states after ``on_train_begin`` (see
    :func:`restore_callbacks`).
    """
    meta = json.loads((directory / META_FILE).read_text())
    if not getattr(model, "built", True):
        saved_shape = meta.get("input_shape")
        if saved_shape is not None:
            model.build(tuple(saved_shape))
        elif input_shape is not None:
            model.build((None, *input_shape))
    arrays = np.load(directory / STATE_FILE)
    saved = sum(k.startswith("w") for k in arrays.files)
    for var, key in _variable_pairs(model, saved, meta.get(SEED_STATES)):
        var.assign(arrays[key])
    opt_keys = [k for k in arrays.files if k.startswith("o")]
    if opt_keys:
        optimizer = model.optimizer
        optimizer.build(model.trainable_variables)
        if len(optimizer.variables) != len(opt_keys):
            raise ValueError(f"checkpoint has {len(opt_keys)} optimizer variables, the model's "
                             f"optimizer has {len(optimizer.variables)}")
        for i, var in enumerate(optimizer.variables):
            var.assign(arrays[f"o{i}"])
    return meta


def _is_seed_state(variable: Any) -> bool:
    """A random layer's seed state (Keras' ``SeedGenerator``): a dropout layer's only
    variable."""
    return str(getattr(variable, "name", "")).endswith("seed_generator_state")


def _variable_pairs(model: Any, saved: int,
                    seed_states: Optional[list[int]]) -> list[tuple[Any, str]]:
    """(model variable, saved array key) to assign. A checkpoint that lists its seed states
    may differ from the model by random layers only (a builder that adds a dropout layer only
    for a non-zero rate, after a PBT mutation to or from 0): the other variables pair in
    order, and the seed states too when their counts agree (else the model keeps its own,
    seeded from its trial). An older checkpoint pairs everything in order."""
    variables = list(model.variables)
    mismatch = ValueError(f"checkpoint has {saved} model variables, the model has "
                          f"{len(variables)}: it was saved from a different architecture")
    if seed_states is None:
        if saved != len(variables):
            raise mismatch
        return [(v, f"w{i}") for i, v in enumerate(variables)]
    seeds = set(seed_states)
    saved_plain = [f"w{i}" for i in range(saved) if i not in seeds]
    model_plain = [v for v in variables if not _is_seed_state(v)]
    if len(saved_plain) != len(model_plain):
        raise mismatch
    pairs = list(zip(model_plain, saved_plain, strict=True))
    model_seeds = [v for v in variables if _is_seed_state(v)]
    if len(model_seeds) == len(seeds):
        pairs += list(zip(model_seeds, [f"w{i}" for i in sorted(seeds)], strict=True))
    return pairs


def callback_states(callbacks: list[Any]) -> list[dict[str, Any]]:
    """The progress of each callback (what a pause or a new ``fit`` call would reset)."""
    return [{k: _jsonable(getattr(cb, k)) for k in CALLBACK_STATE if hasattr(cb, k)}
            for cb in callbacks]


def restore_callbacks(callbacks: list[Any], states: list[dict[str, Any]]) -> None:
    """Put saved progress back into callbacks (call after their on_train_begin reset it)."""
    for cb, state in zip(callbacks, states, strict=False):
        for key, value in state.items():
            setattr(cb, key, value)


def execution_dir(directory: Path, execution: int, executions: int) -> Path:
    """Where one execution's state lives in a checkpoint (the checkpoint itself when alone)."""
    return directory if executions == 1 else directory / f"execution_{execution}"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return None


def restore_trial(checkpoint: Any, models: list[Any], state: Any,
                  metas: Optional[list[dict[str, Any]]] = None,
                  ) -> tuple[list[Optional[list[dict[str, Any]]]], int, Optional[float]]:
    """Load a trial's Ray ``checkpoint`` (None: a fresh trial) into each execution's model and
    into ``state`` (an ``ExecutionState``). Returns each execution's saved callback states,
    the epoch reached and the best objective so far; ``metas``, when given, receives each
    execution's saved metadata (who saved it, with what learning rate: see
    :func:`apply_new_config`)."""
    n = len(models)
    saved: list[Optional[list[dict[str, Any]]]] = [None] * n
    epoch, best = 0, None
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            for k, model in enumerate(models):
                meta = load_state(execution_dir(Path(directory), k, n), model)
                saved[k] = meta["callbacks"]
                state.restore(k, meta)
                epoch, best = int(meta["epoch"]), meta.get("best")
                if metas is not None:
                    metas.append(meta)
    return saved, epoch, best


# Meta keys of a checkpoint: the trial that saved it, and the learning rate its configuration
# set (the base rate, before any schedule or plateau reduction).
SAVED_BY, CONFIG_LR = "trial_id", "config_learning_rate"


def origin(trial_id: str, learning_rate: float) -> dict[str, Any]:
    """What a trial writes into each checkpoint's metadata about itself."""
    return {SAVED_BY: trial_id, CONFIG_LR: float(learning_rate)}


def apply_new_config(models: list[Any], metas: list[dict[str, Any]],
                     learning_rate: float) -> bool:
    """After restoring checkpoints saved under another configuration (PBT copied a trial and
    mutated its learning rate), give each optimizer the new configuration's learning rate:
    the optimizer's ``learning_rate`` is one of its variables, so the checkpoint restored the
    old one. Momentum and weight decay are not variables (the new compile set them) and the
    batch size is not saved. A checkpoint of the same rate keeps what it restored (a plateau
    reduction, a schedule's value). Returns whether a rate was set."""
    changed = False
    for model, meta in zip(models, metas, strict=False):
        saved = meta.get(CONFIG_LR)
        if saved is None or math.isclose(float(saved), float(learning_rate), rel_tol=1e-9):
            continue
        model.optimizer.learning_rate = float(learning_rate)
        changed = True
    return changed
