"""PBT and PB2: specs that mutate only training hyperparameters, schedulers built from the
search space, a trial restored from another's checkpoint training at its new configuration,
and the report's schedules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import Study, tiny_spec
from tunefleet import Experiment, SpecError
from tunefleet.schedulers import TIME_ATTR, make_scheduler
from tunefleet.schedulers.population import Bounds, describe_population
from tunefleet.spec.population import MUTABLE

PBT = {"name": "pbt", "perturbation_interval": 1}


def _spec(**sections) -> dict:
    return tiny_spec(Path("/tmp/unused"), **sections)


def _experiment(spec: dict) -> Experiment:
    """Validated: the population checks run when the Experiment is (spec/experiment.py)."""
    return Experiment.from_dict(spec)


# (what the spec changes, the message's regex): every check names the field and says the fix.
BAD = [
    ({"scheduler": PBT, "search_space": {"filters": {"type": "choice", "values": [8, 16]},
                                         "learning_rate": {"type": "uniform", "low": 0.001,
                                                           "high": 0.01}}},
     (r"search_space\.filters: 'filters' cannot change while a trial trains.*mutable: "
      r"learning_rate, momentum, weight_decay, batch_size, dropout.*scheduler\.mutate")),
    ({"scheduler": {**PBT, "mutate": ["dense_units"]}},
     r"scheduler\.mutate: 'dense_units' cannot change while a trial trains"),
    ({"scheduler": {**PBT, "mutate": ["learnig_rate"]}},
     r"scheduler\.mutate: .*did you mean 'learning_rate'\?"),
    ({"scheduler": {**PBT, "mutate": []}}, r"scheduler\.mutate: .*got \[\]"),
    ({"scheduler": {**PBT, "mutate": ["dropout", "dropout"]}}, r"'dropout' is listed twice"),
    ({"scheduler": {**PBT, "mutate": ["batch_size"]}},
     r"scheduler\.mutate\.batch_size: has no tuned search_space entry"),
    ({"scheduler": {"name": "pb2", "perturbation_interval": 1},
      "search_space": {"dropout": {"type": "choice", "values": [0.1, 0.2]}}},
     r"search_space\.dropout: PB2 needs bounds to model, got a choice entry.*scheduler pbt"),
    ({"scheduler": {"name": "pb2", "resample_probability": 0.5}},
     r"scheduler\.resample_probability: unknown key"),
    ({"scheduler": PBT, "search_space": {"epochs": {"type": "choice", "values": [2, 3]}}},
     r"search_space\.epochs: 'epochs' cannot change.*every trial's budget"),
    ({"scheduler": PBT, "search": {"algorithm": "hyperopt", "num_samples": 4}},
     r"search\.algorithm: .*model-based searcher, got 'hyperopt'.*random"),
    ({"scheduler": PBT, "search": {"algorithm": "random", "num_samples": 4,
                                   "max_concurrent": 2}},
     r"search\.max_concurrent: .*side by side"),
    ({"scheduler": PBT, "output": {"checkpoint_every": 2}},
     r"output\.checkpoint_every: .*every epoch needs one, got 2"),
    ({"scheduler": {**PBT, "perturbation_interval": 3}},
     (r"scheduler\.perturbation_interval: the first decision would come at epoch 3, but trials "
      r"train 3 epochs.*below 3")),
    ({"scheduler": {**PBT, "quantile_fraction": 0.6}},
     r"scheduler\.quantile_fraction: input should be less than or equal to 0\.5"),
    ({"scheduler": PBT, "search_space": {"momentum": {"type": "uniform", "low": 0.5,
                                                      "high": 0.9}}},
     r"search_space\.momentum: no trial's optimizer reads it \(adam\).*train\.optimizer: sgd"),
    ({"scheduler": PBT, "train": {"epochs": 3, "optimizer": "sgd"},
      "search_space": {"momentum": {"type": "uniform", "low": 0.0, "high": 0.9}}},
     r"search_space\.momentum: Keras keeps momentum slots only for momentum > 0.*got 0\.0"),
    ({"scheduler": PBT, "search_space": {"weight_decay": {"type": "loguniform", "low": 1e-5,
                                                          "high": 1e-3}}},
     r"search_space\.weight_decay: no trial's optimizer reads it.*adamw"),
]


@pytest.mark.parametrize("change, message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_population_specs_name_the_field_and_the_fix(change, message):
    with pytest.raises(SpecError, match=message):
        _experiment(_spec(**change))


def test_structural_keys_may_be_sampled_once_when_mutate_leaves_them_out():
    space = {"filters": {"type": "choice", "values": [8, 16]},
             "learning_rate": {"type": "loguniform", "low": 1e-3, "high": 2e-2}}
    experiment = _experiment(_spec(scheduler={**PBT, "mutate": ["learning_rate"]},
                                   search_space=space))
    scheduler = make_scheduler(experiment)
    assert list(scheduler._hyperparam_mutations) == ["learning_rate"]
    assert set(MUTABLE) >= {"learning_rate", "momentum", "weight_decay", "batch_size", "dropout"}


def test_pbt_mutations_and_bounds_come_from_the_search_space():
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.search.sample import Float

    space = {"learning_rate": {"type": "loguniform", "low": 1e-3, "high": 2e-2},
             "dropout": {"type": "quniform", "low": 0.0, "high": 0.5, "q": 0.1},
             "batch_size": {"type": "choice", "values": [32, 64, 128]}}
    experiment = _experiment(_spec(scheduler={**PBT, "quantile_fraction": 0.5,
                                              "resample_probability": 0.1},
                                   search_space=space))
    scheduler = make_scheduler(experiment)
    assert isinstance(scheduler, PopulationBasedTraining)
    assert scheduler._time_attr == TIME_ATTR and scheduler._perturbation_interval == 1
    assert scheduler._quantile_fraction == 0.5 and scheduler._resample_probability == 0.1
    mutations = scheduler._hyperparam_mutations
    assert isinstance(mutations["learning_rate"], Float)
    assert mutations["batch_size"] == [32, 64, 128]  # a choice moves to a neighbouring value
    # Ray multiplies by 0.8 or 1.2 without bounds; the explore function keeps the entry's.
    bounds = scheduler._custom_explore_fn
    assert isinstance(bounds, Bounds)
    clipped = bounds({"learning_rate": 0.024, "dropout": 0.47, "batch_size": 64, "trial_seed": 5})
    assert clipped == {"learning_rate": 0.02, "dropout": 0.5, "batch_size": 64, "trial_seed": 5}
    assert isinstance(clipped["learning_rate"], float)
    assert bounds({"learning_rate": 1e-4, "dropout": 0.26})["dropout"] == pytest.approx(0.3)


def test_randint_bounds_are_whole_and_exclude_high():
    space = {"batch_size": {"type": "randint", "low": 16, "high": 129}}
    experiment = _experiment(_spec(scheduler={"name": "pb2", "perturbation_interval": 1},
                                   search_space=space))
    bounds = Bounds.of(experiment)
    assert bounds.as_pb2() == {"batch_size": [16.0, 128.0]}
    out = bounds({"batch_size": 153.6})
    assert out["batch_size"] == 128 and isinstance(out["batch_size"], int)


def test_pb2_builds_from_the_bounds_with_scikit_learn():
    from ray.tune.schedulers.pb2 import PB2

    experiment = _experiment(_spec(scheduler={"name": "pb2", "perturbation_interval": 1}))
    scheduler = make_scheduler(experiment)
    assert isinstance(scheduler, PB2)
    assert scheduler._hyperparam_bounds == {"learning_rate": [1e-3, 2e-2], "dropout": [0.0, 0.3]}


def test_decisions_are_seeded_and_leave_the_drivers_random_state_alone():
    import random

    from ray.tune.schedulers.pbt import _explore

    def explored(seed: int) -> list:
        scheduler = make_scheduler(_experiment(_spec(
            scheduler={**PBT, "resample_probability": 0.5},
            search={"algorithm": "random", "num_samples": 4, "seed": seed})))
        out = []
        with scheduler._seeded():
            for _ in range(5):
                config, _ = _explore({"learning_rate": 0.005, "dropout": 0.1},
                                     scheduler._hyperparam_mutations, 0.5, (1.2, 0.8), None)
                out.append(config)
        return out

    random.seed(123)
    before = random.random()
    random.seed(123)
    assert explored(1) == explored(1)
    assert explored(1) != explored(2)
    assert random.random() == before  # the driver's own sequence went on undisturbed


def test_preview_says_what_the_population_does():
    experiment = _experiment(_spec(scheduler={**PBT, "quantile_fraction": 0.5},
                                   search={"algorithm": "random", "num_samples": 4, "seed": 1}))
    text = describe_population(experiment, 4, at_once=2)
    assert isinstance(text, str)
    assert text.startswith("population of 4 (2 train at once; the others wait paused and take "
                           "turns at each decision); every 1 epoch from epoch 1, the bottom 2 "
                           "of 4 copy the weights of one of the top 2")
    assert "multiplied by 1.2 or 0.8" in text and "probability 0.25" in text
    assert text.endswith("Mutated: learning_rate, dropout")
    pb2 = _experiment(_spec(scheduler={"name": "pb2", "perturbation_interval": 1}))
    assert "GP bandit" in describe_population(pb2, 3)
    assert "bottom 1 of 3" in describe_population(pb2, 3)
    assert describe_population(_experiment(_spec()), 3) == ""


def test_restore_into_a_new_configuration(tmp_path):
    """What a PBT copy does in the trainable: the copied weights and optimizer slots load into
    a model built from the new configuration (dropout 0 -> 0.25 adds a dropout layer, a seed
    state only), and the optimizer then trains at the new learning rate and momentum."""
    import keras

    from tunefleet.data import load_dataset
    from tunefleet.spec.sections import DataSpec, TrainSpec
    from tunefleet.trainables.builders import mlp
    from tunefleet.trainables.checkpoint import (apply_new_config, load_state, origin,
                                                 save_state)
    from tunefleet.trainables.compile import compile_model

    data = load_dataset(DataSpec(dataset="breast_cancer")).training

    def build(dropout: float, lr: float, momentum: float):
        model = mlp(data.info, layers=1, units=8, dropout=dropout)
        compile_model(model, TrainSpec(optimizer="sgd", learning_rate=lr, momentum=momentum,
                                       steps_per_execution=1), data.info.task)
        return model

    keras.utils.set_random_seed(0)
    source = build(0.0, 0.01, 0.9)
    source.fit(data.x_train, data.y_train, epochs=1, batch_size=64, verbose=0)
    save_state(tmp_path, source, 1, [], extra=origin("a_00000", 0.01))

    copy = build(0.25, 0.03, 0.5)
    assert len(copy.variables) == len(source.variables) + 1  # the dropout layer's seed state
    meta = load_state(tmp_path, copy)
    plain = [v for v in copy.variables if "seed_generator" not in v.name]
    for a, b in zip(source.variables, plain, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert float(np.asarray(copy.optimizer.learning_rate)) == pytest.approx(0.01)  # restored
    assert apply_new_config([copy], [meta], 0.03) is True
    assert float(np.asarray(copy.optimizer.learning_rate)) == pytest.approx(0.03)
    assert copy.optimizer.momentum == 0.5  # not a variable: the new compile's
    slots = [v for v in copy.optimizer.variables if "momentum" in v.name]
    assert slots and any(np.abs(np.asarray(v)).sum() > 0 for v in slots)  # the copied state
    copy.fit(data.x_train, data.y_train, epochs=1, batch_size=32, verbose=0)

    # Back to dropout 0 (a seed state fewer), and the same rate: nothing to change.
    save_state(tmp_path, copy, 2, [], extra=origin("b_00001", 0.03))
    again = build(0.0, 0.03, 0.5)
    meta = load_state(tmp_path, again)
    assert meta["trial_id"] == "b_00001"
    assert apply_new_config([again], [meta], 0.03) is False
    with pytest.raises(ValueError, match="different architecture"):
        load_state(tmp_path, mlp(data.info, layers=2, units=8))


@pytest.fixture(scope="module")
def prepared():
    """What the runner checks before Ray starts (the digits data), for ``_searcher``."""
    from tunefleet.study.runner import prepare

    return prepare(_experiment(_spec()))


@pytest.mark.parametrize("scheduler", [PBT, {"name": "pb2", "perturbation_interval": 1},
                                       {"name": "hyperband"}, {"name": "asha"}],
                         ids=["pbt", "pb2", "hyperband", "asha"])
def test_population_searchers_are_not_limited(prepared, scheduler):
    """PBT and PB2, like synchronous HyperBand, decide over trials created together: with the
    searcher limited to the 2 trials that fit, a population of 4 would run as two pairs one
    after the other that never copy each other. Resources still bound how many run at once;
    ASHA keeps the limit."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from tunefleet.search_spaces import make_searcher
    from tunefleet.study.budget import budget_searcher
    from tunefleet.study.runner import _searcher

    limit = 2 if scheduler["name"] == "asha" else 0
    experiment = _experiment(_spec(scheduler=scheduler,
                                   search={"algorithm": "random", "num_samples": 4}))
    searchers = [make_searcher(experiment, 2), _searcher(experiment, prepared, 2)]
    if scheduler["name"] != "pb2":  # PB2 models ranges, which grid search cannot enumerate
        grid = _experiment(_spec(
            scheduler=scheduler, search={"algorithm": "grid", "budget": {"trials": 4}},
            search_space={"learning_rate": {"type": "choice", "values": [1e-3, 1e-2]}}))
        searchers.append(budget_searcher(grid, 2))
    for searcher in searchers:
        assert isinstance(searcher, BasicVariantGenerator)
        assert searcher.max_concurrent == limit


