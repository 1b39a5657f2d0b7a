"""Comparisons at equal budget on synthetic studies whose answer is known (no Ray, no Keras):
values read at the budget, intervals over seeds, rank tests, the verdict, and the notes a
budget calls for (a grid cut short, too few seeds)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from tunefleet.reports import build_comparison_report, collect_comparison, load_study
from tunefleet.reports.compare import Band, Budget, Comparison
from tunefleet.reports.compare_verdict import verdict
from tunefleet.reports.synthetic import GRID_SPACE, write_synthetic_study
from tunefleet.spec.budget import SEARCH_BUDGET_SPENT


def _variants(tmp_path, spec: dict[str, dict], seeds: int, budget=None, **common):
    """Studies named <variant>_<seed>; ``spec``: per variant, write_synthetic_study's options."""
    paths, labels = [], []
    for v, (label, options) in enumerate(spec.items()):
        for s in range(seeds):
            paths.append(write_synthetic_study(tmp_path, name=f"{label}_{s}", seed=100 * v + s,
                                               budget=budget, **{**common, **options}))
            labels.append(label)
    return paths, labels


def test_a_better_variant_wins_at_equal_budget(tmp_path):
    """Five seeds each, one variant 0.05 better everywhere: it beats the other in every pair of
    seeds, the exact rank test gives 2/C(10,5), and the verdict names it."""
    paths, labels = _variants(tmp_path, {"better": {"offset": 0.05}, "plain": {}}, seeds=5,
                              budget={"epochs": 60}, trials=40, epochs=6, cut_fraction=0.0,
                              test_metrics=True)
    c = build_comparison_report(paths, tmp_path / "cmp", labels=labels)
    assert isinstance(c, Comparison) and c.budget == Budget("epochs", 60.0, True)
    table = c.table
    assert (table["spent"] == 60).all() and (table["epochs"] == 60).all()  # equal budgets
    assert table["epochs"].dtype.kind == "i"
    variants = c.variants.set_index("variant")
    assert variants.loc["better", "seeds"] == 5
    for label in ("better", "plain"):
        row = variants.loc[label]
        assert row["low"] <= row["mean"] <= row["high"] and row["low"] < row["high"]
        assert row["test low"] <= row["test"] <= row["test high"]
        assert row["reached target"] == "5/5"
    assert variants.loc["better", "mean"] - variants.loc["plain", "mean"] == pytest.approx(0.05, abs=0.02)
    pair = c.pairs.iloc[0]
    assert (pair["A"], pair["B"], pair["P(A beats B)"]) == ("better", "plain", 1.0)
    assert pair["p"] == pytest.approx(2 / 252) and pair["p (Holm)"] == pytest.approx(2 / 252)
    assert pair["P(A beats B) on test"] == 1.0
    assert c.verdict.startswith("better is best at 60 epochs: it beats every other variant")
    assert "P(better beats plain) = 1.00, p = 0.00794" in c.verdict
    assert "On the held-out test split (each seed's best model), test accuracy: better " in c.verdict
    assert c.warnings == [] and c.notes == []
    # Written: per study, per variant, per pair, and the verdict with the budget.
    out = tmp_path / "cmp"
    assert len(pd.read_csv(out / "comparison.csv")) == 10
    assert list(pd.read_csv(out / "variants.csv")["variant"]) == ["better", "plain"]
    assert len(pd.read_csv(out / "pairs.csv")) == 1
    saved = json.loads((out / "comparison.json").read_text())
    assert saved["verdict"] == c.verdict and saved["budget"] == {"unit": "epochs", "amount": 60.0,
                                                                  "declared": True}
    text = (out / "report.md").read_text()
    assert "Compared at **60 epochs**: every variant ran until this budget was spent" in text
    for name in ("anytime.png", "bests.png", "report.html"):
        assert (out / name).stat().st_size > 0
    # Bands: the mean over seeds on the budget's axis, within its bootstrap band.
    band = c.bands["better"]
    assert isinstance(band, Band) and band.n == 5 and band.x[-1] == 60.0
    ok = np.isfinite(band.low)
    assert ok[-1] and (band.low[ok] <= band.mean[ok] + 1e-12).all()
    assert (band.mean[ok] <= band.high[ok] + 1e-12).all()
    assert set(c.wall_bands) == {"better", "plain"}


