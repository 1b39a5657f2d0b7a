"""What a resumed study may change, checked before Ray starts: ``--set`` overrides, a SPEC given
to `run --resume`, and the number of trials (only more)."""

from __future__ import annotations

import json
import warnings

from ..spec import Experiment, SpecError
from ..storage import experiment_storage

__all__ = ["RESUMABLE", "resume_overrides", "same_study", "section_changes", "added_samples"]

# What a resumed study may change: where it runs, when its failure policy stops it, how many
# trials it holds (only more: see continuation.py) and its time budget (a new one for this
# run). The rest is in the state Ray restores (trials' configurations, resources and retry
# budgets, searcher, scheduler).
RESUMABLE = ("cluster.", "failure.max_consecutive", "search.num_samples", "search.time_budget_s")
_SEARCH_RESUMABLE = ("num_samples", "time_budget_s")


def resume_overrides(overrides: list[str]) -> list[str]:
    """``overrides`` (``--set`` items), if a resume may apply every one; else SpecError."""
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key == "failure.max_retries":
            raise SpecError(f"--set {key}", "cannot change when a study resumes: Ray keeps "
                            "each trial's retry budget with the trial, so the trials it "
                            "restores would keep the old one", item, fix="resume without it, "
                            "or start a new study with `tunefleet run --overwrite` or another "
                            "name")
        if not key.startswith(RESUMABLE):
            raise SpecError(f"--set {key}", "cannot change when a study resumes: its trials, "
                            "searcher and scheduler continue with the spec it started with",
                            item, fix="resume without it (resume accepts cluster.*, "
                            "failure.max_consecutive, search.num_samples, search.time_budget_s "
                            "and --address), or start a new study with `tunefleet "
                            "run --overwrite` or another name")
    return overrides


def same_study(stored: Experiment, given: Experiment) -> None:
    """SpecError if ``given`` (the SPEC of `run --resume`) differs from the study's own spec
    in more than what a resume may change."""
    a, b = stored.to_dict(), given.to_dict()
    for spec in (a, b):  # what a resume may change in the search section
        spec["search"] = {k: v for k, v in spec["search"].items() if k not in _SEARCH_RESUMABLE}
    differ = sorted(k for k in {*a, *b} - {"output", "cluster", "failure"} if a.get(k) != b.get(k))
    if differ:
        raise SpecError("--resume", f"SPEC differs from the spec {experiment_storage(stored).location} was "
                        f"started with, in {', '.join(differ)}; a resumed study continues "
                        "with its own", fix="resume with the spec it started with (or "
                        "`tunefleet resume DIR`), or start a new study with --overwrite or "
                        "another name")


def section_changes(stored: Experiment, given: Experiment) -> list[str]:
    """The ``cluster``/``failure`` values (and ``search.num_samples``/``time_budget_s``) in
    which ``given`` (the SPEC of `run --resume`) differs from the study's own, as overrides:
    applied if a resume may change them, refused otherwise, never ignored."""
    a, b = stored.to_dict(), given.to_dict()
    b["search"] = {k: v for k, v in b["search"].items() if k in _SEARCH_RESUMABLE}
    return [f"{section}.{key}={json.dumps(value)}" for section in ("cluster", "failure", "search")
            for key, value in b[section].items() if a[section].get(key) != value]


def added_samples(stored: Experiment, experiment: Experiment, overrides: list[str],
                   location: str) -> bool:
    """Whether the resumed ``experiment`` holds more trials than the ``stored`` one; SpecError
    if fewer (a study keeps the trials it ran). Asking for the same number adds nothing (a
    warning says so) and resumes as without it."""
    old, new = stored.search.num_samples, experiment.search.num_samples
    if new < old:
        raise SpecError("search.num_samples", f"cannot decrease when a study resumes: "
                        f"{location} holds {old} and keeps the trials it ran", new,
                        fix=f"pass more than {old} to add trials, or resume without it")
    asked = any(o.partition("=")[0].strip() == "search.num_samples" for o in overrides)
    if new == old and asked:
        warnings.warn(f"search.num_samples={new} is what {location} already holds: no trials "
                      "are added (pass a larger number to add some)", stacklevel=3)
    return new > old