# -- real studies (conftest's pbt_study and pb2_study, which the contract checks too) -------

def _rows(study: Study) -> pd.DataFrame:
    """Every reported row of every trial, with the configuration it trained with."""
    out = []
    for trial_dir in sorted(study.result.path.glob("trial_*")):
        for line in (trial_dir / "result.json").read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                out.append({"trial_id": row["trial_id"], "epoch": row["epoch"],
                            "reported_at": row["reported_at"],
                            "iterations_since_restore": row["iterations_since_restore"],
                            "lr": row["lr"], "cloned_from": row.get("cloned_from"),
                            "checkpoint_dir_name": row.get("checkpoint_dir_name"),
                            **{f"config/{k}": v for k, v in row["config"].items()}})
    return pd.DataFrame(out)


def _check_trains_at_its_configuration(study: Study) -> pd.DataFrame:
    rows = _rows(study)
    assert len(rows) == 12  # 4 trials, 3 epochs: a copy goes on from its source's epoch
    copies = rows[rows["cloned_from"].map(lambda s: isinstance(s, str))]
    assert len(copies) >= 1, "no trial copied another"
    assert set(copies["cloned_from"]) <= set(rows["trial_id"])
    assert (copies["cloned_from"] != copies["trial_id"]).all()
    # Every epoch trained at the learning rate of the configuration it reported, the epochs
    # after a copy included (the optimizer's rate comes back from the checkpoint otherwise).
    for lr, config_lr in zip(rows["lr"], rows["config/learning_rate"], strict=True):
        assert isinstance(lr, float)
        assert lr == pytest.approx(config_lr, rel=1e-6)
    # Values stay inside the search space's bounds.
    assert rows["config/learning_rate"].between(1e-3, 2e-2).all()
    if "config/dropout" in rows:
        assert rows["config/dropout"].between(0.0, 0.3).all()
    # A copy keeps its own trial seed.
    assert (rows.groupby("trial_id")["config/trial_seed"].nunique() == 1).all()
    # Each checkpoint a trial reported has its own directory name: a copy does not write into
    # the abandoned lineage's (Ray's index had not counted it), so rows never share one.
    named = rows.dropna(subset=["checkpoint_dir_name"])
    assert not named.duplicated(["trial_id", "checkpoint_dir_name"]).any()
    return rows


