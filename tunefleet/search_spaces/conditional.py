"""A Ray Tune searcher over a hypermodel's conditional space: grid, random, or HyperOpt TPE.

For HyperOpt the space becomes a nested ``hp.choice``: each parent hyperparameter chooses a
branch per value, and the hyperparameters that exist only under that value live inside the
branch (with their own label), so TPE never models a value that was not used. Numerical
hyperparameters are searched in KerasTuner's own unit interval (``prob_to_value``), which keeps
its ``log``/``reverse_log`` sampling and ``step``. A hyperparameter with conditions on several
parents is nested under the deepest one; the other conditions mask it after sampling.

Every configuration handed to Ray is flat (``{"num_layers": 2, "units_0": 64, ...}``) and holds
only active hyperparameters, plus ``trial_seed`` (sampled for grid and random search, derived
from the trial's index for hyperopt).
"""

from __future__ import annotations

import pickle
from typing import Any, Optional

import numpy as np

from ..spec import TRIAL_SEED_KEY
from .hypermodel_space import HypermodelSpace, Param, UnsupportedHypermodel
from .seeds import indexed_seed

__all__ = ["hyperopt_space", "flatten_choice", "make_conditional_searcher"]

_VALUE, _PROB = "__value__", "__prob__"


def _primary(space: HypermodelSpace, param: Param) -> Optional[tuple[str, tuple[Any, ...]]]:
    """The condition a parameter is nested under: the one on the deepest parent."""
    if not param.conditions:
        return None
    order = {name: i for i, name in enumerate(space.names)}
    return max(param.conditions, key=lambda c: order.get(c[0], -1))


def hyperopt_space(space: HypermodelSpace) -> dict[str, Any]:
    """The nested HyperOpt space (see the module docstring)."""
    from hyperopt import hp

    # Each parent's children, with the values of the parent under which each child exists.
    children: dict[str, list[tuple[Param, tuple[Any, ...]]]] = {}
    roots: list[Param] = []
    for p in space.params:
        primary = _primary(space, p)
        if primary is None:
            roots.append(p)
        else:
            children.setdefault(primary[0], []).append((p, primary[1]))

    def expr(p: Param, prefix: str) -> Any:
        label = f"{prefix}{p.name}"
        kids = children.get(p.name, [])
        if kids:
            values = p.values
            if values is None:
                raise UnsupportedHypermodel(
                    f"'{p.name}' decides which hyperparameters exist but is a continuous Float; "
                    "give it a step or make it a Choice")
            branches = []
            for v in values:
                branch = {_VALUE: v}
                for kid, allowed in kids:
                    if v in allowed:
                        branch[kid.name] = expr(kid, f"{label}={v}|")
                branches.append(branch)
            return hp.choice(label, branches)
        if p.kind in ("choice", "boolean"):
            return hp.choice(label, p.finite_values())
        if p.kind == "fixed":
            return p.hp.value
        return {_PROB: hp.uniform(label, 0.0, 1.0 - 1e-9)}

    return {p.name: expr(p, "") for p in roots}


def flatten_choice(space: HypermodelSpace, sample: dict[str, Any]) -> dict[str, Any]:
    """A HyperOpt sample of :func:`hyperopt_space` as flat values of the active hyperparameters."""
    flat: dict[str, Any] = {}

    def walk(node: dict[str, Any]) -> None:
        for name, value in node.items():
            if isinstance(value, dict) and _VALUE in value:
                flat[name] = value[_VALUE]
                walk({k: v for k, v in value.items() if k != _VALUE})
            elif isinstance(value, dict) and _PROB in value:
                flat[name] = space[name].hp.prob_to_value(float(value[_PROB]))
            else:
                flat[name] = value

    walk(sample)
    return space.active(_plain(flat))


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in values.items()}


class _Sampler:
    """Grid or random configurations, in a fixed order for a fixed seed."""

    def __init__(self, space: HypermodelSpace, algorithm: str, seed: int, repeats: int):
        self.space, self.algorithm = space, algorithm
        self.rng = np.random.default_rng(seed)
        self.grid = list(space.grid()) * repeats if algorithm == "grid" else None
        self.index = 0

    def next(self) -> Optional[dict[str, Any]]:
        if self.grid is not None:
            if self.index >= len(self.grid):
                return None
            config = dict(self.grid[self.index])
        else:
            config = self.space.sample(self.rng)
        self.index += 1
        config[TRIAL_SEED_KEY] = int(self.rng.integers(0, 2**31 - 1))
        return _plain(config)


def make_conditional_searcher(space: HypermodelSpace, algorithm: str, *, metric: str, mode: str,
                              seed: int, repeats: int = 1, n_initial_points: int = 20,
                              gamma: float = 0.25) -> Any:
    """A Ray ``Searcher`` for ``space`` (``algorithm``: grid, random or hyperopt)."""
    from ray.tune.search import Searcher  # here, not at the top: importing Ray is slow

    class ConditionalSearcher(Searcher):
        """Flat, active-only configurations from a conditional space."""

        def __init__(self):
            super().__init__(metric=metric, mode=mode)
            self._inner = None
            self._sampler = None
            self._index = 0  # hyperopt suggestions so far: each trial's seed derives from it
            if algorithm == "hyperopt":
                from ray.tune.search.hyperopt import HyperOptSearch

                self._inner = HyperOptSearch(
                    space=hyperopt_space(space), metric=metric, mode=mode,
                    n_initial_points=n_initial_points, random_state_seed=seed, gamma=gamma)
            else:
                self._sampler = _Sampler(space, algorithm, seed, repeats)

        def set_search_properties(self, metric, mode, config, **spec):
            return True  # the space is the hypermodel's; metric and mode are fixed above

        def suggest(self, trial_id: str) -> Optional[dict]:
            if self._inner is None:
                if self._sampler is None:
                    raise RuntimeError(f"the {algorithm} searcher restored a state without its "
                                       "sampler: the checkpoint is from another search algorithm")
                config = self._sampler.next()
                if config is None:
                    # Ray's annotation omits the FINISHED string its own docstring allows.
                    return Searcher.FINISHED  # type: ignore[return-value]
                return config
            config = self._inner.suggest(trial_id)
            if config is None or config == Searcher.FINISHED:
                return config
            # TPE may suggest one configuration twice: the seed comes from the trial's index.
            config = {**flatten_choice(space, config), TRIAL_SEED_KEY: indexed_seed(seed, self._index)}
            self._index += 1
            return config

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            if self._inner is not None:
                self._inner.on_trial_result(trial_id, result)

        def on_trial_complete(self, trial_id: str, result: Optional[dict] = None,
                              error: bool = False) -> None:
            if self._inner is not None:
                self._inner.on_trial_complete(trial_id, result, error)

        def save(self, checkpoint_path: str) -> None:
            inner = self._inner.get_state() if self._inner is not None else None
            with open(checkpoint_path, "wb") as handle:
                pickle.dump({"inner": inner, "sampler": self._sampler, "index": self._index},
                            handle)

        def restore(self, checkpoint_path: str) -> None:
            with open(checkpoint_path, "rb") as handle:
                state = pickle.load(handle)
            if self._inner is not None and state["inner"] is not None:
                self._inner.set_state(state["inner"])
            restored = state["sampler"]
            if (restored is not None and self._sampler is not None and restored.grid is not None
                    and self._sampler.grid is not None
                    and len(self._sampler.grid) > len(restored.grid)):
                # A continued study repeats its grid more times: the same order, longer.
                restored.grid = self._sampler.grid
            self._sampler = restored
            self._index = int(state.get("index", 0))

    return ConditionalSearcher()
