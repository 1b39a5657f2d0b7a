"""The comparison report's Markdown, from a collected :class:`~.compare.Comparison`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .compare import TRIALS_TRAINED, Comparison
from .comparison_stats import CONFIDENCE
from .render import _esc, _table

__all__ = ["comparison_markdown"]


def _cell(value: float, low: float, high: float, digits: int = 4) -> str:
    if not np.isfinite(value):
        return "–"
    text = f"{value:.{digits}f}"
    return text + (f" ({low:.{digits}f}–{high:.{digits}f})" if np.isfinite(low) else "")


def _variants_table(c: Comparison) -> pd.DataFrame:
    v = c.variants
    unit = "s" if c.budget.unit == "wall_s" else c.budget.unit
    digits = 1 if c.budget.unit == "wall_s" else 0
    out = pd.DataFrame({
        "variant": v["variant"], "seeds": v["seeds"],
        f"best {c.objective} at budget": [_cell(*r) for r in zip(v["mean"], v["low"], v["high"],
                                                                   strict=True)],
        "IQM": v["IQM"],
        f"{unit} to target": [_cell(m, lo, hi, digits) for m, lo, hi in zip(
            v["to target"], v["to target low"], v["to target high"], strict=True)],
        "reached target": v["reached target"], "AUC": v["AUC"],
    })
    if c.test_metric is not None:
        out[f"test {c.test_metric}"] = [_cell(*r) for r in zip(v["test"], v["test low"],
                                                                 v["test high"], strict=True)]
    out[f"spent ({unit})"] = v["spent"]
    out[TRIALS_TRAINED] = v[TRIALS_TRAINED]
    out["wall time (s)"] = v["wall time (s)"]
    return out


def _pairs_table(c: Comparison) -> pd.DataFrame:
    p = c.pairs
    out = pd.DataFrame({"A": p["A"], "B": p["B"], "P(A beats B)": p["P(A beats B)"],
                        "U": p["U"], "p": p["p"], "p (Holm)": p["p (Holm)"],
                        "smallest possible p": p["smallest possible p"]})
    if c.test_metric is not None:
        out["P(A beats B) on test"] = p["P(A beats B) on test"]
        out["p on test (Holm)"] = p["p on test (Holm)"]
    return out


def comparison_markdown(c: Comparison, title: str) -> str:
    """The report: verdict, warnings, budget, per-variant statistics, pairwise tests, figures,
    and every study."""
    level = f"{CONFIDENCE:.0%}"
    budget = c.budget.describe()
    how = ("every variant ran until this budget was spent (`search.budget`)" if c.budget.declared
           else "no budget was declared, so the studies are read at the most epochs every one "
           "of them trained")
    lines = [f"# {_esc(title)}", "", f"**Verdict.** {_esc(c.verdict)}", ""]
    for warning in c.warnings:
        lines += [f"Warning: {_esc(warning)}.", "{: .caveat}", ""]
    lines += [
        "## Budget", "",
        (f"Compared at **{budget}**: {how}. Each study is read at the budget itself, from its "
         "results in the order they arrived; results after it (trials that reported while the "
         "study stopped them) do not count. Epochs are counted as trained: every execution's, "
         "and epochs repeated after a retry again."
         + (f" Target for 'to target': {_esc(c.objective)} "
            f"{'≥' if c.mode == 'max' else '≤'} {c.target:.4g}." if np.isfinite(c.target) else "")),
        ""]
    lines += [f"- {_esc(note)}." for note in c.notes] + ([""] if c.notes else [])
    lines += [
        "## Variants", "",
        (f"Mean over seeds with its {level} percentile-bootstrap interval (scipy.stats.bootstrap);"
         " IQM: interquartile mean of the seeds; 'to target': what was spent when the best so "
         "far first reached the target, over the seeds that reached it; AUC: the best so far "
         "averaged over the budget (before a study's first result, the worst value of all "
         "studies)" + ("; test: each seed's best model on the held-out test split, never seen "
                       "while tuning" if c.test_metric else "")
         + f"; {TRIALS_TRAINED}: the trials that trained at least one epoch (not those a spent "
         "budget left created but never run), the mean over seeds."), "",
        _table(_variants_table(c)), "",
        "## Pairwise", "",
        ("P(A beats B): the chance that a seed of A ends better than a seed of B at the budget "
         "(Mann-Whitney U divided by the pairs; ties count half). p: two-sided Mann-Whitney U "
         "test, Holm-adjusted over the pairs; 'smallest possible p' is the least these seed "
         "counts allow."), "",
        _table(_pairs_table(c)) if len(c.pairs) else "One variant: no pairs.", "",
        "## Anytime performance", "",
        (f"Best {_esc(c.objective)} so far against {c.budget.axis}"
         + (" and against wall time" if c.wall_bands else "")
         + f": the mean over seeds with its {level} bootstrap band, drawn from where every seed "
         "has a result."), "",
        "![anytime](anytime.png)", "",
        "## Each seed", "", "![seeds](bests.png)", "",
        "## Studies", "",
        f"`best {_esc(c.objective)}` is the value at the budget; 'spent' is in {c.budget.axis}.",
        "", _table(c.table), ""]
    return "\n".join(lines)
