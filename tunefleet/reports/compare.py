"""Several studies compared at equal budget: per study its best objective once the budget was
spent, per variant (the seeds of one setting) means with bootstrap intervals, per pair of
variants a rank test, and a verdict that says "no significant difference" when there is none.

The budget is the studies' own ``search.budget`` when they share one (a comparison spec gives
every variant the same); otherwise the comparison reads every study at the most epochs all of
them trained. Each study is read *at* the budget, from its results in the order they arrived:
results after it (trials that reported while the study stopped them) do not count. Numbers
are computed here (``collect_comparison``), the verdict in compare_verdict.py; drawing is
compare_plots.py's, the Markdown compare_render.py's, the statistics comparison_stats.py's."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from ..search_spaces.convert import grid_size
from ..spec import SpecError
from ..spec.budget import BUDGET_UNITS
from . import comparison_stats as cs
from .figures import Anytime, best_so_far
from .compare_verdict import verdict
from .load import StudyData, load_study

__all__ = ["Comparison", "Budget", "Band", "collect_comparison", "build_comparison_report",
           "MIN_SEEDS", "ALPHA"]

MIN_SEEDS = 3  # fewer seeds per variant: a warning in the run's output and in the report
ALPHA = 0.05  # significance level of the rank tests (after Holm's adjustment)
BAND_POINTS = 200
_AXES = {"epochs": "epochs trained in total", "trials": "trials started", "wall_s": "wall time (s)"}
# Per study and per variant: the trials that trained at least one epoch. A study its budget
# stopped also lists trials Ray had created but never ran (stopped by the study, 0 epochs).
TRIALS_TRAINED = "trials trained"


@dataclass
class Budget:
    """The budget every study is read at: ``unit`` (epochs, trials, wall_s) and ``amount``;
    ``declared``: the studies' own ``search.budget`` (else the least any of them spent)."""

    unit: str
    amount: float
    declared: bool

    def describe(self) -> str:
        return f"{self.amount:g} {BUDGET_UNITS[self.unit]}"

    @property
    def axis(self) -> str:
        return _AXES[self.unit]


@dataclass
class Band:
    """A variant's anytime curve over its seeds: the mean best-so-far at each ``x`` and its 95%
    bootstrap band (NaN where a seed had no result yet; no band for one seed)."""

    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: int


@dataclass
class Comparison:
    """Everything the comparison report shows, computed once."""

    table: pd.DataFrame  # one row per study
    variants: pd.DataFrame  # one row per variant (its seeds' statistics)
    pairs: pd.DataFrame  # one row per pair of variants: rank tests on validation and test
    verdict: str
    budget: Budget
    objective: str
    mode: str
    target: float
    alpha: float
    groups: dict[str, list[Anytime]]  # per variant, each seed's anytime curve
    bands: dict[str, Band] = field(default_factory=dict)  # against the budget's unit
    wall_bands: dict[str, Band] = field(default_factory=dict)  # against wall time
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # grids cut by the budget, budgets unspent
    test_metric: Optional[str] = None  # accuracy or rmse: each seed's best model on test data
    # Per variant, each seed's best at the budget and its test score (the figure's points).
    seed_values: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def best_column(self) -> str:
        return f"best {self.objective}"


@dataclass
class _Run:
    """One study's results in the order they arrived, with what had been spent at each."""

    elapsed: np.ndarray
    epochs: np.ndarray
    trials: np.ndarray
    best: np.ndarray

    def axis(self, unit: str) -> np.ndarray:
        return {"epochs": self.epochs, "trials": self.trials, "wall_s": self.elapsed}[unit]


def _run(study: StudyData) -> _Run:
    h = study.history
    if h.empty:
        empty = np.array([], dtype=float)
        return _Run(empty, empty, empty, empty)
    order = np.argsort(h["elapsed_s"].to_numpy(dtype=float), kind="stable")
    ids = h["trial_id"].to_numpy()[order]
    trained = (h["epochs_run"].to_numpy(dtype=float) if "epochs_run" in h
               else np.ones(len(h)))[order]  # executions and repeated epochs counted
    values = (h[study.objective].to_numpy(dtype=float)[order] if study.objective in h
              else np.full(len(h), math.nan))
    first = ~pd.Series(ids).duplicated().to_numpy()
    return _Run(h["elapsed_s"].to_numpy(dtype=float)[order], np.cumsum(trained),
                np.cumsum(first).astype(float), best_so_far(values, study.mode))


def _trained(study: StudyData) -> pd.DataFrame:
    """The study's trials that trained at least one epoch (not those created but never run)."""
    return study.trials[study.trials["epochs_trained"].fillna(0).astype(int) > 0]


