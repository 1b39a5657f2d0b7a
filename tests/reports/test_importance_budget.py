"""Budget-aware importance on synthetic studies whose true ranking is known (no Ray, no Keras):
tunefleet/reports/synthetic_importance.py describes each scenario's truth."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from tunefleet.reports import build_study_report, load_study
from tunefleet.reports.fanova import Fanova, collect_fanova
from tunefleet.reports.importance import (EPOCH_AXIS, Importance, collect_importance,
                                          fanova_importance, hyperparameter_importance)
from tunefleet.reports.render import _importance_section
from tunefleet.reports.synthetic_importance import write_importance_study


def _importance(tmp_path, scenario, **kwargs) -> tuple[Importance, object]:
    study = load_study(write_importance_study(tmp_path, scenario, **kwargs))
    result = collect_importance(study)
    assert isinstance(result, Importance)
    assert len(result.names) == len(result.share) == len(result.std) == len(result.fanova)
    assert all(isinstance(v, float) for v in result.share)
    assert sum(result.share) == pytest.approx(1.0) or not result.names
    return result, study


def test_learning_rate_dominant_and_a_conditional_hyperparameter_second(tmp_path):
    result, _ = _importance(tmp_path, "learning_rate", trials=120, epochs=10)
    assert result.names[:2] == ["learning_rate", "units_2"]
    assert result.share[0] > 0.6 and result.share[1] > 0.05
    assert all(s < 0.02 for s in result.share[2:])
    assert result.caveat is None and result.surrogate_r2 > 0.8
    assert result.n_trials == 120 and result.n_epochs == 10 and result.n_rows == 1200
    # At the full budget: fANOVA agrees; units_2 is inactive when layers == 1, so Optuna's
    # evaluator cannot assess it, and the result says so rather than inventing a value.
    fanova = dict(zip(result.names, result.fanova, strict=True))
    assert result.fanova_leader == "learning_rate" and fanova["learning_rate"] > 0.6
    assert fanova["units_2"] is None and "units_2" in result.fanova_note
    assert result.n_completed == result.fanova_trials == 120 and result.at_epoch == 10
    # No searched budget: only the epoch axis, ranked apart.
    assert result.budget_names == [EPOCH_AXIS] and result.budget_fanova == [None]
    frame = result.as_frame()
    assert list(frame.columns) == ["hyperparameter", "importance", "std", "fanova", "budget"]
    assert frame["budget"].tolist() == [False] * len(result.names) + [True]


def test_epochs_dominant_is_flagged_as_budget(tmp_path):
    result, study = _importance(tmp_path, "epochs", trials=120, epochs=16)
    assert "epochs" in study.hyperparameters and "epochs" not in result.names
    assert result.budget_names == ["epochs", EPOCH_AXIS]
    training_length, epochs_fanova = result.budget_share[0], result.budget_fanova[0]
    assert training_length > 0.9 and epochs_fanova > 0.9
    assert all(f is None or f < 0.05 for f in result.fanova)  # every other one, at full budget
    # At a fixed epoch, what is left is the learning rate's small effect.
    assert result.names[0] == "learning_rate" and result.share[0] > 0.6
    assert result.at_epoch is None  # each completed trial trained its own epochs


def test_two_hyperparameters_that_only_matter_together(tmp_path):
    result, _ = _importance(tmp_path, "interaction", trials=120, epochs=8)
    assert set(result.names[:2]) == {"dropout", "weight_decay"}
    assert min(result.share[:2]) > 0.3 and all(s < 0.02 for s in result.share[2:])
    fanova = dict(zip(result.names, result.fanova, strict=True))
    assert min(fanova["dropout"], fanova["weight_decay"]) > 0.15
    assert all(v is None or v < 0.05 for k, v in fanova.items()
               if k not in ("dropout", "weight_decay"))
    # fANOVA's main effects leave the interaction out: a large part of the variance.
    assert result.fanova_main_effects < 0.8


def test_asha_ranks_every_epoch_not_only_the_first(tmp_path):
    result, study = _importance(tmp_path, "asha", trials=600, epochs=20)
    counts = study.trials["status"].value_counts()
    assert counts["stopped_by_scheduler"] == 578 and counts["completed"] == 22
    # What the first epoch says (every trial reached it): the learning rate, which only sets
    # how fast a trial learns. A ranking at one early epoch would stop there.
    first = study.history[study.history["epoch"] == 1].set_index("trial_id")
    early = hyperparameter_importance(study.trials.set_index("trial_id").loc[
        first.index, study.hyperparameters], first["val_accuracy"], study.log_scale)
    assert early.names[0] == "learning_rate" and early.share[0] > 0.7
    # At each epoch among the trials that reached it, dropout decides how good they end.
    assert result.names[:2] == ["dropout", "learning_rate"]
    assert result.share[0] > 0.6 and all(s < 0.05 for s in result.share[2:])
    assert result.n_epochs == 20 and result.n_rows == 600 + 200 * 2 + 66 * 6 + 22 * 11
    # 22 survivors for 6 hyperparameters fANOVA could assess (units_2 is conditional): too
    # few to separate them, and the report says so instead of printing fractions.
    assert result.n_completed == 22 and result.fanova_trials == 0
    assert result.fanova == [None] * len(result.names)
    assert isinstance(result.caveat, str)
    assert ("no fANOVA at the full budget: only 22 completed trials (it needs 24: at least 10, "
            "and 4 per hyperparameter it assesses); the ranking at each epoch still uses "
            "every trial") in result.caveat


def test_too_few_trials_say_so(tmp_path):
    # One trial: nothing is ranked, and the report says why and prints no method or table.
    one, _ = _importance(tmp_path, "learning_rate", trials=1, epochs=3, name="one")
    assert one.names == [] and one.budget_names == [] and one.n_trials == 1
    section = "\n".join(_importance_section(one, "![importance](importance.png)", "val_accuracy"))
    assert section == ("Caution: no importance computed: fewer than 3 scored trials.\n"
                       "{: .caveat}\n")
    # Eight trials: a ranking, flagged as a hint (on such studies an irrelevant
    # hyperparameter got up to 77% of the share), and no fANOVA.
    result, _ = _importance(tmp_path, "learning_rate", trials=8, epochs=3, name="eight")
    assert result.n_trials == 8 and result.fanova_trials == 0
    assert "only 8 scored trials (fewer than 20): the shares can be noise" in result.caveat
    assert "only 8 completed trials (it needs 24" in result.caveat


def test_fanova_declines_what_it_cannot_measure(tmp_path):
    study = load_study(write_importance_study(tmp_path, "learning_rate", trials=40, epochs=3))
    # Only a conditional hyperparameter varied: Optuna's evaluator cannot assess it.
    only_conditional = collect_fanova(study, ["units_2"])
    assert isinstance(only_conditional, Fanova) and only_conditional.n_trials == 0
    assert "every hyperparameter that varied (units_2) is inactive" in only_conditional.note
    assert only_conditional.value("units_2") is None
    # Every completed trial equally good: no variance to explain (Optuna would raise).
    study.trials["best_val_accuracy"] = 0.9
    flat = collect_fanova(study, ["learning_rate", "dropout"])
    assert flat.n_trials == 0 and flat.n_completed == 40
    assert "every completed trial has the same best val_accuracy, 0.9" in flat.note
    # Computed, with fewer than 10 completed trials per hyperparameter: said so.
    study.trials["best_val_accuracy"] = np.linspace(0.5, 0.9, 40)
    fan = collect_fanova(study, ["learning_rate", "dropout"])
    assert fan.n_trials == 40 and isinstance(fan.value("learning_rate"), float)
    assert fan.value("epoch") is None  # not asked about (the epoch axis is no hyperparameter)
    assert fan.note is None  # 20 per hyperparameter
    small = collect_fanova(study, [h for h in study.hyperparameters if h != "units_2"])
    assert small.n_trials == 40 and "40 completed trials for 6 hyperparameters" in small.note


def test_pbt_ranks_the_values_each_epoch_trained_with(tmp_path):
    result, study = _importance(tmp_path, "pbt", trials=40, epochs=12)
    assert study.experiment.scheduler.name == "pbt"
    # The learning rate PBT mutates matters most, dropout (fixed per trial) second; ranked by
    # the trials' first configurations instead, dropout came first in 5 seeds of 6 with an
    # out-of-sample R² of 0.04 to 0.30 (0.65 to 0.77 this way).
    assert result.names[:2] == ["learning_rate", "dropout"]
    assert result.share[0] > 0.5 and result.share[1] > 0.15
    assert all(s < 0.05 for s in result.share[2:]) and result.surrogate_r2 > 0.5
    assert "pbt changed learning_rate while trials trained" in result.caveat
    # fANOVA cannot give a trial one learning rate: left out, and the note says why.
    fanova = dict(zip(result.names, result.fanova, strict=True))
    assert result.fanova_trials == 40 and fanova["learning_rate"] is None
    assert isinstance(fanova["dropout"], float)
    assert "fANOVA leaves out learning_rate: pbt changed it while" in result.fanova_note


def test_fanova_weighs_a_log_scale_hyperparameter_in_log_space():
    # The objective moves only over the lowest decade of the learning rate (1e-4..1e-3), a
    # third of its log range but 1% of its raw range; momentum has a steady, smaller effect.
    rng = np.random.default_rng(0)
    n = 200
    configs = pd.DataFrame({"learning_rate": 10 ** rng.uniform(-4, -1, n),
                            "momentum": rng.uniform(0, 1, n)})
    low_decade = np.clip(-3 - np.log10(configs["learning_rate"]), 0, None)
    objective = 0.9 - 0.3 * low_decade - 0.05 * configs["momentum"]
    fractions, used, conditional = fanova_importance(
        configs, objective, {"learning_rate": "log", "momentum": "linear"},
        {"learning_rate": (1e-4, 1e-1)})
    assert used == n and conditional == []
    assert fractions["learning_rate"] > 0.8 > fractions["momentum"]


def test_fanova_without_optuna_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"fANOVA importance needs optuna: pip install optuna"):
        fanova_importance(pd.DataFrame({"a": [1.0, 2.0]}), pd.Series([0.1, 0.2]), {})
    result, _ = _importance(tmp_path, "learning_rate", trials=40, epochs=4)
    assert result.fanova_trials == 0 and "no fANOVA: fANOVA importance needs optuna" in result.caveat
    assert result.names[0] == "learning_rate"


def test_report_says_which_method_and_what_budget_means(tmp_path):
    path = write_importance_study(tmp_path, "epochs", trials=60, epochs=8)
    report = build_study_report(path, evaluate=False)
    text = (report.out_dir / "report.md").read_text()
    section = text[text.index("## Which hyperparameters mattered"):text.index("Objective against")]
    phrases = ("(configuration, epoch)", "shuffled among the trials that reached the same",
               "fANOVA, Optuna's evaluator", "completed trials", "**Budget**", "epoch axis",
               "`epochs` is shuffled together with it", "| share at each epoch",
               "| fANOVA at full budget", "Fractions are of the whole variance, `epochs` included",
               "| training length", "Note: fANOVA leaves out units_2", "| units_2 ")
    for phrase in phrases:
        assert phrase in section, phrase
    assert "nan" not in section.lower()  # what fANOVA did not assess shows a dash
    table = pd.read_csv(report.out_dir / "importance.csv")
    assert table["hyperparameter"].tolist()[-2:] == ["epochs", EPOCH_AXIS]
    assert table["budget"].tolist()[-2:] == [True, True] and not table["budget"].iloc[0]
    again = collect_importance(load_study(path))  # seeded: the same numbers again
    assert again.share == report.importance.share and again.fanova == report.importance.fanova


@pytest.mark.parametrize("scenario, match", [
    ("lr", r"scenario: unknown 'lr'; use one of learning_rate, epochs, interaction, asha, pbt"),
])
def test_unknown_scenario_names_the_valid_ones(tmp_path, scenario, match):
    with pytest.raises(ValueError, match=match):
        write_importance_study(tmp_path, scenario)
