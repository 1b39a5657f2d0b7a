"""A re-created tuner on a study that exists: which of its settings may change (as a resumed
study's may), what it says instead of resuming a study that ended by itself, and the result it
returns then, read from disk."""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["differences", "ended_message", "stored_result"]

# Spec sections a continued search may change (None: all of it), as a resumed study may
# (study/resume_rules.py): the rest is in the state Ray restores.
_CONTINUABLE = {"search": ("num_samples", "time_budget_s"), "output": None, "cluster": None,
                "failure": ("max_consecutive",)}


def differences(given: dict[str, Any], stored: dict[str, Any]) -> list[str]:
    """The settings in which a re-created tuner's spec differs from its study's, beyond what a
    continued search may change (``_CONTINUABLE``)."""
    out = []
    for section in sorted({*given, *stored}):
        allowed = _CONTINUABLE.get(section, ())
        if allowed is None:
            continue
        a, b = given.get(section), stored.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{section}.{k}" for k in sorted({*a, *b})
                    if k not in allowed and a.get(k) != b.get(k)]
        elif a != b:
            out.append(section)
    return out


def ended_message(summary: dict[str, Any], project_dir: str, have: int,
                  budget_changed: bool) -> Optional[str]:
    """What a re-created tuner asking for the trials its study holds says instead of resuming
    it; None if the tuner resumes it: a study cut short (interrupted, or with no summary or
    one of fewer trials than its spec: its driver was killed), and one whose time budget ran
    out when the tuner passes another ``time_budget_s``. A study that ended by itself (done, a budget spent, the failure policy)
    stays as it is: resuming it again would run another time budget, or nothing."""
    from ..study.budget import spent_search_budget
    from ..study.failure_policy import INTERRUPTED, budget_spent

    stopped = summary.get("stopped")
    if not summary or (stopped and stopped.startswith(INTERRUPTED)):
        return None
    total = (summary.get("trials") or {}).get("total")
    if not stopped and isinstance(total, int) and total < have:
        return None  # a continuation to ``have`` trials whose driver was killed
    if not stopped:
        return (f"{project_dir} already holds the {have} trials asked for; raise max_trials "
                "to add trials, or pass overwrite=True to start again")
    if budget_spent(stopped):
        if budget_changed:
            return None
        return (f"{project_dir} ended: {stopped}, and a search with the same max_trials and "
                "time_budget_s does not resume it; pass another time_budget_s to run its "
                "remaining trials for that long, raise max_trials to add trials, or pass "
                "overwrite=True to start again")
    if spent_search_budget(stopped):
        return (f"{project_dir} ended: {stopped}, and the study is what that budget bought; "
                "pass overwrite=True or another project_name to start again")
    return (f"{project_dir} stopped: {stopped}; the trials it stopped are not run again: fix "
            "the cause, then raise max_trials to add trials (max_consecutive_failed_trials may "
            "change too), or pass overwrite=True to start again")


def stored_result(study: Any, summary: dict[str, Any], storage: Any) -> Any:
    """The study's StudyResult as its last search left it (summary.json and the trials
    as summarize reads them), without writing anything."""
    from ..spec import TRIAL_SEED_KEY
    from ..study.summary import StudyResult

    trials = study.trials
    if TRIAL_SEED_KEY in trials and trials[TRIAL_SEED_KEY].isna().all():
        trials = trials.drop(columns=[TRIAL_SEED_KEY])  # as summarize: HyperOpt's trials
    trials = trials.rename(columns={k: f"config/{k}"
                                    for k in [*study.hyperparameters, TRIAL_SEED_KEY]})
    best = summary.get("best") or {}
    return StudyResult(study.path, best.get("config"), best.get("metrics"), trials, summary,
                       storage.reference, study=study)
