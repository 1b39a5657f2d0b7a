"""`tunefleet compare STUDY.yaml`: run experiments that share data, model and search space but
differ in searcher, scheduler and seed, then write the comparison report."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Optional

from pydantic import Field, field_validator

from ..storage import StudyStorage, experiment_storage
from ..spec import Experiment, SpecError, load_yaml
from ..spec.base import StrictModel
from ..spec.experiment import format_validation_error

__all__ = ["ComparisonSpec", "load_comparison", "run_comparison"]


class Variant(StrictModel):
    """One setting: a name and the spec sections it changes (usually search and scheduler)."""

    name: str
    set: dict[str, Any] = Field(default_factory=dict)


class ComparisonSpec(StrictModel):
    """A base experiment, the variants to compare, and the seeds each variant runs with."""

    name: str
    base: dict[str, Any]
    variants: list[Variant]
    seeds: list[int] = Field(default_factory=lambda: [0])
    target: Optional[float] = None

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


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Sections merge key by key; ``search``, ``scheduler`` and each search-space entry are
    replaced whole (their valid keys depend on the algorithm or distribution type)."""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if key == "search_space" and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **copy.deepcopy(value)}
        elif key == "search" and isinstance(merged.get(key), dict) and isinstance(value, dict):
            # A new algorithm keeps the base's budget and limits (not grid, where num_samples
            # means repeats of the grid) but not another algorithm's own options.
            carried = {k: v for k, v in merged[key].items() if k in ("seed", "max_concurrent") or (
                k == "num_samples" and value.get("algorithm") != "grid")}
            merged[key] = {**carried, **copy.deepcopy(value)}
        elif isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in (
                "search", "scheduler"):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_comparison(path: str | Path, overrides: Optional[list[str]] = None
                    ) -> tuple[ComparisonSpec, list[Experiment]]:
    """Validate the comparison and every experiment it implies, before anything runs.

    ``base`` may be inline or a path (relative to the comparison file) to a spec.
    """
    from pydantic import ValidationError

    path = Path(path)
    data = load_yaml(path)
    if isinstance(data.get("base"), str):
        data["base"] = load_yaml(path.parent / data["base"])
    try:
        spec = ComparisonSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError.many(format_validation_error(exc)) from None
    experiments = []
    for variant in spec.variants:
        for seed in spec.seeds:
            merged = _merge(spec.base, variant.set)
            merged.setdefault("search", {})["seed"] = seed
            merged["name"] = f"{spec.name}-{variant.name}-seed{seed}"
            try:
                from ..spec import apply_overrides

                experiments.append(Experiment.from_dict(apply_overrides(merged, overrides or [])))
            except SpecError as exc:
                raise SpecError(f"variants[{variant.name}]", str(exc)) from None
    return spec, experiments


def run_comparison(path: str | Path, overrides: Optional[list[str]] = None,
                   overwrite: bool = False) -> tuple[Path, Any]:
    """Run every experiment of the comparison, report each, then compare them."""
    from ..reports import build_comparison_report, build_study_report
    from .runner import prepare, run

    spec, experiments = load_comparison(path, overrides)
    for experiment in experiments:  # every spec checked against its data before any training
        prepare(experiment)
    studies = []
    for experiment in experiments:
        result = run(experiment, overwrite=overwrite)
        # The study as the run's summary loaded it: read once. At a URI, the report is copied
        # next to it.
        built = build_study_report(result.study if result.study is not None else
                                   experiment_storage(experiment))
        studies.append(built.study)
    # Beside the studies; for studies at a URI, beside their local mirrors, and copied up.
    comparison_storage = StudyStorage(experiments[0].output.storage, spec.name)
    out = comparison_storage.local_dir
    comparison = build_comparison_report(studies, out, target=spec.target, title=spec.name)
    comparison_storage.upload("")
    return out, comparison