def _test_score(study: StudyData) -> tuple[Optional[str], Optional[float]]:
    path = study.path / "report" / "test_metrics.json"
    if not path.exists():
        return None, None
    metrics = json.loads(path.read_text())["metrics"]
    key = "accuracy" if "accuracy" in metrics else "rmse"
    return key, metrics.get(key)


def _most_important(study: StudyData) -> Optional[str]:
    path = study.path / "report" / "importance.csv"
    if not path.exists():
        return None
    table = pd.read_csv(path)
    if "budget" in table:  # budget-like hyperparameters (epochs) are ranked apart
        table = table[~table["budget"].astype(bool)]
    if table.empty or not {"hyperparameter", "importance"} <= set(table.columns):
        return None
    return f"{table.iloc[0]['hyperparameter']} ({table.iloc[0]['importance']:.0%})"


def _common_budget(studies: Sequence[StudyData], runs: Sequence[_Run]) -> Budget:
    declared = [b for b in (s.experiment.search.budget for s in studies) if b is not None]
    if len(declared) == len(studies) and len({b.unit for b in declared}) == 1:
        return Budget(declared[0].unit, min(b.amount for b in declared), True)
    spent = [float(r.epochs[-1]) for r in runs if len(r.epochs)]
    return Budget("epochs", min(spent) if spent else 0.0, False)


def _worst(values: Sequence[float], mode: str) -> float:
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return math.nan
    return float(min(finite) if mode == "max" else max(finite))


def _grid_note(label: str, studies: list[StudyData], budget: Budget) -> Optional[str]:
    """What the budget did to a grid: cut it (a seeded random subset) or repeated it."""
    grids = [s for s in studies if s.experiment.search.algorithm == "grid"
             and s.experiment.model.hypermodel is None]
    if not grids or not budget.declared:
        return None
    size = grid_size(grids[0].experiment)
    trained = [_trained(s) for s in grids]
    ran = [len(t[s.hyperparameters].astype(str).drop_duplicates()) if s.hyperparameters
           else min(len(t), 1) for s, t in zip(grids, trained, strict=True)]
    counts = f"{min(ran)}" if min(ran) == max(ran) else f"{min(ran)}–{max(ran)}"
    if max(ran) < size:
        return (f"{label}: the budget ({budget.describe()}) ran {counts} of the grid's {size} "
                "configurations per seed, truncated in an order drawn at random from each "
                "seed, not the grid's own")
    trials = [len(t) for t in trained]
    if max(trials) > size:
        return (f"{label}: the budget ({budget.describe()}) ran the whole grid of {size} "
                f"configurations and repeated it ({max(trials)} trials at most), each pass in a "
                "new random order")
    return None


