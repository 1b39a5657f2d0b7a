"""Which hyperparameters mattered at the full budget: fANOVA over the completed trials.

Optuna's ``FanovaImportanceEvaluator`` (Hutter et al., ICML 2014), called through
``optuna.importance.get_param_importances`` as Optuna documents it, over the completed trials:
those that trained their whole budget (their own ``epochs``, or the scheduler's ``max_t``) or
ended by themselves (early stopping), each with its best objective. Values are the fraction of
variance one hyperparameter explains alone (``normalize=False``); their sum is the share of main
effects, and what it leaves to 1 is interactions. Under ASHA the completed trials are those that
did well early: a ranking among survivors (:mod:`tunefleet.reports.importance` ranks at every
epoch, cut trials included).

Encoding: Optuna's fANOVA marginalises uniformly over a parameter's raw range (its evaluator
uses ``transform_log=False``), which for a ``loguniform`` learning rate would put 90% of the
weight on its top decade; the original fANOVA integrates in log space, so a log-scale
hyperparameter reaches Optuna as its log10 (a FloatDistribution over [log10 low, log10 high],
widened to the spec's declared range). Categorical ones (``choice``, ``grid``) are
CategoricalDistributions.

Conditional hyperparameters (inactive, so missing, in some completed trials): Optuna's
evaluator assesses only what every trial has, so they are left out and the note names them.

Too few: under ``MIN_COMPLETED`` completed trials, or ``PER_HYPERPARAMETER`` per hyperparameter
it assesses, fANOVA is not computed and the note says so; nor when every completed trial has the
same best objective (nothing to explain). On synthetic studies with 6 hyperparameters of which
one matters (5 seeds each), a hyperparameter with no effect got up to 45% of the variance from
15 trials (2.5 per hyperparameter, while the one that matters fell to 29%), 18% from 20 (3.3),
12% from 30 (5), 6% from 60 (10) and 1% from 120; below ``WELL_SAMPLED`` per hyperparameter
the note says that small fractions may be chance.

Speed: Optuna's fANOVA is pure Python, about linear in trials × trees: ``FANOVA_TREES`` trees on
a seeded sample of ``FANOVA_MAX_TRIALS`` completed trials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Optional
import warnings

import numpy as np
import pandas as pd

__all__ = ["Fanova", "collect_fanova", "fanova_importance", "completed_trials", "MIN_COMPLETED",
           "PER_HYPERPARAMETER", "WELL_SAMPLED", "FANOVA_MAX_TRIALS", "FANOVA_TREES"]

MIN_COMPLETED = 10
PER_HYPERPARAMETER = 4  # completed trials per assessed hyperparameter, at least
WELL_SAMPLED = 10  # per hyperparameter: from here on, small fractions are no longer chance
FANOVA_MAX_TRIALS = 250
FANOVA_TREES = 16
_ENDED = ("completed", "early_stopped")  # trials that ended by themselves


@dataclass
class Fanova:
    """fANOVA of a study's completed trials (``n_trials`` 0: not computed, ``note`` says why)."""

    names: list[str]  # the hyperparameters asked about
    fractions: dict[str, float]  # per assessed hyperparameter: variance explained alone
    n_completed: int  # completed trials with a finite objective
    n_trials: int = 0  # completed trials fANOVA was fitted on (a sample past the cap)
    at_epoch: Optional[int] = None  # the full budget of completed trials (None: searched)
    main_effects: Optional[float] = None  # sum of the fractions
    left_out: list[str] = field(default_factory=list)  # conditional: not assessed
    note: Optional[str] = None  # why it was not computed, or what it left out

    def value(self, name: str) -> Optional[float]:
        """``name``'s fraction; 0.0 if it did not vary among the completed trials; None if
        fANOVA was not computed, left it out or was not asked about it (the epoch axis)."""
        if not self.n_trials or name in self.left_out or name not in self.names:
            return None
        return self.fractions.get(name, 0.0)


def _numeric(col: pd.Series) -> Optional[np.ndarray]:
    """The column as floats; None if a value is not a number (or is a bool)."""
    if col.map(lambda v: isinstance(v, bool)).any():
        return None
    values = pd.to_numeric(col, errors="coerce")
    return None if values.isna().any() else values.to_numpy(dtype=float)


