"""`tunefleet compare STUDY.yaml`: run experiments that share data, model and search space but
differ in searcher, scheduler and seed, each until the same budget is spent, then write the
comparison report (reports/compare.py: values at the budget, intervals over seeds, rank tests,
a verdict).

The comparison's ``budget`` becomes every study's ``search.budget`` (study/budget.py stops each
study once it is spent), so no variant can set its own, nor ``num_samples``: equal budgets hold
by construction. Each variant runs once per seed in ``seeds`` (default 0, 1, 2)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from pydantic import Field, field_validator, model_validator

from ..reports.compare import ALPHA, MIN_SEEDS
from ..storage import StudyStorage, experiment_storage
from ..spec import Experiment, SpecError, apply_overrides, load_yaml
from ..spec.base import StrictModel
from ..spec.budget import BudgetSpec
from ..spec.experiment import format_validation_error

__all__ = ["ComparisonSpec", "load_comparison", "run_comparison", "COMPARISON_KEYS"]

# Keys of the comparison itself; ``--set`` on any other key changes every experiment.
COMPARISON_KEYS = ("name", "budget", "seeds", "target", "alpha")
# Search keys every algorithm has: a variant that changes the algorithm keeps the base's.
_COMMON_SEARCH_KEYS = ("seed", "max_concurrent", "executions_per_trial", "aggregate",
                       "time_budget_s")
# Set by the comparison for every variant, never by one of them.
_BUDGET_KEYS = ("budget", "num_samples")


class Variant(StrictModel):
    """One setting: a name and the spec sections it changes (usually search and scheduler)."""

    name: str
    set: dict[str, Any] = Field(default_factory=dict)


class ComparisonSpec(StrictModel):
    """A base experiment, the variants to compare, the budget each of them spends, the seeds
    each runs with, and the rank tests' significance level."""

    name: str
    base: dict[str, Any]
    variants: list[Variant]
    budget: BudgetSpec
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    target: Optional[float] = None
    alpha: float = Field(ALPHA, gt=0, lt=1)

    @model_validator(mode="before")
    @classmethod
    def _budget_given(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("budget") is None:
            raise ValueError("budget: a comparison gives every variant the same budget, so that "
                             "none wins by training more; add one of budget: {epochs: N} "
                             "(epochs trained, executions and retries counted), {trials: N} or "
                             "{wall_s: S}")
        return data

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int]) -> list[int]:
        if not value or len(set(value)) != len(value):
            raise ValueError(f"seeds need at least one entry and no repeats, got {value}; "
                             "each seed names its own study")
        return value

    @field_validator("variants")
    @classmethod
    def _distinct(cls, value: list[Variant]) -> list[Variant]:
        names = [v.name for v in value]
        if len(value) < 1 or len(set(names)) != len(names):
            raise ValueError(f"variants need at least one entry and distinct names, got {names}")
        return value

    @model_validator(mode="after")
    def _one_budget(self) -> "ComparisonSpec":
        """Neither the base nor a variant may give its own budget or trial count."""
        sections = [("base", self.base), *((f"variants[{v.name}].set", v.set) for v in self.variants)]
        for where, section in sections:
            search = section.get("search")
            given = [k for k in _BUDGET_KEYS if isinstance(search, dict) and k in search]
            if given:
                raise ValueError(
                    f"{where}.search.{given[0]}: the comparison's budget applies to every "
                    "variant (and sets how many trials start); remove it here and set budget "
                    "once, at the top of the comparison")
        return self

    @property
    def seed_warning(self) -> Optional[str]:
        """Why fewer than :data:`MIN_SEEDS` seeds are not enough (None when there are enough)."""
        n = len(self.seeds)
        if n >= MIN_SEEDS:
            return None
        return (f"seeds: {n} seed{'s' if n != 1 else ''} per variant (fewer than {MIN_SEEDS}): "
                + ("no interval and no rank test can be computed" if n == 1 else
                   "the intervals and rank tests rest on too few runs")
                + "; use seeds: [0, 1, 2] or more")


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Sections merge key by key; ``search``, ``scheduler`` and each search-space entry are
    replaced whole (their valid keys depend on the algorithm or distribution type)."""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if key == "search_space" and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **copy.deepcopy(value)}
        elif key == "search" and isinstance(merged.get(key), dict) and isinstance(value, dict):
            # A new algorithm keeps the base's options every algorithm has, not another
            # algorithm's own.
            carried = {k: v for k, v in merged[key].items() if k in _COMMON_SEARCH_KEYS}
            merged[key] = {**carried, **copy.deepcopy(value)}
        elif isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in (
                "search", "scheduler"):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _split(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(overrides of the comparison's own keys, overrides of every experiment)."""
    own = [o for o in overrides if o.partition("=")[0].strip().split(".")[0] in COMPARISON_KEYS]
    return own, [o for o in overrides if o not in own]


