"""Which hyperparameters mattered: permutation importance of a random-forest surrogate.

Method: fit a random forest on (configuration → best objective of the trial), then measure
how much the forest's fit (R²) drops when one hyperparameter's column is shuffled (scikit-learn's
``permutation_importance``, 10 repeats). Shares are normalised to sum to 1. Encoding:
log-scale hyperparameters (``loguniform``) enter as log10, categorical ones as category codes
(a forest splits on codes without assuming order matters), and a hyperparameter that is inactive
in a trial (absent under some values of another) stays missing, which scikit-learn's forests
handle natively. The surrogate's out-of-bag R² says how much of the objective it explains: when
that is low, or trials are few, the ranking means little, and the result says so.

Large studies: past ``TREE_SAMPLES`` scored trials, each tree of the forest is fitted on a
bootstrap sample of that many trials (every trial still counts, through some of the trees, and
in the out-of-bag R²), and the permutations are scored on 1,000 trials at most, so that a study
of 10,000 trials is ranked in seconds.

Equal budgets: under ASHA, HyperBand or median stopping, trials train for different numbers of
epochs, and a trial's best value reflects how long it was allowed to train as much as its
configuration. The objective is therefore taken as each trial's best value up to one common
epoch: the largest epoch reached by at least half of the scored trials and by at least 10 of
them (by all, when fewer than 10 scored). Trials that stopped before it are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
import math
from typing import Any, Optional

import numpy as np
import pandas as pd

__all__ = ["Importance", "hyperparameter_importance", "study_importance", "encode_configs",
           "common_epoch", "MIN_TRIALS", "TREE_SAMPLES"]

MIN_TRIALS = 10
TREE_SAMPLES = 2000


@dataclass
class Importance:
    """Importance share of each hyperparameter (sorted, largest first) and how far to trust it."""

    names: list[str]
    share: list[float]
    std: list[float]
    n_trials: int
    surrogate_r2: Optional[float]
    caveat: Optional[str]
    at_epoch: Optional[int] = None
    tree_samples: Optional[int] = None  # trials each tree was fitted on, when fewer than all

    def as_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"hyperparameter": self.names, "importance": self.share,
                             "std": self.std})


def _category_code(value: object, codes: dict[str, int]) -> float:
    """A category's index; NaN where the hyperparameter was inactive (missing)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return float("nan")
    return float(codes[str(value)])


def encode_configs(configs: pd.DataFrame, log_scale: set[str]) -> pd.DataFrame:
    """Numeric matrix for the surrogate: log10 for log-scale, codes for categories, NaN if inactive."""
    encoded = {}
    for name in configs.columns:
        col = configs[name]
        numeric = pd.to_numeric(col, errors="coerce")
        if numeric.notna().sum() == col.notna().sum() and not col.map(
                lambda v: isinstance(v, bool)).any():
            values = numeric.astype(float)
            encoded[name] = np.log10(values) if name in log_scale else values
        else:
            codes = {v: i for i, v in enumerate(sorted(col.dropna().astype(str).unique()))}
            encoded[name] = col.map(functools.partial(_category_code, codes=codes)).astype(float)
    return pd.DataFrame(encoded, index=configs.index)


def hyperparameter_importance(configs: pd.DataFrame, objective: pd.Series,
                              log_scale: set[str], seed: int = 0) -> Importance:
    """Rank the columns of ``configs`` by how much they explain ``objective`` (see module doc)."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    keep = objective.notna() & np.isfinite(objective.astype(float))
    configs, y = configs[keep], objective[keep].astype(float).to_numpy()
    varying = [c for c in configs.columns if configs[c].astype(str).nunique() > 1]
    n = len(y)
    if n < 3 or not varying:
        why = "fewer than 3 scored trials" if n < 3 else "no hyperparameter varied"
        return Importance([], [], [], n, None, f"no importance computed: {why}")
    x = encode_configs(configs[varying], log_scale)
    tree_samples = TREE_SAMPLES if n > TREE_SAMPLES else None
    forest = RandomForestRegressor(n_estimators=100, min_samples_leaf=2, oob_score=n >= 5,
                                   max_samples=tree_samples, random_state=seed,
                                   n_jobs=1)  # threads reorder sums: keep it exact
    forest.fit(x, y)
    r2 = float(forest.oob_score_) if n >= 5 else None
    # Scoring the permutations on 1,000 trials at most keeps 2,000-trial studies fast.
    result = permutation_importance(forest, x, y, n_repeats=10, random_state=seed,
                                    max_samples=min(1.0, 1000 / n))
    raw = np.clip(result.importances_mean, 0, None)
    total = raw.sum()
    share = raw / total if total > 0 else np.zeros_like(raw)
    std = result.importances_std / total if total > 0 else np.zeros_like(raw)
    order = np.argsort(-share)
    caveats = []
    if n < MIN_TRIALS:
        caveats.append(f"only {n} scored trials (fewer than {MIN_TRIALS}): treat the ranking as a hint")
    if r2 is not None and r2 < 0.3:
        caveats.append(f"the surrogate explains little of the objective (out-of-bag R² {r2:.2f}): "
                       "differences may be noise")
    return Importance([varying[i] for i in order], [float(share[i]) for i in order],
                      [float(std[i]) for i in order], n, r2, "; ".join(caveats) or None,
                      tree_samples=tree_samples)


def common_epoch(epochs: pd.Series) -> int:
    """The largest epoch reached by at least half of the trials and by at least 10 of them
    (by all of them, when there are fewer than 10)."""
    need = min(len(epochs), max(MIN_TRIALS, math.ceil(len(epochs) / 2)))
    reached = np.sort(epochs.to_numpy())[::-1]
    return int(reached[need - 1]) if need else 0


def study_importance(study: Any) -> Importance:
    """Importance over a loaded study's searched hyperparameters, at an equal epoch budget."""
    log_scale = study.log_scale
    objective, mode = study.objective, study.mode
    history = study.history
    if history.empty or objective not in history:
        return hyperparameter_importance(study.trials[study.hyperparameters],
                                         pd.Series(np.nan, index=study.trials.index), log_scale)
    finite = history[np.isfinite(history[objective].astype(float))]
    reached = finite.groupby("trial_id")["epoch"].max()
    epoch = common_epoch(reached)
    upto = finite[finite["epoch"] <= epoch].groupby("trial_id")[objective]
    value = upto.max() if mode == "max" else upto.min()
    value = value[reached.reindex(value.index) >= epoch]
    trials = study.trials.set_index("trial_id")
    result = hyperparameter_importance(trials.loc[value.index, study.hyperparameters],
                                       value.astype(float), log_scale)
    result.at_epoch = epoch
    return result
