"""``search.budget``: what a study may spend, in one unit: epochs trained, trials started or
wall-clock seconds. The study runs until it is spent (study/budget.py), so that studies with
the same budget (the variants of a comparison) are compared on the same compute."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import Field, model_validator

from .base import StrictModel

__all__ = ["BudgetSpec", "BUDGET_UNITS", "SEARCH_BUDGET_SPENT", "check_budget"]

# Each unit, with how its amount reads in a sentence.
BUDGET_UNITS = {"epochs": "epochs", "trials": "trials", "wall_s": "s"}
# Why a study whose search.budget was spent stopped (summary.json's ``stopped``, and each trial
# it ended): written by the driver (study/budget.py), read back by the reports; a resume does
# not reopen such a study. Format it with ``BudgetSpec.describe()``.
SEARCH_BUDGET_SPENT = "the budget (search.budget: {}) was spent"


class BudgetSpec(StrictModel):
    """Exactly one of: ``epochs`` trained in total (every execution's, epochs repeated after a
    retry included: summary.json's ``epochs_total``), ``trials`` started, ``wall_s`` seconds."""

    epochs: Optional[int] = Field(None, ge=1)
    trials: Optional[int] = Field(None, ge=1)
    wall_s: Optional[float] = Field(None, gt=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> "BudgetSpec":
        given = [k for k in BUDGET_UNITS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(BUDGET_UNITS)}, got "
                             f"{', '.join(given) or 'none'}; for example {{epochs: 96}}")
        return self

    @property
    def unit(self) -> str:
        """``epochs``, ``trials`` or ``wall_s``."""
        return next(k for k in BUDGET_UNITS if getattr(self, k) is not None)

    @property
    def amount(self) -> float:
        return float(getattr(self, self.unit))

    def describe(self) -> str:
        """``96 epochs``, ``1 epoch``, ``12 trials``, ``600 s``."""
        unit = BUDGET_UNITS[self.unit]
        if self.amount == 1 and unit != "s":
            unit = unit[:-1]
        return f"{self.amount:g} {unit}"


def check_budget(search: Any, hypermodel: bool) -> None:
    """Cross-checks of ``search.budget`` with the rest of the search section (ValueError with
    the field path, for the Experiment's validator)."""
    budget: Optional[BudgetSpec] = getattr(search, "budget", None)
    if budget is None:
        return
    if "num_samples" in search.model_fields_set:
        raise ValueError(
            f"search.num_samples: the study runs until search.budget ({budget.describe()}) is "
            f"spent, which sets how many trials start, got num_samples={search.num_samples}; "
            "remove num_samples (or budget)")
    if hypermodel and search.algorithm == "grid":
        raise ValueError(
            "search.budget: a hypermodel's grid runs in the hypermodel's own order, so a budget "
            "would cut it at one end instead of at random; use search.algorithm: random under a "
            "budget, or remove budget")
    executions = search.executions_per_trial
    if budget.epochs is not None and budget.epochs < executions:
        raise ValueError(
            f"search.budget.epochs: {budget.epochs} is less than one epoch of one trial "
            f"(search.executions_per_trial={executions} trains {executions} epochs for each); "
            f"give at least {executions}")