def test_variants_that_tie_are_named_together_and_none_is_best(tmp_path):
    """a and b ran the same seeds (equal means at the budget, as 0.9824 and 0.9824 on digits),
    c is 0.1 worse: the verdict names a and b as tied, calls neither best, and says that both
    beat c. Means a float rounding apart still tie; a real lead does not."""
    studies, labels = [], []
    for label, offset, seed0 in (("a", 0.0, 0), ("b", 0.0, 0), ("c", -0.1, 50)):
        for s in range(5):
            studies.append(load_study(write_synthetic_study(
                tmp_path, name=f"{label}_{s}", seed=seed0 + s, budget={"epochs": 24}, trials=12,
                epochs=4, cut_fraction=0.0, offset=offset)))
            labels.append(label)
    c = collect_comparison(studies, labels=labels)
    means = c.variants.set_index("variant")["mean"]
    assert means["a"] == means["b"] and means["c"] < means["a"]
    assert isinstance(c.verdict, str)
    assert c.verdict.startswith("a and b tie at 24 epochs: their mean val_accuracy is the same, "
                                "so none of them is best. Each of them beats every other variant "
                                "at the 5% level")
    assert "is best at" not in c.verdict and "leads" not in c.verdict
    assert f"(mean over seeds, 95% bootstrap interval): a {means['a']:.4f}" in c.verdict
    assert "P(a beats c) = 1.00, p = 0.00794 (Holm 0.0238), P(b beats c) = 1.00" in c.verdict
    # A difference in the last bits (a mean summed in another order) is still a tie.
    c.variants.loc[c.variants["variant"] == "b", "mean"] = means["b"] + 1e-15
    assert verdict(c).startswith("a and b tie at 24 epochs")
    # A lead, even one the seeds cannot establish, is not: b leads, without beating a.
    c.variants.loc[c.variants["variant"] == "b", "mean"] = means["b"] + 0.01
    text = verdict(c)
    assert text.startswith("b beats c at 24 epochs") and "no significant difference from a" in text
    assert "tie" not in text


def test_the_trials_column_counts_trials_that_trained(tmp_path):
    """A study its budget stopped also lists trials Ray had created but never ran (stopped by
    the study, 0 epochs): the comparison counts only the trials that trained an epoch, and its
    column says so."""
    paths = [write_synthetic_study(tmp_path, name=f"s{i}", seed=i, budget={"epochs": 12},
                                   trials=20, epochs=3, cut_fraction=0.0, unstarted=unstarted)
             for i, unstarted in enumerate((3, 0))]
    study = load_study(paths[0])
    never = study.trials[study.trials["epochs_trained"] == 0]
    assert len(study.trials) == 7 and len(never) == 3
    assert (never["status"] == "stopped_by_study").all()
    why = SEARCH_BUDGET_SPENT.format("12 epochs")
    assert never["reason"].tolist() == [f"{why}, before its first epoch"] * 3
    assert study.summary["stopped"] == why
    c = build_comparison_report([study, load_study(paths[1])], tmp_path / "cmp", labels=["x", "y"])
    assert "trials" not in c.table and "trials" not in c.variants
    assert c.table["trials trained"].tolist() == [4, 4]
    assert c.table["trials trained"].dtype.kind == "i"
    assert c.variants.set_index("variant").loc["x", "trials trained"] == 4.0
    assert "trials trained: the trials that trained at least one epoch" in (
        tmp_path / "cmp" / "report.md").read_text()


