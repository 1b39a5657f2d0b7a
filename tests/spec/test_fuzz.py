"""Property-based tests of the front door: any spec a user can write (valid ones, and the
examples with wrong types, missing sections, extreme numbers, unicode, huge lists and nested
garbage) either loads or is refused with a SpecError that names a field; never another
exception. Previewing a loaded spec (data, checks, plan; no Ray, no training) likewise.
Deterministic (derandomize) and bounded (max_examples), so CI sees the same cases each run."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunefleet.spec import Experiment, SpecError, dump_yaml, load_yaml

EXAMPLES = {p.stem: load_yaml(p) for p in sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
            if "variants" not in p.read_text()}
# The two that preview in about a second (the others build more models to check them).
PREVIEWABLE = ["digits_grid", "tabular_binary"]
# A field path first: ``train.epochs: ...``, ``search_space.lr: ...``, ``objective.mode: ...``.
FIELD_FIRST = re.compile(r"^[^\s:][^\n]*?: ")
# Cases run by each fuzz test: each test counts and checks its own, whatever runs before or
# after it; the module prints them all at its end (seen with -s).
RAN: dict[str, int] = {}
FUZZ = settings(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

EXTREMES = [0, -1, 1, 2 ** 31, 2 ** 63, -2 ** 63, 10 ** 30, -10 ** 30, 10 ** 400, 1e-320, 1e308,
            -1e308, math.inf, -math.inf, math.nan, 0.5, -0.0]
WORDS = ["", " ", "min", "max", "grid", "choice", "asha", "hyperband", "fixed", "uniform",
         "loguniform", "val_loss", "val_accuracy", "digits", "csv", "mlp", "cnn", "s3://b/p",
         "file:///tmp/x", "ümlaut-名前-🚀", "\x00", "a" * 5000, "../..", "a.b:c", "type", "values"]
leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                   st.sampled_from(EXTREMES), st.sampled_from(WORDS))
garbage = st.recursive(
    leaves, lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(WORDS)), children, max_size=4)),
    max_leaves=10)
huge_lists = st.sampled_from([1_000, 5_000]).map(lambda n: list(range(n)))


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a spec that a mutation can hit: each mapping key and list index."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


def _parent(spec: Any, path: tuple) -> Any:
    for key in path[:-1]:
        spec = spec[key]
    return spec


@st.composite
def mutated_examples(draw: Any, names: tuple = tuple(sorted(EXAMPLES)), sections: tuple = (),
                     most: int = 3, actions: tuple = ("garbage", "extreme", "huge", "delete", "add")) -> dict:
    """An example with one to ``most`` of: a value replaced by garbage, an extreme number or a
    huge list; a key or whole section removed; an unknown key added (in ``sections`` only)."""
    spec = copy.deepcopy(EXAMPLES[draw(st.sampled_from(names))])
    for _ in range(draw(st.integers(1, most))):
        paths = [p for p in _paths(spec) if not sections or p[0] in sections]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(spec, path)
        action = draw(st.sampled_from(actions))
        if action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.one_of(st.text(max_size=8), st.sampled_from(WORDS)))] = draw(garbage)
        elif action == "extreme":
            parent[path[-1]] = draw(st.sampled_from(EXTREMES))
        elif action == "huge":
            parent[path[-1]] = draw(huge_lists)
        else:
            parent[path[-1]] = draw(garbage)
    return spec


@st.composite
def valid_specs(draw: Any) -> dict:
    """Specs that must load: every searcher and scheduler with values inside their bounds."""
    dataset = draw(st.sampled_from(["digits", "breast_cancer", "diabetes"]))
    epochs = draw(st.integers(1, 30))
    algorithm = draw(st.sampled_from(["grid", "random", "hyperopt"]))
    space: dict[str, Any] = {"batch_size": {"type": draw(st.sampled_from(
        ["grid", "choice"] if algorithm != "hyperopt" else ["choice"])),
        "values": draw(st.lists(st.integers(1, 256), min_size=1, max_size=4))}}
    if algorithm != "grid":
        low = draw(st.floats(1e-6, 0.1))
        space["learning_rate"] = {"type": "loguniform", "low": low, "high": low * draw(st.floats(1.5, 100))}
        space["dropout"] = {"type": "uniform", "low": 0.0, "high": draw(st.floats(0.01, 0.9))}
    scheduler = draw(st.sampled_from([
        {"name": "fifo"},
        {"name": "asha", "grace_period": draw(st.integers(1, epochs)),
         "reduction_factor": draw(st.floats(1.1, 8)), "max_t": draw(st.integers(1, epochs))},
        {"name": "hyperband", "reduction_factor": draw(st.floats(1.1, 8))},
        {"name": "median", "grace_period": draw(st.integers(1, epochs))},
    ]))
    if scheduler["name"] == "asha":
        scheduler["grace_period"] = min(scheduler["grace_period"], scheduler["max_t"])
    search: dict[str, Any] = {"algorithm": algorithm, "seed": draw(st.integers(0, 2 ** 31)),
                              "num_samples": draw(st.integers(1, 20)),
                              "executions_per_trial": draw(st.integers(1, 3)),
                              "aggregate": draw(st.sampled_from(["mean", "median", "worst"]))}
    if scheduler["name"] != "hyperband" and draw(st.booleans()):
        search["max_concurrent"] = draw(st.integers(1, 8))
    metrics = ["val_loss", "loss"] + (["val_mae", "mae"] if dataset == "diabetes" else ["val_accuracy"])
    return {
        "name": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,30}", fullmatch=True)),
        "data": {"dataset": dataset, "seed": draw(st.integers(0, 1000)),
                 "validation_fraction": draw(st.floats(0.05, 0.4))},
        "model": {"builder": "mlp", "params": {"units": draw(st.integers(1, 16)), "layers": 1}},
        "train": {"epochs": epochs, "learning_rate": draw(st.floats(1e-5, 1.0)),
                  "optimizer": draw(st.sampled_from(["adam", "sgd", "rmsprop", "adamw"]))},
        "search_space": space, "search": search, "scheduler": scheduler,
        "objective": {"metric": draw(st.sampled_from(metrics))},
        "resources": {"cpu": draw(st.sampled_from([0.5, 1, 2]))},
        "output": {"storage": draw(st.sampled_from(["results", "/tmp/tunefleet-fuzz", "file:///tmp/x"]))},
    }


overrides = st.lists(st.one_of(
    st.builds(lambda k, v: f"{k}={v}",
              st.sampled_from(["train.epochs", "search.num_samples", "objective.mode", "objective.metric",
                               "scheduler", "scheduler.name", "search_space.units", "data.dataset", "name",
                               "train.early_stopping.patience", "output.storage", "a.b.c", "x", ".", "..",
                               "search_space.learning_rate.low", "model.params.units.0"]),
              st.one_of(st.text(max_size=15), st.sampled_from(
                  ["{type: grid, values: []}", "[1, 2", "{", "!!python/object:os.system ls",
                   "1e999", "-.inf", ".nan", "max", "null", "[]", "{}", "'", "&a *a", "*undefined"]))),
    st.text(max_size=20)), max_size=3)


def _check_refusal(err: SpecError) -> None:
    """A refusal names the field it is about (the message starts with its path)."""
    assert isinstance(err, SpecError)
    text = str(err)
    assert text and (err.field or FIELD_FIRST.match(text)), text


def _run_cases(name: str, cases: Any, *args: Any, least: int) -> None:
    """Run hypothesis' cases of ``cases`` (whose body counts itself in ``RAN[name]``) and check
    that at least ``least`` of them reached the body: a strategy that rejects or overruns its
    draws would otherwise pass having tested nothing."""
    RAN[name] = 0
    cases(*args)
    assert RAN[name] >= least, f"{name}: only {RAN[name]} fuzz cases ran (expected {least}+)"


@pytest.fixture(scope="module", autouse=True)
def _print_cases_ran():
    yield
    if RAN:  # "previewed" counts the preview_mutated cases that reached a plan
        total = sum(n for name, n in RAN.items() if name != "previewed")
        print(f"\nfuzz cases run: {RAN} (total {total})")


def _load(data: Any) -> Experiment | None:
    try:
        exp = Experiment.from_dict(data)
    except SpecError as err:
        _check_refusal(err)
        return None
    assert isinstance(exp, Experiment)
    assert exp.objective.mode in ("min", "max")
    # What the runner writes into a results directory must read back as the same spec.
    again = Experiment.from_dict(exp.to_dict())
    assert again.objective == exp.objective and again.search == exp.search
    return exp


@settings(FUZZ, max_examples=250)
@given(spec=mutated_examples())
def _mutated_cases(spec):
    RAN["mutated"] += 1
    _load(spec)


def test_mutated_examples_load_or_name_the_field():
    _run_cases("mutated", _mutated_cases, least=200)


@settings(FUZZ, max_examples=60)
@given(spec=st.one_of(garbage, st.dictionaries(st.sampled_from(
    ["name", "data", "model", "train", "search_space", "search", "scheduler", "objective", "resources",
     "cluster", "output", "failure"]), garbage, max_size=6)))
def _garbage_cases(spec):
    RAN["garbage"] += 1
    _load(spec)


def test_garbage_loads_or_names_the_field():
    _run_cases("garbage", _garbage_cases, least=50)


@settings(FUZZ, max_examples=100)
@given(spec=mutated_examples(actions=("garbage", "extreme", "delete", "add")), sets=overrides)
def _yaml_cases(tmp_path_factory, spec, sets):
    RAN["yaml"] += 1
    path = tmp_path_factory.mktemp("fuzz") / "spec.yaml"
    dump_yaml(spec, path)
    try:
        exp = Experiment.from_yaml(path, overrides=sets)
    except SpecError as err:
        _check_refusal(err)
        return
    assert isinstance(exp, Experiment)


def test_yaml_with_overrides_loads_or_names_the_field(tmp_path_factory):
    _run_cases("yaml", _yaml_cases, tmp_path_factory, least=80)


@settings(FUZZ, max_examples=150)
@given(spec=valid_specs())
def _valid_cases(tmp_path_factory, spec):
    RAN["valid"] += 1
    exp = _load(spec)
    assert exp is not None
    path = tmp_path_factory.mktemp("fuzz") / "spec.yaml"
    dump_yaml(exp.to_dict(), path)
    assert Experiment.from_yaml(path) == exp


def test_valid_specs_load_and_round_trip(tmp_path_factory):
    _run_cases("valid", _valid_cases, tmp_path_factory, least=120)


@pytest.fixture(scope="module")
def collect_plan():
    from tunefleet.study.preview import collect_plan

    return collect_plan


@settings(FUZZ, max_examples=4)
@given(spec=valid_specs())
def _preview_valid_cases(collect_plan, spec):
    RAN["preview_valid"] += 1
    plan = collect_plan(Experiment.from_dict(spec))
    assert isinstance(plan.trials, int) and plan.trials >= 1
    assert plan.objective.endswith(("(min)", "(max)"))


def test_valid_specs_preview(collect_plan):
    _run_cases("preview_valid", _preview_valid_cases, collect_plan, least=4)


@settings(FUZZ, max_examples=20)
@given(spec=mutated_examples(tuple(PREVIEWABLE), sections=(
    "train", "search", "scheduler", "objective", "resources", "cluster", "failure"), most=1,
    actions=("extreme", "delete", "garbage")))
def _preview_mutated_cases(collect_plan, spec):
    RAN["preview_mutated"] += 1
    exp = _load(spec)
    if exp is None:
        return
    try:
        plan = collect_plan(exp)
    except SpecError as err:
        _check_refusal(err)
        return
    RAN["previewed"] += 1
    assert isinstance(plan.trials, int)


def test_mutated_examples_preview_or_name_the_field(collect_plan):
    """Mutations that leave data and model alone (a model of 10**30 units would be built);
    some of them must get as far as a plan."""
    RAN["previewed"] = 0
    _run_cases("preview_mutated", _preview_mutated_cases, collect_plan, least=15)
    assert RAN["previewed"] > 0


@pytest.mark.parametrize("data,field", [
    (None, r"^spec: must be a mapping of sections"),           # found by the fuzzer: was no field
    ([{"name": "x"}], r"^spec: must be a mapping of sections"),
    ({"name": "x", " ": 1}, r"^' ': unknown key"),            # found by the fuzzer: was " : ..."
    ({"name": "x", "": 1}, r"^'': unknown key"),
    ({"name": "x", "search_space": {"a b": {"type": "uniform", "low": 2, "high": 1}}},
     r"^search_space\.'a b': uniform needs low < high"),
    ({"name": "x", "output": {"dir": "a", "storage": "b"}}, r"^output\.dir: unknown key; it is the old name"),
])
def test_refusals_found_by_fuzzing_name_a_readable_field(data, field):
    with pytest.raises(SpecError, match=field):
        Experiment.from_dict(data)
