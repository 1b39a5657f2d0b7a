"""Which hyperparameters mattered, at every budget and at the full one; training length apart.

:func:`collect_importance` composes two methods and keeps training length apart:

1. **At each epoch** (the ranking: ``names``, ``share``; this module): a random-forest surrogate
   fitted on every trial's per-epoch rows, (configuration, epoch) → objective at that epoch, so
   trials a scheduler cut early count with the epochs they trained. A hyperparameter's importance
   is how much the surrogate's R² drops, at each epoch among the trials that reached it, when its
   values are shuffled among them (rows move only within their epoch: under ASHA, configuration
   and epoch are dependent, and a shuffle across epochs would ask the forest about a cut trial
   at epoch 20, which it never saw). The drops are averaged over the epochs, each epoch weighing
   the same (epochs fewer than ``MIN_EPOCH_ROWS`` scored rows reached are left out), so that
   under ASHA the ranking is not "what helps in the first epoch". Scores are out of sample: the
   trials are split into ``FOLDS`` groups and each group's rows are predicted by a forest that
   never saw that trial (a split by rows would leak: rows of one trial are near copies). The
   forest learns the objective standardised per epoch, so that an effect seen at early epochs,
   where most trials are, informs the later ones. Shuffling measures a whole effect,
   interactions included. Why not fANOVA over (configuration, epoch): it integrates over the
   whole box, so under ASHA it would rest on the forest's guesses for cut trials at epochs they
   never reached; it gives main effects only (two hyperparameters that matter only together
   get nothing); and Optuna's implementation slows with rows, here trials × epochs.
2. **At the full budget** (``fanova``; :mod:`tunefleet.reports.fanova`): Optuna's fANOVA over
   the completed trials, each with its best objective; ``fanova_main_effects`` is the sum of its
   fractions and what it leaves to 1 is interactions.
3. **Budget** (``budget_names``): training length is not ranked with the hyperparameters (learning
   curves rise with epochs and would swamp them). The *epoch axis* and a searched ``epochs``
   (``BUDGET_HYPERPARAMETERS``, shuffled together with the axis, across epochs) get
   ``budget_share``: their R² drop over the whole surrogate (every epoch weighing the same) as a
   share of it plus the hyperparameters' drops on the same scale; ``epochs`` also gets fANOVA.

Under PBT/PB2 a trial's mutated hyperparameters change while it trains and it may go on from
another trial's weights: each row enters the surrogate with the values its trial trained with at
that epoch (each result row's ``config``, read by :mod:`tunefleet.reports.schedules`), fANOVA
leaves the mutated ones out (no one value describes a trial), and the caveat says both.

Encoding for the surrogate: log-scale hyperparameters enter as log10, categorical ones as
category codes. Conditional hyperparameters (absent from a trial's configuration when inactive,
missing in the tidy frames of load.py) stay missing, which scikit-learn's trees route as a value
of their own.

Too few: under 3 scored trials nothing is ranked; under ``MIN_TRIALS`` the ranking is a hint
(``caveat``): on synthetic studies with 6 hyperparameters of which one matters, a hyperparameter
with no effect got up to 77% of the share from 8 trials, 38% from 10, 27% from 15 and at most 4%
from 20 (5 seeds each). The caveat also says when the surrogate explains little out of sample
(likely noise when its R² is not above 0), and when fANOVA was not computed (too few completed
trials: see :mod:`tunefleet.reports.fanova`).

Speed: each surrogate tree is fitted on ``TREE_SAMPLES`` rows at most (a bootstrap sample; every
row still counts through some trees); the shuffles are scored on ``SCORE_ROWS`` rows sampled
evenly over the epochs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import functools
import math
from typing import Any, Optional

import numpy as np
import pandas as pd

from .fanova import (FANOVA_MAX_TRIALS, FANOVA_TREES, MIN_COMPLETED, collect_fanova,
                     fanova_importance)

__all__ = ["Importance", "collect_importance", "study_importance", "hyperparameter_importance",
           "fanova_importance", "encode_configs", "MIN_TRIALS", "MIN_COMPLETED", "TREE_SAMPLES",
           "SCORE_ROWS", "FOLDS", "FANOVA_MAX_TRIALS", "FANOVA_TREES", "BUDGET_HYPERPARAMETERS",
           "EPOCH_AXIS"]

MIN_TRIALS = 20  # scored trials below which the ranking is a hint (module docstring)
MIN_EPOCH_ROWS = 5
TREE_SAMPLES = 2000
SCORE_ROWS = 2000
FOLDS = 5
SURROGATE_TREES = 100  # in all, shared among the folds' forests
REPEATS = 10  # shuffles per input
BUDGET_HYPERPARAMETERS = ("epochs",)
EPOCH_AXIS = "epoch"  # the name of the epoch axis in ``budget_names``


@dataclass
class Importance:
    """Importance of the searched hyperparameters (largest share first), fANOVA at the full
    budget, training length apart, and how far to trust them (see the module docstring)."""

    names: list[str]  # hyperparameters, budget-like ones excepted
    share: list[float]  # at each epoch: R² drop over the hyperparameters' total
    std: list[float]  # over the shuffles, on the same scale
    n_trials: int  # scored trials the surrogate used
    surrogate_r2: Optional[float]  # out of sample, at a fixed epoch (averaged over epochs)
    caveat: Optional[str]
    at_epoch: Optional[int] = None  # the full budget of completed trials (None: searched)
    tree_samples: Optional[int] = None  # rows each tree was fitted on, when fewer than all
    n_rows: int = 0  # (trial, epoch) rows the surrogate used
    n_epochs: int = 0  # epochs averaged over
    fanova: list[Optional[float]] = field(default_factory=list)  # per name; None: not assessed
    budget_names: list[str] = field(default_factory=list)  # ``epochs`` if searched; EPOCH_AXIS
    budget_share: list[float] = field(default_factory=list)
    budget_fanova: list[Optional[float]] = field(default_factory=list)
    n_completed: int = 0
    fanova_trials: int = 0  # completed trials fANOVA was fitted on (a sample past the cap)
    fanova_main_effects: Optional[float] = None
    fanova_note: Optional[str] = None  # why fANOVA was not computed, or what it left out

    @property
    def fanova_leader(self) -> Optional[str]:
        """The hyperparameter fANOVA ranks first (budget ones excepted); None without fANOVA."""
        scored = [(v, n) for n, v in zip(self.names, self.fanova, strict=True) if v is not None]
        return max(scored, key=lambda pair: pair[0])[1] if self.fanova_trials and scored else None

    def as_frame(self) -> pd.DataFrame:
        """One row per hyperparameter, then the budget rows (``budget`` True), whose
        ``importance`` is their ``budget_share``."""
        n, m = len(self.names), len(self.budget_names)
        return pd.DataFrame({
            "hyperparameter": [*self.names, *self.budget_names],
            "importance": [*self.share, *self.budget_share],
            "std": [*self.std, *([None] * m)],
            "fanova": [*(self.fanova or [None] * n), *(self.budget_fanova or [None] * m)],
            "budget": [False] * n + [True] * m})


def _category_code(value: object, codes: dict[str, int]) -> float:
    """A category's index; NaN where the hyperparameter was inactive (missing)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return float("nan")
    return float(codes[str(value)])


