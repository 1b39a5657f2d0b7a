"""The comparison's verdict: one paragraph that names the leader at the budget (or the variants
that tie for the lead, none of them called best), says which differences the rank tests
establish and which they do not ("no significant difference"), says when the seeds are too few
for any difference to be significant, and gives the held-out test results beside the
validation ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

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
    """One paragraph: the leader at the budget (every variant whose mean equals the best, within
    float tolerance, when several tie), which differences are significant (Holm-adjusted
    rank tests at ``alpha``) and which are not, and the held-out test results beside them."""
    v = c.variants.set_index("variant")
    at = f"at {c.budget.describe()}"
    if len(v) < 2:
        label = v.index[0] if len(v) else "nothing"
        return f"One variant ({label}): nothing to compare it with."
    scored = v[np.isfinite(v["mean"].astype(float))]
    if scored.empty:
        return f"No variant scored {c.objective} {at}: nothing to compare."
    means = scored["mean"].astype(float)
    top = float(means.max() if c.mode == "max" else means.min())
    # Equal means lead together: means over seeds of the same values can differ in their last
    # bits, and a leader picked among equals would be picked arbitrarily.
    tied = [str(label) for label, mean in means.items() if np.isclose(mean, top)]
    leader = tied[0]

    def value(label: str) -> str:
        row = v.loc[label]
        return _interval(row["mean"], row["low"], row["high"])

    def pair(first: str, other: str) -> tuple[float, float, float]:
        """(P(first beats other), p, Holm p) from the pair's row, whichever way it was tested."""
        rows = c.pairs
        hit = rows[(rows["A"] == first) & (rows["B"] == other)]
        if len(hit):
            r = hit.iloc[0]
            return r["P(A beats B)"], r["p"], r["p (Holm)"]
        r = rows[(rows["A"] == other) & (rows["B"] == first)].iloc[0]
        return 1 - r["P(A beats B)"], r["p"], r["p (Holm)"]

    def significant(first: str, other: str) -> bool:
        holm_p = pair(first, other)[2]
        return bool(np.isfinite(holm_p) and holm_p < c.alpha)

    others = [str(o) for o in v.index if o not in tied]
    level = f"{c.alpha:.0%} level, Holm-adjusted Mann-Whitney U"
    several = len(v) > 2  # Holm adjusts over more than one pair

    def detail(o: str, against: Sequence[str]) -> str:
        """``o``'s value, and the rank test of each of ``against`` (the leaders) with it."""
        tests = []
        for first in against:
            p_beats, p, holm_p = pair(first, o)
            if not np.isfinite(p_beats):
                return f"{o}: no {c.objective} at the budget (no trial scored)"
            tests.append(f"P({first} beats {o}) = {p_beats:.2f}, p = {p:.3g}"
                         + (f" (Holm {holm_p:.3g})" if several else ""))
        return f"{o}: {value(o)}, " + ", ".join(tests)

    estimate = f"{c.objective} {at} (mean over seeds, 95% bootstrap interval)"
    if len(tied) > 1:
        names = ", ".join(tied[:-1]) + f" and {tied[-1]}"
        beaten = [o for o in others if all(significant(t, o) for t in tied)]
        text = (f"{names} tie {at}: their mean {c.objective} is the same, so none of them is "
                "best.")
        if others and len(beaten) == len(others):
            text += f" Each of them beats every other variant at the {level}."
        elif beaten:
            rest = [o for o in others if o not in beaten]
            text += (f" Each of them beats {', '.join(beaten)} ({level}); their differences "
                     f"from {', '.join(rest)} are not significant.")
        elif others:
            text += (f" No significant difference between them and {', '.join(others)} "
                     f"({level}).")
        text += (f" {estimate}: " + "; ".join(f"{t} {value(t)}" for t in tied)
                 + "".join(f"; {detail(o, tied)}" for o in others) + ".")
    else:
        beaten = [o for o in others if significant(leader, o)]
        head = f"{estimate}: {leader} {value(leader)}"
        details = "; ".join(detail(o, [leader]) for o in others)
        if len(beaten) == len(others):
            text = (f"{leader} is best {at}: it beats every other variant at the {level}. "
                    f"{head}; {details}.")
        elif not beaten:
            text = (f"No significant difference between the variants {at} ({level}). {head} "
                    f"leads on average, which the seeds do not establish; {details}.")
        else:
            rest = [o for o in others if o not in beaten]
            text = (f"{leader} beats {', '.join(beaten)} {at} ({level}), with no significant "
                    f"difference from {', '.join(rest)}. {head}; {details}.")
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