def collect_comparison(studies: Sequence[StudyData], target: Optional[float] = None,
                       labels: Optional[Sequence[str]] = None, alpha: float = ALPHA,
                       seed: int = 0) -> Comparison:
    """Read every study at the common budget and compare the variants. ``labels`` names each
    study's variant (default: its searcher + scheduler); studies with the same label are its
    seeds. ``target`` (for 'epochs/time to target') defaults to the worst of the studies'
    values at the budget, which every study reaches. ``seed``: of the bootstrap resampling."""
    if not studies:
        raise SpecError("studies", "nothing to compare", fix="pass two or more study directories")
    objective, mode = studies[0].objective, studies[0].mode
    mismatched = [s.path.name for s in studies if (s.objective, s.mode) != (objective, mode)]
    if mismatched:
        raise SpecError(", ".join(mismatched), f"these studies optimise a different objective "
                        f"than {studies[0].path.name} ({objective}, {mode})",
                        fix="compare studies with the same objective metric and mode")
    if labels is not None and len(labels) != len(studies):
        raise SpecError("labels", f"one per study: {len(studies)} studies, {len(labels)} labels")
    labels = list(labels) if labels is not None else [
        f"{s.experiment.search.algorithm} + {s.experiment.scheduler.name}" for s in studies]
    runs = [_run(s) for s in studies]
    budget = _common_budget(studies, runs)
    at_budget = [cs.value_at(r.axis(budget.unit), r.best, budget.amount) for r in runs]
    if target is None:
        target = _worst(at_budget, mode)
    floor = _worst([v for r in runs for v in r.best[r.axis(budget.unit) <= budget.amount]], mode)
    unit_to_target = "time to target (s)" if budget.unit == "wall_s" else f"{budget.unit} to target"

    rows: list[dict[str, Any]] = []
    groups: dict[str, list[Anytime]] = {}
    members: dict[str, list[int]] = {}
    test_key: Optional[str] = None
    for i, (study, run, label) in enumerate(zip(studies, runs, labels, strict=True)):
        exp = study.experiment
        x = run.axis(budget.unit)
        groups.setdefault(label, []).append(
            Anytime(exp.name, objective, mode, run.elapsed, run.epochs, run.best))
        members.setdefault(label, []).append(i)
        key, test_value = _test_score(study)
        test_key = test_key or key
        inside = x <= budget.amount
        overall = float(run.best[-1]) if len(run.best) else math.nan
        rows.append({
            "study": exp.name, "variant": label, "search": exp.search.algorithm,
            "scheduler": exp.scheduler.name, "seed": exp.search.seed,
            TRIALS_TRAINED: len(_trained(study)),
            f"best {objective}": at_budget[i],
            f"test {key or 'metric'}": test_value,
            "wall time (s)": study.summary.get("wall_time_s", float(run.elapsed.max())
                                               if len(run.elapsed) else None),
            "epochs": study.epochs_run,  # trained: executions and repeated epochs counted
            "spent": float(x[-1]) if len(x) else 0.0,
            "time to target (s)": cs.first_reach(run.elapsed, run.best, target, mode,
                                                 limit=float(run.elapsed[inside][-1])
                                                 if inside.any() else -math.inf),
            **({} if budget.unit == "wall_s" else {unit_to_target: cs.first_reach(
                x, run.best, target, mode, limit=budget.amount)}),
            "AUC": cs.area_under(x, run.best, budget.amount, floor),
            # The study's best model (the one evaluated on test data) came within the budget.
            "best within budget": bool(np.isfinite(overall) and overall == at_budget[i]),
            "most important": _most_important(study),
        })
    table = pd.DataFrame(rows)
    for column in ("epochs", TRIALS_TRAINED, "seed"):
        table[column] = table[column].astype(int)
    test_column = f"test {test_key or 'metric'}"
    if test_column not in table:
        table[test_column] = np.nan
    table = table.drop(columns=[c for c in table.columns if c.startswith("test ") and c != test_column])

    variants, seed_values = _variant_rows(table, members, objective, test_column,
                                          unit_to_target, seed)
    pairs = _pair_rows(seed_values, mode, test_key)
    comparison = Comparison(
        table=table, variants=variants, pairs=pairs, verdict="", budget=budget,
        objective=objective, mode=mode, target=float(target), alpha=alpha, groups=groups,
        test_metric=test_key, seed_values=seed_values)
    comparison.warnings = _warnings(comparison)
    comparison.notes = [n for n in (_grid_note(label, [studies[i] for i in idx], budget)
                                    for label, idx in members.items()) if n]
    comparison.notes += _unspent(table, budget)
    comparison.bands, comparison.wall_bands = _bands(runs, members, budget, seed)
    comparison.verdict = verdict(comparison)
    return comparison


def _variant_rows(table: pd.DataFrame, members: dict[str, list[int]], objective: str,
                  test_column: str, unit_to_target: str, seed: int
                  ) -> tuple[pd.DataFrame, dict[str, dict[str, list[float]]]]:
    rows, values = [], {}
    for label, idx in members.items():
        part = table.iloc[idx]
        best = part[f"best {objective}"].astype(float).tolist()
        test = part[test_column].astype(float).tolist()
        reach = part[unit_to_target].astype(float)
        low, high = cs.bootstrap_interval(best, seed)
        test_low, test_high = cs.bootstrap_interval(test, seed)
        reach_low, reach_high = cs.bootstrap_interval(reach.tolist(), seed)
        values[label] = {"best": best, "test": test}
        first = part.iloc[0]
        rows.append({
            "variant": label, "search": first["search"], "scheduler": first["scheduler"],
            "seeds": len(idx), "mean": float(np.nanmean(best)) if np.isfinite(best).any() else math.nan,
            "low": low, "high": high, "IQM": cs.iqm(best),
            "reached target": f"{int(reach.notna().sum())}/{len(idx)}",
            "to target": float(reach.mean()) if reach.notna().any() else math.nan,
            "to target low": reach_low, "to target high": reach_high,
            "AUC": float(part["AUC"].mean()),
            "test": float(np.nanmean(test)) if np.isfinite(test).any() else math.nan,
            "test low": test_low, "test high": test_high,
            "spent": float(part["spent"].mean()), TRIALS_TRAINED: float(part[TRIALS_TRAINED].mean()),
            "wall time (s)": float(part["wall time (s)"].astype(float).mean()),
        })
    return pd.DataFrame(rows), values