def _is_numeric(col: pd.Series) -> bool:
    numeric = pd.to_numeric(col, errors="coerce")
    return bool(numeric.notna().sum() == col.notna().sum()
                and not col.map(lambda v: isinstance(v, bool)).any())


def encode_configs(configs: pd.DataFrame, log_scale: set[str]) -> pd.DataFrame:
    """Numeric matrix for the surrogate: log10 for log-scale, codes for categories, NaN if inactive."""
    encoded = {}
    for name in configs.columns:
        col = configs[name]
        if _is_numeric(col):
            values = pd.to_numeric(col, errors="coerce").astype(float)
            encoded[name] = np.log10(values) if name in log_scale else values
        else:
            codes = {v: i for i, v in enumerate(sorted(col.dropna().astype(str).unique()))}
            encoded[name] = col.map(functools.partial(_category_code, codes=codes)).astype(float)
    return pd.DataFrame(encoded, index=configs.index)


@dataclass
class _Input:
    """Columns shuffled together, and whether only among rows of the same epoch."""

    columns: list[int]
    within_epoch: bool = True


@dataclass
class _Drops:
    per_epoch: np.ndarray  # per input: R² drop at a fixed epoch, averaged over epochs
    per_epoch_std: np.ndarray
    pooled: np.ndarray  # per input: R² drop over all rows, every epoch weighing the same
    r2: Optional[float]  # at a fixed epoch, averaged over epochs
    n_epochs: int
    tree_samples: Optional[int]


def _permutation(rng: np.random.Generator, n: int, strata: Optional[np.ndarray]) -> np.ndarray:
    """A random order of ``n`` rows; with ``strata``, each row moves only within its stratum."""
    if strata is None:
        return rng.permutation(n)
    order = np.argsort(strata, kind="stable")
    perm = np.empty(n, dtype=int)
    for segment in np.split(order, np.flatnonzero(np.diff(strata[order])) + 1):
        perm[segment] = rng.permutation(segment)
    return perm