def fanova_importance(configs: pd.DataFrame, objective: pd.Series, scales: dict[str, str],
                      ranges: Optional[dict[str, tuple[float, float]]] = None,
                      seed: int = 0) -> tuple[dict[str, float], int, list[str]]:
    """fANOVA main-effect fractions of variance with Optuna's evaluator, one row per completed
    trial: ({name: fraction}, trials used, hyperparameters left out as conditional). A seeded
    sample of ``FANOVA_MAX_TRIALS`` past that many; ``ranges`` widen a numeric hyperparameter's
    range to its declared one (fANOVA integrates over the range)."""
    try:
        import optuna
        from optuna.distributions import (BaseDistribution, CategoricalDistribution,
                                          FloatDistribution)
        from optuna.exceptions import ExperimentalWarning
        from optuna.importance import FanovaImportanceEvaluator, get_param_importances
    except ImportError as exc:
        raise ImportError("fANOVA importance needs optuna: pip install optuna") from exc

    conditional = [c for c in configs.columns if configs[c].isna().any()]
    names = [c for c in configs.columns if c not in conditional]
    y = objective.astype(float).to_numpy()
    if len(y) > FANOVA_MAX_TRIALS:
        pick = np.sort(np.random.default_rng(seed).choice(len(y), FANOVA_MAX_TRIALS, replace=False))
        configs, y = configs.iloc[pick], y[pick]
    columns: dict[str, list[Any]] = {}
    distributions: dict[str, BaseDistribution] = {}
    for name in names:
        col = configs[name]
        values = None if scales.get(name) == "categorical" else _numeric(col)
        if values is None:
            columns[name] = col.astype(str).tolist()
            distributions[name] = CategoricalDistribution(sorted(set(columns[name])))
            continue
        low, high = float(values.min()), float(values.max())
        if ranges and name in ranges:
            low, high = min(low, ranges[name][0]), max(high, ranges[name][1])
        if scales.get(name) == "log":  # Optuna's fANOVA integrates over the raw range
            values, low, high = np.log10(values), math.log10(low), math.log10(high)
        columns[name] = [float(v) for v in values]
        distributions[name] = FloatDistribution(low, high)
    if not names:
        return {}, len(y), conditional
    trials = [optuna.trial.create_trial(
        params={name: columns[name][i] for name in names}, distributions=distributions,
        value=float(y[i])) for i in range(len(y))]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "A new study created in memory"
    try:
        study = optuna.create_study()
        study.add_trials(trials)
        with warnings.catch_warnings():
            # normalize=False (the fractions of variance, not shares of their sum) is marked
            # experimental since Optuna 3.0; the value it returns is the evaluator's own.
            warnings.simplefilter("ignore", ExperimentalWarning)
            fractions = get_param_importances(
                study, evaluator=FanovaImportanceEvaluator(n_trees=FANOVA_TREES, seed=seed),
                params=names, normalize=False)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {k: float(v) for k, v in fractions.items()}, len(y), conditional


def declared_ranges(study: Any) -> dict[str, tuple[float, float]]:
    """Each numeric search-space entry's declared range (randint's high excluded)."""
    ranges = {}
    for name, entry in study.experiment.search_space.items():
        kind = getattr(entry, "type", None)
        if kind in ("uniform", "quniform", "loguniform", "qrandint", "randint"):
            ranges[name] = (float(entry.low), float(entry.high - (kind == "randint")))
    return ranges


def completed_trials(study: Any) -> tuple[pd.Series, Optional[int]]:
    """Mask of the trials that trained their whole budget or ended by themselves, and that
    budget in epochs when it is the same for every trial."""
    trials, budget = study.trials, study.experiment.epoch_budget
    if "epochs" in study.hyperparameters:
        own = pd.to_numeric(trials["epochs"], errors="coerce").fillna(budget)
        full, at_epoch = np.minimum(own, budget), None
    else:
        full, at_epoch = budget, budget
    return trials["status"].isin(_ENDED) | (trials["epochs_trained"] >= full), at_epoch


def collect_fanova(study: Any, names: list[str], seed: int = 0) -> Fanova:
    """fANOVA of ``names`` over a loaded study's completed trials, each with its best
    objective; not computed (``note`` says why) when they are too few."""
    ended, at_epoch = completed_trials(study)
    best = pd.to_numeric(study.trials[f"best_{study.objective}"], errors="coerce").astype(float)
    done = (ended & np.isfinite(best)).to_numpy()
    n = int(done.sum())
    result = Fanova(list(names), {}, n, at_epoch=at_epoch)
    configs = study.trials.loc[done, names]
    assessed = [c for c in names if configs[c].astype(str).nunique() > 1]
    # Conditional ones (missing in some completed trials) are left out: they need no trials.
    result.left_out = [c for c in assessed if configs[c].isna().any()]
    d = len(assessed) - len(result.left_out)
    need = max(MIN_COMPLETED, PER_HYPERPARAMETER * d)
    why = None
    if n < need:
        why = (f"only {n} completed trials (it needs {need}: at least {MIN_COMPLETED}, and "
               f"{PER_HYPERPARAMETER} per hyperparameter it assesses); the ranking at each "
               "epoch still uses every trial")
    elif not assessed:
        why = "no hyperparameter varied among completed trials"
    elif not d:
        why = (f"every hyperparameter that varied ({', '.join(result.left_out)}) is inactive "
               "in some completed trials, and fANOVA assesses only what every trial has")
    elif np.ptp(best[done].to_numpy()) == 0:
        why = (f"every completed trial has the same best {study.objective}, "
               f"{float(best[done].iloc[0]):.4g}: there is no variance to explain")
    if why is None:
        try:
            fractions, used, _ = fanova_importance(
                configs[assessed], best[done], study.scales, declared_ranges(study), seed)
        except ImportError as exc:
            result.note = f"no fANOVA: {exc}"
            return result
        result.fractions, result.n_trials = fractions, used
        result.main_effects = float(sum(fractions.values()))
        notes = []
        if result.left_out:
            notes.append(f"fANOVA leaves out {', '.join(result.left_out)}: inactive in some "
                         "completed trials (it assesses what every trial has)")
        if used < WELL_SAMPLED * d:
            notes.append(f"fANOVA had {used} completed trials for {d} hyperparameters (fewer "
                         f"than {WELL_SAMPLED} each): fractions under about 10% may be chance")
        result.note = "; ".join(notes) or None
        return result
    result.note = f"no fANOVA at the full budget: {why}"
    return result