@pytest.mark.slow
def test_pbt_copies_trials_and_they_train_at_the_new_rate(pbt_study):
    rows = _check_trains_at_its_configuration(pbt_study)
    # Some trial changed its configuration mid-run: the rows after the copy carry the new
    # learning rate, which differs from the one it trained with before.
    changed = False
    for _, trial in rows.groupby("trial_id"):
        trial = trial.reset_index(drop=True)
        for i in range(1, len(trial)):
            if isinstance(trial.loc[i, "cloned_from"], str):
                before, after = trial.loc[i - 1, "lr"], trial.loc[i, "lr"]
                changed |= not math.isclose(before, after, rel_tol=1e-6)
    assert changed, "no copy trained at a learning rate other than the trial's earlier one"
    result = pbt_study.result
    assert len(result.trials) == 4 and set(result.trials["status"]) == {"completed"}
    # The copied checkpoints' snapshots are gone once nobody restores from them.
    assert not list(result.path.glob("trial_*/pbt_snapshot_*"))


@pytest.mark.slow
def test_the_whole_population_meets_at_every_decision(pbt_study):
    """Every trial of the population exists from the start (its searcher is not limited,
    spec/methods.py), so the synchronous decision at epoch 2 ranks all 4: no trial reports
    epoch 3 before every trial has reported epoch 2. Limited to the 2 trials that fit the
    session's 2 CPUs, the second pair would start once the first had finished (and each
    pair's decision would rank 2)."""
    rows = _rows(pbt_study)
    assert rows["trial_id"].nunique() == 4
    at = rows.groupby("epoch")["reported_at"].agg(["min", "max"])
    assert list(at.index) == [1, 2, 3]
    assert at.loc[2, "max"] < at.loc[3, "min"], "a trial went on before the population met"
    copies = rows[rows["cloned_from"].map(lambda s: isinstance(s, str))]
    assert len(copies) == 2 and set(copies["epoch"]) == {3}  # the bottom 2 of 4, after epoch 2