def load_comparison(path: str | Path, overrides: Optional[list[str]] = None
                    ) -> tuple[ComparisonSpec, list[Experiment]]:
    """Validate the comparison and every experiment it implies, before anything runs.

    ``base`` may be inline or a path (relative to the comparison file) to a spec. ``overrides``
    of ``budget``, ``seeds``, ``target``, ``alpha`` or ``name`` change the comparison; any other
    changes every experiment (``search_space.dropout=0.1``).
    """
    from pydantic import ValidationError

    path = Path(path)
    own, each = _split(list(overrides or []))
    data = apply_overrides(load_yaml(path), own)
    if isinstance(data.get("base"), str):
        data["base"] = load_yaml(path.parent / data["base"])
    try:
        spec = ComparisonSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError.many(format_validation_error(exc)) from None
    budget = spec.budget.model_dump(exclude_none=True)
    experiments = []
    for variant in spec.variants:
        for seed in spec.seeds:
            merged = _merge(spec.base, variant.set)
            search = merged.setdefault("search", {})
            search.update({"seed": seed, "budget": budget})
            merged["name"] = f"{spec.name}-{variant.name}-seed{seed}"
            try:
                experiments.append(Experiment.from_dict(apply_overrides(merged, each)))
            except SpecError as exc:
                raise SpecError(f"variants[{variant.name}]", str(exc)) from None
    return spec, experiments


def run_comparison(path: str | Path, overrides: Optional[list[str]] = None,
                   overwrite: bool = False,
                   say: Callable[[str], Any] = lambda line: print(line, file=sys.stderr)
                   ) -> tuple[Path, Any]:
    """Run every experiment of the comparison, report each, then compare them at the budget.
    ``say``: where the warnings and the verdict go (standard error by default), besides the
    report."""
    from ..reports import build_comparison_report, build_study_report
    from .runner import prepare, run

    spec, experiments = load_comparison(path, overrides)
    if spec.seed_warning:
        say(f"warning: {spec.seed_warning}")
    for experiment in experiments:  # every spec checked against its data before any training
        prepare(experiment)
    studies = []
    labels = [variant.name for variant in spec.variants for _ in spec.seeds]  # as ordered
    for experiment in experiments:
        result = run(experiment, overwrite=overwrite)
        # The study as the run's summary loaded it: read once. At a URI, the report is copied
        # next to it. Its best model's test score is what the comparison pairs with validation.
        built = build_study_report(result.study if result.study is not None else
                                   experiment_storage(experiment))
        studies.append(built.study)
    # Beside the studies; for studies at a URI, beside their local mirrors, and copied up.
    comparison_storage = StudyStorage(experiments[0].output.storage, spec.name)
    out = comparison_storage.local_dir
    comparison = build_comparison_report(studies, out, target=spec.target, title=spec.name,
                                         labels=labels, alpha=spec.alpha)
    comparison_storage.upload("")
    for warning in comparison.warnings:
        say(f"warning: {warning}")
    say(f"verdict: {comparison.verdict}")
    return out, comparison