def test_equal_variants_with_three_seeds_are_no_significant_difference(tmp_path):
    paths, labels = _variants(tmp_path, {"a": {}, "b": {}}, seeds=3, budget={"epochs": 40},
                              trials=30, epochs=5)
    c = collect_comparison([load_study(p) for p in paths], labels=labels)
    assert c.verdict.startswith("No significant difference between the variants at 40 epochs")
    # Three seeds cannot reach the 5% level: said, with how many would.
    assert "cannot give p below 0.10" in c.verdict and "run 4 or more seeds" in c.verdict
    assert c.pairs.loc[0, "smallest possible p"] == pytest.approx(0.1)
    assert any("no study was evaluated on its held-out test split" in w for w in c.warnings)


def test_results_after_the_budget_do_not_count(tmp_path):
    """A trial that reported after the budget was spent (it was still running when the study
    stopped it): its result is in the study, but not in the value at the budget."""
    path = write_synthetic_study(tmp_path, name="late", trials=20, epochs=4, cut_fraction=0.0,
                                 budget={"epochs": 30})
    other = write_synthetic_study(tmp_path, name="other", trials=20, epochs=4, cut_fraction=0.0,
                                  budget={"epochs": 30}, seed=1)
    before = collect_comparison([load_study(path), load_study(other)])
    last = sorted(path.glob("trial_*/result.json"))[-1]
    rows = [json.loads(line) for line in last.read_text().splitlines() if line.strip()]
    rows.append({**rows[-1], "epoch": rows[-1]["epoch"] + 1, "val_accuracy": 0.999,
                 "timestamp": rows[-1]["timestamp"] + 1.0, "time_total_s": rows[-1]["time_total_s"] + 1})
    last.write_text("".join(json.dumps(r) + "\n" for r in rows))
    after = collect_comparison([load_study(path), load_study(other)])
    row = after.table.set_index("study").loc["late"]
    assert row["spent"] == 31.0 and row["epochs"] == 31
    assert row["best val_accuracy"] == before.table.set_index("study").loc["late", "best val_accuracy"]
    assert row["best val_accuracy"] < 0.999 and not row["best within budget"]
    assert isinstance(row["best within budget"], (bool, np.bool_))


def test_a_grid_larger_than_the_budget_is_cut_at_random_and_the_report_says_so(tmp_path):
    paths, labels = _variants(tmp_path, {"grid": {"search": "grid"}, "random": {}}, seeds=3,
                              budget={"epochs": 40}, trials=100, epochs=4, cut_fraction=0.0)
    c = build_comparison_report(paths, tmp_path / "cmp", labels=labels)
    size = int(np.prod([len(v) for v in GRID_SPACE.values()]))
    assert c.notes == [(f"grid: the budget (40 epochs) ran 10 of the grid's {size} configurations "
                       "per seed, truncated in an order drawn at random from each seed, not the "
                       "grid's own")]
    assert "- grid: the budget (40 epochs) ran 10 of the grid" in (tmp_path / "cmp" / "report.md").read_text()
    # Different seeds ran different parts of the grid.
    firsts = {json.dumps(json.loads(next(p.glob("trial_*00000/params.json")).read_text())["learning_rate"])
              + str(len(list(p.glob("trial_*")))) for p in paths[:3]}
    assert len(firsts) > 1


def test_fewer_than_three_seeds_are_warned_about(tmp_path):
    paths, labels = _variants(tmp_path, {"a": {}, "b": {"offset": 0.1}}, seeds=1,
                              budget={"trials": 8}, trials=8, epochs=3, test_metrics=True)
    c = build_comparison_report(paths, tmp_path / "cmp", labels=labels)
    assert [w.split(":")[0] for w in c.warnings] == ["a ran 1 seed (fewer than 3)",
                                                     "b ran 1 seed (fewer than 3)"]
    assert "no interval and no rank test can be computed" in c.warnings[0]
    assert math.isnan(c.variants.loc[0, "low"])
    assert "Warning: a ran 1 seed" in (tmp_path / "cmp" / "report.md").read_text()
    assert "cannot give p below 1.00" in c.verdict