@pytest.mark.slow
def test_pb2_runs_and_trains_at_the_gp_chosen_rate(pb2_study):
    """PB2 decides after epochs 1 and 2. At the first it has no improvement to model yet, and
    a copy goes on with its source's very values; at the second its GP chooses for a copy of a
    trial that kept its values over both epochs (here, with two improvements to model, next
    to the source's values, but computed), and the copy trains epoch 3 with them (the rows'
    rates match their configurations and stay inside the bounds: checked above)."""
    rows = _check_trains_at_its_configuration(pb2_study)
    assert set(pb2_study.result.trials["status"]) == {"completed"}
    keys = ["config/learning_rate", "config/dropout"]
    at = rows.set_index(["trial_id", "epoch"])
    copies = rows[rows["cloned_from"].map(lambda s: isinstance(s, str))]
    assert sorted(copies["epoch"]) == [2, 2, 3, 3]  # the bottom 2 of 4 at each decision
    chosen = 0
    for _, copy in copies.iterrows():
        source = at.loc[(copy["cloned_from"], copy["epoch"] - 1), keys].tolist()
        if copy["epoch"] == 2:
            assert copy[keys].tolist() == source
        else:
            chosen += copy[keys].tolist() != source
    assert chosen >= 1, "the GP chose no copy's values"
    _check_pb2_changes_at_decisions(pb2_study, rows)