def _location_scale(y: np.ndarray, strata: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per stratum: mean and standard deviation of ``y`` (an empty stratum takes the overall
    mean, one with fewer than 2 rows or no spread the median spread)."""
    rows = np.bincount(strata, minlength=n)
    mean = np.where(rows > 0, np.bincount(strata, y, n) / np.maximum(rows, 1), y.mean())
    var = np.bincount(strata, (y - mean[strata]) ** 2, n) / np.maximum(rows, 1)
    valid = (rows >= 2) & (var > 0)
    spread = np.sqrt(var)
    fallback = float(np.median(spread[valid])) if valid.any() else 1.0
    return mean, np.where(valid, spread, fallback)


def _cross_fitted(x: np.ndarray, y: np.ndarray, groups: np.ndarray, strata: np.ndarray,
                  fit_weight: np.ndarray, score: np.ndarray, inputs: list[_Input],
                  seed: int, epoch_values: Optional[np.ndarray] = None) -> _Drops:
    """Shuffle importance of a random forest, each scored row (``score`` indexes them)
    predicted by a forest fitted without its group (trial); ``strata``: each row's epoch,
    ``epoch_values`` (sorted) the epoch each stratum stands for, held in the last column of
    ``x``. The forest learns the objective standardised per epoch (how much better than that
    epoch's average), which lets an effect seen at early epochs inform the later ones, where
    fewer trials are; predictions are mapped back with the epoch's mean and spread."""
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(seed)
    n_groups = int(groups.max()) + 1
    folds = min(FOLDS, n_groups)
    fold = (rng.permutation(n_groups) % folds)[groups]
    xs, ys, fold_s, strata_s = x[score], y[score], fold[score], strata[score]
    n_strata = int(strata.max()) + 1
    # The shuffled copies of the scored rows, drawn once: values come from every fold's rows.
    copies = [xs]
    for item in inputs:
        for _ in range(REPEATS):
            perm = _permutation(rng, len(xs), strata_s if item.within_epoch else None)
            xp = xs.copy()
            xp[:, item.columns] = xs[perm][:, item.columns]
            copies.append(xp)
    stacked = np.stack(copies)
    # The epoch each copy's row stands at (a shuffled epoch axis moves it).
    at = (np.searchsorted(epoch_values, stacked[:, :, -1]) if epoch_values is not None
          else np.zeros(stacked.shape[:2], dtype=int))
    sse = np.zeros((len(copies), n_strata))  # per copy, per epoch
    tree_samples = None
    for k in range(folds):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold_s == k)
        if len(test) == 0:
            continue
        samples = TREE_SAMPLES if len(train) > TREE_SAMPLES else None
        tree_samples = samples or tree_samples
        forest = RandomForestRegressor(n_estimators=max(20, SURROGATE_TREES // folds),
                                       min_samples_leaf=2, max_samples=samples,
                                       random_state=seed + k, n_jobs=1)  # threads reorder sums
        mean, spread = _location_scale(y[train], strata[train], n_strata)
        forest.fit(x[train], (y[train] - mean[strata[train]]) / spread[strata[train]],
                   sample_weight=fit_weight[train])
        # Every copy in one predict call: one pass over the trees.
        z = forest.predict(stacked[:, test].reshape(-1, x.shape[1])).reshape(len(copies), -1)
        pred = mean[at[:, test]] + spread[at[:, test]] * z
        onehot = (strata_s[test][:, None] == np.arange(n_strata)).astype(float)
        sse += ((pred - ys[test]) ** 2) @ onehot
    rows = np.bincount(strata_s, minlength=n_strata)
    mean = np.bincount(strata_s, ys, n_strata) / np.maximum(rows, 1)
    sst = np.bincount(strata_s, (ys - mean[strata_s]) ** 2, n_strata)
    d = len(inputs)
    use = (rows >= min(MIN_EPOCH_ROWS, len(ys))) & (sst > 0)
    drops = (sse[1:] - sse[0]).reshape(d, REPEATS, n_strata)
    # Pooled: each epoch weighs the same, around the mean over all epochs.
    weight = np.where(rows > 0, 1 / np.maximum(rows, 1), 0.0)
    grand = float((weight * rows * mean).sum() / (weight * rows).sum())
    sst_pooled = float((weight[strata_s] * (ys - grand) ** 2).sum())
    pooled = ((drops * weight).sum(axis=2).mean(axis=1) / sst_pooled if sst_pooled > 0
              else np.zeros(d))
    if not use.any():
        return _Drops(np.zeros(d), np.zeros(d), pooled, None, 0, tree_samples)
    at_epoch = (drops[:, :, use] / sst[use]).mean(axis=2)
    r2 = float((1 - sse[0, use] / sst[use]).mean())
    return _Drops(at_epoch.mean(axis=1), at_epoch.std(axis=1), pooled, r2, int(use.sum()),
                  tree_samples)


def _shares(raw: np.ndarray, raw_std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    clipped = np.clip(raw, 0, None)
    total = clipped.sum()
    if total <= 0:
        return np.zeros_like(raw), np.zeros_like(raw)
    return clipped / total, raw_std / total


def _caveats(n: int, r2: Optional[float]) -> list[str]:
    caveats = []
    if n < MIN_TRIALS:
        caveats.append(f"only {n} scored trials (fewer than {MIN_TRIALS}): the shares can be "
                       "noise, treat the ranking as a hint")
    if r2 is not None and r2 <= 0:
        caveats.append(f"the surrogate predicts trials it never saw no better than each epoch's "
                       f"average (out-of-sample R² {r2:.2f} at a fixed epoch): the shares are "
                       "likely noise")
    elif r2 is not None and r2 < 0.3:
        caveats.append(f"the surrogate explains little of the differences between trials "
                       f"(out-of-sample R² {r2:.2f} at a fixed epoch): differences may be noise")
    return caveats


def _ranked(names: list[str], drops: _Drops, n: int, n_rows: int) -> Importance:
    share, std = _shares(drops.per_epoch, drops.per_epoch_std)
    order = np.argsort(-share, kind="stable")
    return Importance([names[i] for i in order], [float(share[i]) for i in order],
                      [float(std[i]) for i in order], n, drops.r2,
                      "; ".join(_caveats(n, drops.r2)) or None, tree_samples=drops.tree_samples,
                      n_rows=n_rows, n_epochs=drops.n_epochs)


def hyperparameter_importance(configs: pd.DataFrame, objective: pd.Series,
                              log_scale: set[str], seed: int = 0) -> Importance:
    """Rank the columns of ``configs`` by how much they explain ``objective``, one row per
    trial (no epoch axis, no fANOVA): the surrogate's method with a single epoch."""
    keep = (objective.notna() & np.isfinite(objective.astype(float))).to_numpy()
    configs, y = configs[keep], objective[keep].astype(float).to_numpy()
    varying = [c for c in configs.columns if configs[c].astype(str).nunique() > 1]
    n = len(y)
    if n < 3 or not varying:
        why = "fewer than 3 scored trials" if n < 3 else "no hyperparameter varied"
        return Importance([], [], [], n, None, f"no importance computed: {why}")
    x = encode_configs(configs[varying], log_scale).to_numpy(dtype=float)
    score = np.sort(np.random.default_rng(seed).choice(n, min(n, SCORE_ROWS), replace=False))
    drops = _cross_fitted(x, y, np.arange(n), np.zeros(n, dtype=int), np.ones(n), score,
                          [_Input([j]) for j in range(len(varying))], seed)
    return _ranked(varying, drops, n, n)


def _mutated(study: Any, rows: pd.DataFrame) -> Optional[tuple[list[str], pd.DataFrame]]:
    """Under PBT/PB2: the keys it mutates, and one configuration per row of ``rows`` (trial_id,
    epoch) with the values its trial trained with at that epoch (the trial's first ones where
    a row did not record them); None under any other scheduler."""
    from .schedules import collect_schedules

    schedules = collect_schedules(study)
    if schedules is None:
        return None
    trials = study.trials.drop_duplicates("trial_id").set_index("trial_id")
    configs = trials.loc[rows["trial_id"], study.hyperparameters].reset_index(drop=True)
    keys = [k for k in schedules.keys if k in configs]
    at = pd.MultiIndex.from_arrays([rows["trial_id"], rows["epoch"].astype(int)])
    trained = schedules.rows.set_index(["trial_id", "epoch"])[keys].reindex(at)
    for k in keys:
        values = trained[k].to_numpy()
        known = pd.notna(values)
        column = configs[k].to_numpy(dtype=object, copy=True)
        column[known] = values[known]
        configs[k] = column
    return keys, configs


def collect_importance(study: Any, seed: int = 0) -> Importance:
    """Importance of a loaded study's searched hyperparameters at each epoch and at the full
    budget, with training length apart (see the module docstring)."""
    objective, history = study.objective, study.history
    if history.empty or objective not in history:
        return Importance([], [], [], 0, None, "no importance computed: no trial reported "
                          f"the objective {objective}")
    values = pd.to_numeric(history[objective], errors="coerce").astype(float)
    epoch = pd.to_numeric(history["epoch"], errors="coerce").astype(float)
    rows = history.loc[np.isfinite(values) & np.isfinite(epoch), ["trial_id"]].assign(
        epoch=epoch, y=values)
    trials = study.trials.drop_duplicates("trial_id").set_index("trial_id")
    rows = rows[rows["trial_id"].isin(trials.index)]
    codes, scored = pd.factorize(rows["trial_id"])
    configs = trials.loc[scored, study.hyperparameters]
    take = codes  # each row's configuration: its trial's
    mutated = _mutated(study, rows)
    if mutated:  # each row with the values its trial trained with at that epoch
        configs, take = mutated[1], np.arange(len(rows))
    varying = [c for c in study.hyperparameters if configs[c].astype(str).nunique() > 1]
    budget_hps = [c for c in varying if c in BUDGET_HYPERPARAMETERS]
    ranked = [c for c in varying if c not in BUDGET_HYPERPARAMETERS]
    epochs, strata, per_epoch = np.unique(rows["epoch"].to_numpy(dtype=float),
                                          return_inverse=True, return_counts=True)
    n = len(scored)
    if n < 3 or not (varying or len(epochs) > 1):
        why = "fewer than 3 scored trials" if n < 3 else "no hyperparameter varied"
        return Importance([], [], [], n, None, f"no importance computed: {why}")
    x = np.column_stack([encode_configs(configs[ranked + budget_hps],
                                        study.log_scale).to_numpy(dtype=float)[take],
                         epochs[strata]])
    axis = x.shape[1] - 1
    inputs = ([_Input([j]) for j in range(len(ranked))]
              + [_Input([len(ranked) + j, axis], within_epoch=False) for j in range(len(budget_hps))]
              + [_Input([axis], within_epoch=False)])
    y = rows["y"].to_numpy()
    fit_weight = len(y) / (len(epochs) * per_epoch[strata])  # every epoch weighs the same
    rng = np.random.default_rng(seed)
    quota = math.ceil(SCORE_ROWS / len(epochs))
    score = np.sort(np.concatenate([
        rng.choice(idx, quota, replace=False) if len(idx) > quota else idx
        for idx in np.split(np.argsort(strata, kind="stable"), np.cumsum(per_epoch)[:-1])]))
    drops = _cross_fitted(x, y, codes, strata, fit_weight, score, inputs, seed, epochs)
    k = len(ranked)
    result = _ranked(ranked, _Drops(drops.per_epoch[:k], drops.per_epoch_std[:k], drops.pooled,
                                    drops.r2, drops.n_epochs, drops.tree_samples), n, len(y))
    if len(epochs) > 1:  # training length, on the pooled scale, against the hyperparameters
        result.budget_names = [*budget_hps, EPOCH_AXIS]
        length = np.clip(drops.pooled[k:], 0, None)
        total = float(np.clip(drops.pooled[:k], 0, None).sum())
        result.budget_share = [float(v / (v + total)) if v + total > 0 else 0.0 for v in length]
    caveats = []
    changed = [c for c in mutated[0] if c in varying] if mutated else []
    if changed:
        caveats.append(f"{study.experiment.scheduler.name} changed {', '.join(changed)} while "
                       "trials trained, and a trial may go on from another's weights: each "
                       "epoch is ranked with the values its trial trained with then, so a "
                       "share includes what the copied weights carried")
    if ranked or budget_hps:
        fan = collect_fanova(study, [c for c in ranked + budget_hps if c not in changed], seed)
        result.at_epoch, result.n_completed, result.fanova_trials = (
            fan.at_epoch, fan.n_completed, fan.n_trials)
        result.fanova = [fan.value(h) for h in result.names]
        result.budget_fanova = [fan.value(h) for h in result.budget_names]
        result.fanova_main_effects, result.fanova_note = fan.main_effects, fan.note
        if changed and fan.n_trials:
            result.fanova_note = "; ".join(filter(None, [
                (f"fANOVA leaves out {', '.join(changed)}: {study.experiment.scheduler.name} "
                 f"changed {'it' if len(changed) == 1 else 'them'} while trials trained, so no "
                 "one value describes a trial"),
                fan.note]))
        if not fan.n_trials and fan.note:
            caveats.append(fan.note)
    if not ranked:
        caveats.append("no hyperparameter other than training length varied")
    result.caveat = "; ".join([c for c in [result.caveat, *caveats] if c]) or None
    return result


def study_importance(study: Any, seed: int = 0) -> Importance:
    """The same as :func:`collect_importance` (the name earlier versions used)."""
    return collect_importance(study, seed)