def test_budgets_of_trials_and_of_seconds_set_the_axis(tmp_path):
    paths, labels = _variants(tmp_path, {"a": {}, "b": {}}, seeds=2, budget={"trials": 10},
                              trials=50, epochs=3)
    c = collect_comparison([load_study(p) for p in paths], labels=labels)
    assert c.budget == Budget("trials", 10.0, True) and (c.table["trials trained"] == 10).all()
    assert (c.table["spent"] == 10).all() and "trials to target" in c.table
    assert c.bands["a"].x[-1] == 10.0
    paths, labels = _variants(tmp_path / "clock", {"a": {}, "b": {}}, seeds=2,
                              budget={"wall_s": 1.5}, trials=200, epochs=3)
    c = collect_comparison([load_study(p) for p in paths], labels=labels)
    assert c.budget == Budget("wall_s", 1.5, True) and c.budget.describe() == "1.5 s"
    assert "wall_s to target" not in c.table and (c.table["time to target (s)"] <= 1.5).all()
    assert c.wall_bands == {} and c.bands["b"].x[-1] == 1.5  # one axis: the clock


def test_studies_without_a_budget_are_read_at_the_least_any_trained(tmp_path):
    small = write_synthetic_study(tmp_path, name="small", trials=5, epochs=4, cut_fraction=0.0)
    large = write_synthetic_study(tmp_path, name="large", trials=20, epochs=4, cut_fraction=0.0,
                                  seed=1)
    c = build_comparison_report([small, large], tmp_path / "cmp")
    assert c.budget == Budget("epochs", 20.0, False)
    assert list(c.variants["variant"]) == ["random + asha"]  # grouped by searcher + scheduler
    assert "no budget was declared" in (tmp_path / "cmp" / "report.md").read_text()
    assert c.verdict.startswith("One variant (random + asha)")


def test_holm_over_several_pairs_is_said_to_need_more_seeds(tmp_path):
    """Four seeds reach p = 0.029 for one pair, but Holm over three pairs triples it: the
    verdict says how many seeds three variants need instead of calling a winner."""
    paths, labels = _variants(tmp_path, {"a": {"offset": 0.05}, "b": {}, "c": {"offset": -0.05}},
                              seeds=4, budget={"epochs": 20}, trials=20, epochs=4, cut_fraction=0.0)
    c = collect_comparison([load_study(p) for p in paths], labels=labels)
    assert list(c.pairs["P(A beats B)"]) == [1.0, 1.0, 1.0]
    assert c.pairs["p"].tolist() == pytest.approx([2 / 70] * 3)
    assert c.pairs["p (Holm)"].tolist() == pytest.approx([6 / 70] * 3)
    assert c.verdict.startswith("No significant difference between the variants at 20 epochs")
    assert ("the rank test over 3 pairs cannot give p below 0.09, so no difference can be "
            "significant at the 5% level: run 5 or more seeds per variant") in c.verdict


def test_a_variant_whose_trials_all_failed_is_named_not_ranked(tmp_path):
    a = write_synthetic_study(tmp_path, name="a", trials=5, epochs=3, budget={"epochs": 10})
    b = write_synthetic_study(tmp_path, name="b", trials=5, epochs=3, seed=1, budget={"epochs": 10})
    for results in b.glob("trial_*/result.json"):
        results.write_text("")
    c = build_comparison_report([a, b], tmp_path / "cmp", labels=["a", "b"])
    assert "b: no val_accuracy at the budget (no trial scored)" in c.verdict
    assert c.notes == [("b spent 0 of 10 epochs: it ended first (its search ran out, or its trials "
                       "failed or were stopped), so its value at the budget is its last one")]
    assert math.isnan(c.table.set_index("study").loc["b", "best val_accuracy"])