def _check_pb2_changes_at_decisions(study: Study, rows: pd.DataFrame) -> None:
    """What PB2 does, end to end: at a decision some trial's learning rate changes from one
    epoch to the next, to a value inside the search space's bounds; that trial went on from
    the checkpoint it copied (restored: its epoch count goes on from the copied epoch, and
    Ray's count since the restore starts again); the report's schedules show the change."""
    from tunefleet.reports import load_study
    from tunefleet.reports.schedules import Schedules, collect_schedules

    decisions = {1, 2}  # perturbation_interval 1 over 3 epochs (conftest.population_spec)
    changed = []
    for trial_id, trial in rows.groupby("trial_id"):
        trial = trial.sort_values("reported_at").reset_index(drop=True)
        for i in range(1, len(trial)):
            before, after = trial.loc[i - 1], trial.loc[i]
            if not math.isclose(before["config/learning_rate"], after["config/learning_rate"],
                                rel_tol=1e-9):
                changed.append((trial_id, before, after))
    assert changed, "no trial's learning rate changed between two of its epochs"
    for trial_id, before, after in changed:
        new = after["config/learning_rate"]
        assert isinstance(new, float) and 1e-3 <= new <= 2e-2
        assert after["lr"] == pytest.approx(new, rel=1e-6)  # the optimizer trained at it
        # A change only at a decision, and only by a copy that went on from its checkpoint.
        assert int(before["epoch"]) in decisions
        assert int(after["epoch"]) == int(before["epoch"]) + 1
        source = after["cloned_from"]
        assert isinstance(source, str) and source != trial_id
        assert after["iterations_since_restore"] == 1  # restored, not started again
        assert ((rows["trial_id"] == source) & (rows["epoch"] == before["epoch"])).any()

    info = collect_schedules(load_study(study.result.path))
    assert isinstance(info, Schedules) and info.scheduler == "pb2"
    assert info.keys == ["learning_rate", "dropout"] and info.log_scale == {"learning_rate"}
    shown = info.changes.set_index(["trial_id", "epoch"])
    for trial_id, before, after in changed:
        change = shown.loc[(trial_id, int(after["epoch"]))]
        assert change["cloned_from"] == after["cloned_from"]
        assert change["learning_rate"] == (f"{before['config/learning_rate']:.4g} → "
                                           f"{after['config/learning_rate']:.4g}")
        schedule = info.trial(trial_id).set_index("epoch")["learning_rate"]
        assert schedule[int(after["epoch"])] == pytest.approx(after["config/learning_rate"])