def _pair_rows(values: dict[str, dict[str, list[float]]], mode: str,
               test_key: Optional[str]) -> pd.DataFrame:
    labels = list(values)
    test_mode = "min" if test_key == "rmse" else "max"
    rows = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            valid = cs.rank_test(values[a]["best"], values[b]["best"], mode)
            test = cs.rank_test(values[a]["test"], values[b]["test"], test_mode)
            rows.append({
                "A": a, "B": b,
                "P(A beats B)": valid.p_beats if valid else math.nan,
                "U": valid.u if valid else math.nan, "p": valid.p if valid else math.nan,
                "smallest possible p": cs.smallest_p(valid.n_a, valid.n_b) if valid else math.nan,
                "P(A beats B) on test": test.p_beats if test else math.nan,
                "p on test": test.p if test else math.nan})
    frame = pd.DataFrame(rows, columns=["A", "B", "P(A beats B)", "U", "p", "smallest possible p",
                                        "P(A beats B) on test", "p on test"])
    frame["p (Holm)"] = cs.holm(frame["p"].tolist()) if len(frame) else []
    frame["p on test (Holm)"] = cs.holm(frame["p on test"].tolist()) if len(frame) else []
    return frame


def _warnings(c: Comparison) -> list[str]:
    out = []
    few = c.variants[c.variants["seeds"] < MIN_SEEDS]
    for _, row in few.iterrows():
        n = int(row["seeds"])
        out.append(f"{row['variant']} ran {n} seed{'s' if n != 1 else ''} (fewer than "
                   f"{MIN_SEEDS}): " + ("no interval and no rank test can be computed" if n == 1
                                       else "its interval and rank tests rest on too few runs")
                   + "; give the comparison seeds: [0, 1, 2] or more")
    if c.test_metric is None:
        out.append("no study was evaluated on its held-out test split (report/test_metrics.json)"
                   ": the comparison rests on validation results alone")
    return out


def _unspent(table: pd.DataFrame, budget: Budget) -> list[str]:
    """Studies that ended with budget left (their search ran out, or failures stopped them):
    their values at the budget are those they ended with."""
    if not budget.declared or budget.unit == "wall_s":  # a clock's last result is always earlier
        return []
    short = table[table["spent"] < budget.amount]
    return [f"{row['study']} spent {row['spent']:g} of {budget.describe()}: it ended first (its "
            "search ran out, or its trials failed or were stopped), so its value at the budget is "
            "its last one" for _, row in short.iterrows()]


def _bands(runs: Sequence[_Run], members: dict[str, list[int]], budget: Budget, seed: int
           ) -> tuple[dict[str, Band], dict[str, Band]]:
    bands: dict[str, Band] = {}
    wall: dict[str, Band] = {}
    wall_end = max((float(r.elapsed[-1]) for r in runs if len(r.elapsed)), default=0.0)
    for label, idx in members.items():
        for out, unit, end in ((bands, budget.unit, budget.amount), (wall, "wall_s", wall_end)):
            if unit == "wall_s" and out is wall and budget.unit == "wall_s":
                continue  # one panel when the budget is the clock
            grid = np.linspace(0.0, end, BAND_POINTS)
            curves = []
            for i in idx:
                x, best = runs[i].axis(unit), runs[i].best
                where = np.searchsorted(x, grid, side="right") - 1
                curves.append(np.where(where >= 0, best[np.clip(where, 0, None)], np.nan)
                              if len(x) else np.full(len(grid), np.nan))
            mean, low, high = cs.mean_band(np.array(curves), seed)
            out[label] = Band(grid, mean, low, high, len(idx))
    return bands, wall


def build_comparison_report(paths: Sequence[str | Path | StudyData], out_dir: str | Path,
                            target: Optional[float] = None, title: str = "Comparison",
                            labels: Optional[Sequence[str]] = None,
                            alpha: float = ALPHA) -> Comparison:
    """Load each study (or take it as loaded already), compare them, and write
    comparison.csv (per study), variants.csv, pairs.csv, comparison.json (budget, verdict,
    warnings), anytime.png, bests.png, report.md and report.html."""
    from .compare_plots import plot_comparison_bests, plot_comparison_curves
    from .compare_render import comparison_markdown
    from .render import write_comparison_documents

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    studies = [p if isinstance(p, StudyData) else load_study(p) for p in paths]
    comparison = collect_comparison(studies, target, labels=labels, alpha=alpha)
    comparison.table.to_csv(out / "comparison.csv", index=False)
    comparison.variants.to_csv(out / "variants.csv", index=False)
    comparison.pairs.to_csv(out / "pairs.csv", index=False)
    (out / "comparison.json").write_text(json.dumps({
        "budget": {"unit": comparison.budget.unit, "amount": comparison.budget.amount,
                   "declared": comparison.budget.declared},
        "objective": comparison.objective, "mode": comparison.mode,
        "target": comparison.target if np.isfinite(comparison.target) else None,
        "alpha": comparison.alpha, "verdict": comparison.verdict,
        "warnings": comparison.warnings, "notes": comparison.notes}, indent=2))
    plot_comparison_curves(comparison, out / "anytime.png")
    plot_comparison_bests(comparison, out / "bests.png")
    write_comparison_documents(title, comparison_markdown(comparison, title), out)
    return comparison
