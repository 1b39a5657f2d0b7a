"""The search space of a KerasTuner hypermodel, discovered by building it.

KerasTuner learns a hypermodel's space as trials run; tunefleet needs it up front to hand it to
HyperOpt, random or grid search. It builds the model (without training) for a few values of
each hyperparameter and watches which hyperparameters each build declares:

- ``hp.conditional_scope`` (and ``parent_name``/``parent_values``) conditions are read as
  declared;
- a hyperparameter that appears only for some values of another (``units_2`` only when
  ``num_layers`` is 3, in a ``for i in range(hp.Int("num_layers", 1, 3))`` loop) gets the
  inferred condition ``num_layers in {3}``.

Each round varies one hyperparameter at a time from a context; the next round's context sets
every parent to the value that activates most hyperparameters, so that hyperparameters nested
under two parents (a loop inside ``if hp.Boolean(...)``) are found too.

A configuration the user's code marks failed (KerasTuner's ``FailedTrialError``: "model too
large") is a legitimate part of the space: what it declared is kept, but it is not used to
infer conditions (it may have stopped before declaring the rest).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

__all__ = ["Param", "HypermodelSpace", "discover_space", "UnsupportedHypermodel",
           "FailedConfiguration", "SPACE_FILE", "read_space_kinds"]

SPACE_FILE = "search_space.json"
_EXHAUSTIVE = 12     # probe every value of a discrete hyperparameter with at most this many
_MAX_BRANCHES = 64   # a parent hyperparameter may have at most this many values


class UnsupportedHypermodel(ValueError):
    """Something in the hypermodel tunefleet cannot search (the message says what and why)."""


class FailedConfiguration(Exception):
    """A probe's configuration that the user's code marked failed; ``hp``: what it declared."""

    def __init__(self, hp: Any, reason: str):
        super().__init__(reason)
        self.hp, self.reason = hp, reason


def _kind(hp: Any) -> str:
    return type(hp).__name__.lower()  # int, float, choice, boolean, fixed


def _discrete_values(hp: Any) -> Optional[list[Any]]:
    """Every value of a finite hyperparameter; None for a Float without ``step``."""
    kind = _kind(hp)
    if kind in ("choice", "boolean"):
        return list(hp.values)
    if kind == "fixed":
        return [hp.value]
    if kind == "float" and hp.step is None:
        return None
    values = list(hp.values)
    return [int(v) for v in values] if kind == "int" else [float(v) for v in values]


@dataclass(frozen=True)
class Param:
    """One hyperparameter and the conditions under which the hypermodel uses it.

    ``conditions``: ``(parent, allowed values)`` pairs, all of which must hold.
    """

    name: str
    hp: Any
    conditions: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    @property
    def kind(self) -> str:
        return _kind(self.hp)

    @property
    def values(self) -> Optional[list[Any]]:
        return _discrete_values(self.hp)

    def finite_values(self, needed_by: str = "this search") -> list[Any]:
        """:attr:`values`, or UnsupportedHypermodel for a Float without ``step``."""
        values = self.values
        if values is None:
            raise UnsupportedHypermodel(
                f"{needed_by} needs a finite set of values, but Float '{self.name}' "
                f"({self.hp.min_value}..{self.hp.max_value}) has no step; give it step=... or use "
                "search.algorithm: random or hyperopt")
        return values

    def describe(self) -> dict[str, Any]:
        config = {k: v for k, v in self.hp.get_config().items() if k not in ("name", "conditions")}
        return {"name": self.name, "type": self.kind, **config,
                "conditions": [{"parent": p, "values": list(v)} for p, v in self.conditions]}


@dataclass(frozen=True)
class HypermodelSpace:
    """The discovered hyperparameters, in declaration order (parents before children)."""

    params: tuple[Param, ...]
    builds: int = 0
    kt_config: dict[str, Any] = field(default_factory=dict)
    # Active values of probed configurations that built (and fit) without FailedTrialError,
    # in the order probed: what the driver's check may train instead of a failing default.
    working: tuple[dict[str, Any], ...] = ()
    failed: int = 0  # probes the user's code marked failed

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def is_active(self, param: Param, values: dict[str, Any]) -> bool:
        """Whether ``param`` is used when its parents take ``values``."""
        return all(parent in values and values[parent] in allowed
                   for parent, allowed in param.conditions)

    def active(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` restricted to the hyperparameters their own values make active."""
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name in values and self.is_active(p, out):
                out[p.name] = values[p.name]
        return out

    def sample(self, rng: Any) -> dict[str, Any]:
        """A random configuration: each active hyperparameter drawn as KerasTuner draws it."""
        out: dict[str, Any] = {}
        for p in self.params:
            if not self.is_active(p, out):
                continue
            if p.kind in ("choice", "boolean"):
                values = p.finite_values()
                out[p.name] = values[int(rng.integers(len(values)))]
            elif p.kind == "fixed":
                out[p.name] = p.hp.value
            else:
                out[p.name] = p.hp.prob_to_value(float(rng.random()))
        return out

    def grid(self) -> Iterator[dict[str, Any]]:
        """Every configuration of active values (continuous Floats must have a ``step``)."""
        domains = [p.finite_values("grid search") for p in self.params]

        def walk(index: int, chosen: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if index == len(self.params):
                yield dict(chosen)
                return
            p = self.params[index]
            if not self.is_active(p, chosen):
                yield from walk(index + 1, chosen)
                return
            for value in domains[index]:
                chosen[p.name] = value
                yield from walk(index + 1, chosen)
                del chosen[p.name]

        return walk(0, {})

    def grid_size(self) -> int:
        return sum(1 for _ in self.grid())

    def to_json(self) -> dict[str, Any]:
        return {"params": [p.describe() for p in self.params], "builds": self.builds,
                "keras_tuner": self.kt_config}

    def write(self, directory: Path) -> Path:
        path = directory / SPACE_FILE
        path.write_text(json.dumps(self.to_json(), indent=2, default=str))
        return path


def read_space_kinds(directory: Path) -> Optional[dict[str, str]]:
    """For a hypermodel study: each searched hyperparameter's scale (``categorical``,
    ``linear`` or ``log``); None if ``directory`` is not a hypermodel study."""
    path = Path(directory) / SPACE_FILE
    if not path.is_file():
        return None
    kinds = {}
    for p in json.loads(path.read_text())["params"]:
        if p["type"] == "fixed":
            continue
        kinds[p["name"]] = ("categorical" if p["type"] in ("choice", "boolean") else
                            "log" if p.get("sampling") == "log" else "linear")
    return kinds


def _probe_values(hp: Any) -> tuple[list[Any], bool]:
    """Values to try, and whether they are all of the hyperparameter's values."""
    values = _discrete_values(hp)
    if values is not None and len(values) <= _EXHAUSTIVE:
        return values, True
    if values is not None:
        picks = [values[0], hp.default, values[-1]]
    else:  # continuous Float: its ends and default
        picks = [hp.min_value, hp.default, hp.prob_to_value(1.0 - 1e-9)]
    return list(dict.fromkeys(picks)), False


class _Explorer:
    """Runs the probes and remembers what each build declared."""

    def __init__(self, probe: Callable[[dict[str, Any]], Any], max_builds: int):
        self.probe, self.max_builds = probe, max_builds
        self.builds = 0
        self.defs: dict[str, Any] = {}
        self.first_context: dict[str, dict[str, Any]] = {}
        self.kt_hp: Any = None
        self.working: dict[str, dict[str, Any]] = {}
        self.failed = 0

    def build(self, values: dict[str, Any]) -> tuple[set[str], dict[str, Any], bool]:
        """(active names, values used, whether the user's code marked it failed)."""
        if self.builds >= self.max_builds:
            raise UnsupportedHypermodel(
                f"the hypermodel's space was still growing after {self.max_builds} builds; "
                "tunefleet discovers conditional hyperparameters by building the model, and this "
                "one declares too many (use conditional_scope, or fewer values per parent)")
        self.builds += 1
        failed = False
        try:
            hp = self.probe(dict(values))
        except FailedConfiguration as exc:
            hp, failed = exc.hp, True
            self.failed += 1
        used = dict(hp.values)
        active = set()
        for h in hp.space:
            if h.name not in self.defs:
                self.defs[h.name] = h
                self.first_context[h.name] = used
                if self.kt_hp is None:
                    self.kt_hp = hp
                else:
                    self.kt_hp.merge([h], overwrite=False)
            if hp.is_active(h):
                active.add(h.name)
        if not failed:
            works = {h.name: used[h.name] for h in hp.space if h.name in active and h.name in used}
            self.working.setdefault(json.dumps(works, sort_keys=True, default=str), works)
        return active, used, failed


def _declared(hp: Any) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    return tuple((c.name, tuple(c.values)) for c in getattr(hp, "conditions", []))


def discover_space(probe: Callable[[dict[str, Any]], Any], *, max_builds: int = 400,
                   max_rounds: int = 4) -> HypermodelSpace:
    """Discover a hypermodel's space with ``probe(values) -> HyperParameters`` (one build)."""
    ex = _Explorer(probe, max_builds)
    _, context, _ = ex.build({})
    inferred: dict[str, dict[str, set]] = {}  # child -> parent -> values where it appeared
    probed: set[tuple[str, str]] = set()
    for _ in range(max_rounds):
        best_values: dict[str, tuple[int, Any]] = {}
        for name in list(ex.defs):
            hp = ex.defs[name]
            if _kind(hp) == "fixed":
                continue
            base = context if name in context else ex.first_context[name]
            key = (name, json.dumps(base, sort_keys=True, default=str))
            if key in probed:
                continue
            probed.add(key)
            runs = _probe(ex, name, hp, base)
            seen = set().union(*runs.values())
            varying = {n for n in seen if not all(n in act for act in runs.values())}
            for child in varying - {name}:
                if _declared(ex.defs[child]):
                    continue
                where = inferred.setdefault(child, {}).setdefault(name, set())
                where.update(v for v, act in runs.items() if child in act)
            if varying:
                most = max(runs, key=lambda v: len(runs[v]))
                best_values[name] = (len(runs[most]), most)
        new_context = dict(context)
        new_context.update({n: v for n, (_, v) in best_values.items()})
        _, new_context, _ = ex.build(new_context)
        if new_context == context:
            break
        context = new_context
    return _assemble(ex, inferred)


def _probe(ex: _Explorer, name: str, hp: Any, base: dict[str, Any]) -> dict[Any, set[str]]:
    values, exhaustive = _probe_values(hp)
    runs = _runs(ex, name, base, values)
    changes = len({frozenset(a) for a in runs.values()}) > 1
    if changes and not exhaustive:
        everything = _discrete_values(hp)
        if everything is None or len(everything) > _MAX_BRANCHES:
            raise UnsupportedHypermodel(
                f"which hyperparameters exist depends on the value of '{name}' "
                f"({_kind(hp)} {getattr(hp, 'min_value', '')}..{getattr(hp, 'max_value', '')}), "
                f"which has {'continuous' if everything is None else len(everything)} values; "
                "tunefleet needs such a parent to be a Choice, Boolean, or an Int/Float with at "
                f"most {_MAX_BRANCHES} values")
        runs.update(_runs(ex, name, base, [v for v in everything if v not in values]))
    return runs


def _runs(ex: _Explorer, name: str, base: dict[str, Any], values: list[Any]) -> dict[Any, set[str]]:
    """What each value declared; a failed configuration says nothing about conditions."""
    runs = {}
    for v in values:
        active, _, failed = ex.build({**base, name: v})
        if not failed:
            runs[v] = active
    return runs


def _assemble(ex: _Explorer, inferred: dict[str, dict[str, set]]) -> HypermodelSpace:
    params = []
    for name, hp in ex.defs.items():
        conditions = list(_declared(hp))
        declared_parents = {p for p, _ in conditions}
        for parent, allowed in inferred.get(name, {}).items():
            if parent in declared_parents:
                continue
            values = _discrete_values(ex.defs[parent]) or sorted(allowed)
            conditions.append((parent, tuple(v for v in values if v in allowed)))
        params.append(Param(name, hp, tuple(conditions)))
    ordered = _parents_first(params)
    config = ex.kt_hp.get_config() if ex.kt_hp is not None else {}
    return HypermodelSpace(tuple(ordered), ex.builds, config, tuple(ex.working.values()),
                           ex.failed)


def _parents_first(params: list[Param]) -> list[Param]:
    by_name = {p.name: p for p in params}
    done: dict[str, Param] = {}

    def visit(p: Param, trail: tuple[str, ...]) -> None:
        if p.name in done:
            return
        if p.name in trail:
            raise UnsupportedHypermodel(f"hyperparameters {' -> '.join(trail)} depend on each "
                                        "other in a cycle")
        for parent, _ in p.conditions:
            if parent in by_name:
                visit(by_name[parent], (*trail, p.name))
        done[p.name] = p

    for p in params:
        visit(p, ())
    return list(done.values())