@pytest.mark.slow
def test_report_shows_each_trials_schedule(pbt_study, tmp_path):
    from tunefleet.reports import build_study_report, load_study
    from tunefleet.reports.schedules import Schedules, collect_schedules

    study = load_study(pbt_study.result.path)
    info = collect_schedules(study)
    assert isinstance(info, Schedules)
    assert info.keys == ["learning_rate"] and info.log_scale == {"learning_rate"}
    assert info.rows["trial_id"].nunique() == 4
    assert (info.rows.groupby("trial_id")["epoch"].max() == 3).all()
    copies = info.changes[info.changes["cloned_from"] != ""]
    moved = copies[copies["learning_rate"].str.contains("→")]  # a copy may land on its value
    assert len(moved) >= 1
    # The schedule agrees with the rows: a trial's learning rate at a copy is the new one.
    first = moved.iloc[0]
    row = info.trial(first["trial_id"]).set_index("epoch").loc[first["epoch"]]
    assert first["learning_rate"].endswith(f"→ {row['learning_rate']:.4g}")
    assert collect_schedules(load_study(pbt_study.result.path)).changes.equals(info.changes)

    report = build_study_report(study, tmp_path / "report", evaluate=False)
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Hyperparameter schedules (PBT)" in text and "![hyperparameter schedules]" in text
    assert (tmp_path / "report" / "schedules.png").stat().st_size > 0
    assert report.files["schedules"].name == "schedules.csv"
