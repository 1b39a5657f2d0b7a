"""The comparison's verdict: one paragraph that names the leader at the budget, says which
differences the rank tests establish and which they do not ("no significant difference"), says
when the seeds are too few for any difference to be significant, and gives the held-out test
results beside the validation ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import comparison_stats as cs

if TYPE_CHECKING:  # compare.py imports this module
    from .compare import Comparison

__all__ = ["verdict"]


def _interval(value: float, low: float, high: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.4f}" + (f" ({low:.4f} to {high:.4f})" if np.isfinite(low) else "")


def verdict(c: Comparison) -> str:
    """One paragraph: the leader at the budget, which differences are significant (Holm-adjusted
    rank tests at ``alpha``) and which are not, and the held-out test results beside them."""
    v = c.variants.set_index("variant")
    at = f"at {c.budget.describe()}"
    if len(v) < 2:
        label = v.index[0] if len(v) else "nothing"
        return f"One variant ({label}): nothing to compare it with."
    scored = v[np.isfinite(v["mean"].astype(float))]
    if scored.empty:
        return f"No variant scored {c.objective} {at}: nothing to compare."
    leader = str(scored["mean"].astype(float).idxmax() if c.mode == "max"
                 else scored["mean"].astype(float).idxmin())

    def value(label: str) -> str:
        row = v.loc[label]
        return _interval(row["mean"], row["low"], row["high"])

    def pair(other: str) -> tuple[float, float, float]:
        """(P(leader beats other), p, Holm p) from the pair's row, whichever way it was tested."""
        rows = c.pairs
        hit = rows[(rows["A"] == leader) & (rows["B"] == other)]
        if len(hit):
            r = hit.iloc[0]
            return r["P(A beats B)"], r["p"], r["p (Holm)"]
        r = rows[(rows["A"] == other) & (rows["B"] == leader)].iloc[0]
        return 1 - r["P(A beats B)"], r["p"], r["p (Holm)"]

    others = [str(o) for o in v.index if o != leader]
    tests = {o: pair(o) for o in others}
    beaten = [o for o in others if np.isfinite(tests[o][2]) and tests[o][2] < c.alpha]
    level = f"{c.alpha:.0%} level, Holm-adjusted Mann-Whitney U"

    def detail(o: str) -> str:
        p_beats, p, holm_p = tests[o]
        if not np.isfinite(p_beats):
            return f"{o}: no {c.objective} at the budget (no trial scored)"
        return (f"{o}: {value(o)}, P({leader} beats {o}) = {p_beats:.2f}, p = {p:.3g}"
                + (f" (Holm {holm_p:.3g})" if len(others) > 1 else ""))

    head = (f"{c.objective} {at} (mean over seeds, 95% bootstrap interval): {leader} "
            f"{value(leader)}")
    if len(beaten) == len(others):
        text = (f"{leader} is best {at}: it beats every other variant at the {level}. "
                f"{head}; " + "; ".join(detail(o) for o in others) + ".")
    elif not beaten:
        text = (f"No significant difference between the variants {at} ({level}). {head} "
                "leads on average, which the seeds do not establish; " +
                "; ".join(detail(o) for o in others) + ".")
    else:
        rest = [o for o in others if o not in beaten]
        text = (f"{leader} beats {', '.join(beaten)} {at} ({level}), with no significant "
                f"difference from {', '.join(rest)}. {head}; " +
                "; ".join(detail(o) for o in others) + ".")
    floors = c.pairs["smallest possible p"].astype(float)
    pairs = len(floors)
    if pairs and min(1.0, floors.min() * pairs) >= c.alpha:  # Holm multiplies the least by pairs
        n = int(v["seeds"].min())
        over = f" over {pairs} pairs" if pairs > 1 else ""
        text += (f" With {n} seed{'s' if n != 1 else ''} per variant the rank test{over} cannot "
                 f"give p below {min(1.0, floors.min() * pairs):.2f}, so no difference can be "
                 f"significant at the {c.alpha:.0%} level: run {cs.seeds_needed(c.alpha / pairs)} "
                 "or more seeds per variant to be able to tell.")
    if c.test_metric is not None and np.isfinite(v["test"].astype(float)).any():
        text += (f" On the held-out test split (each seed's best model), test {c.test_metric}: "
                 + "; ".join(f"{label} {_interval(row['test'], row['test low'], row['test high'])}"
                             for label, row in v.iterrows()) + ".")
    return text
