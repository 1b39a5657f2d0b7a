"""Several studies side by side: one row per study, anytime curves on shared axes, several
seeds of one setting as mean and spread."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from .figures import Anytime, collect_anytime
from ..spec import SpecError
from .load import StudyData, load_study
from .plots import plot_anytime
from .render import _table, write_comparison_documents

__all__ = ["Comparison", "collect_comparison", "build_comparison_report"]


@dataclass
class Comparison:
    """The comparison table, the anytime runs grouped by setting, and the target used."""

    table: pd.DataFrame
    groups: dict[str, list[Anytime]]
    objective: str
    mode: str
    target: float


def _test_score(study: StudyData) -> tuple[Optional[str], Optional[float]]:
    path = study.path / "report" / "test_metrics.json"
    if not path.exists():
        return None, None
    metrics = json.loads(path.read_text())["metrics"]
    key = "accuracy" if "accuracy" in metrics else "rmse"
    return key, metrics[key]


def _most_important(study: StudyData) -> Optional[str]:
    path = study.path / "report" / "importance.csv"
    if not path.exists():
        return None
    table = pd.read_csv(path)
    return None if table.empty else f"{table.iloc[0]['hyperparameter']} ({table.iloc[0]['importance']:.0%})"


def _first_reach(run: Anytime, target: float) -> tuple[Optional[float], Optional[int]]:
    reached = run.best >= target if run.mode == "max" else run.best <= target
    if not reached.any():
        return None, None
    i = int(np.argmax(reached))
    return float(run.elapsed_s[i]), int(run.epochs[i])


def collect_comparison(studies: Sequence[StudyData], target: Optional[float] = None) -> Comparison:
    """Rows per study; ``target`` defaults to the worst of the studies' best values, so every
    study reaches it and 'time to target' compares how fast each got there."""
    objective, mode = studies[0].objective, studies[0].mode
    mismatched = [s.path.name for s in studies if (s.objective, s.mode) != (objective, mode)]
    if mismatched:
        raise SpecError(", ".join(mismatched), f"these studies optimise a different objective "
                        f"than {studies[0].path.name} ({objective}, {mode})",
                        fix="compare studies with the same objective metric and mode")
    runs = [collect_anytime(s) for s in studies]
    bests = [r.best[-1] for r in runs if len(r.best) and np.isfinite(r.best[-1])]
    if target is None and bests:
        target = float(min(bests) if mode == "max" else max(bests))
    rows: list[dict[str, object]] = []
    groups: dict[str, list[Anytime]] = {}
    for study, run in zip(studies, runs, strict=True):
        exp = study.experiment
        setting = f"{exp.search.algorithm} + {exp.scheduler.name}"
        groups.setdefault(setting, []).append(run)
        test_key, test_value = _test_score(study)
        seconds, epochs = _first_reach(run, target) if target is not None else (None, None)
        rows.append({
            "study": exp.name, "search": exp.search.algorithm, "scheduler": exp.scheduler.name,
            "seed": exp.search.seed, "trials": len(study.trials),
            f"best {objective}": run.best[-1] if len(run.best) else None,
            f"test {test_key or 'metric'}": test_value,
            "wall time (s)": study.summary.get("wall_time_s", float(run.elapsed_s.max()) if len(run.elapsed_s) else None),
            "epochs": study.epochs_run,  # trained: executions and repeated epochs counted
            "time to target (s)": seconds, "epochs to target": epochs,
            "most important": _most_important(study),
        })
    return Comparison(pd.DataFrame(rows), groups, objective, mode, float(target) if target is not None else float("nan"))


def build_comparison_report(paths: Sequence[str | Path | StudyData], out_dir: str | Path,
                            target: Optional[float] = None, title: str = "Comparison") -> Comparison:
    """Load each study (or take it as loaded already), write comparison.csv, anytime.png,
    report.md and report.html."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    studies = [p if isinstance(p, StudyData) else load_study(p) for p in paths]
    comparison = collect_comparison(studies, target)
    comparison.table.to_csv(out / "comparison.csv", index=False)
    all_runs = [r for members in comparison.groups.values() for r in members]
    plot_anytime(all_runs, out / "anytime.png", groups=comparison.groups)
    by_setting = comparison.table.groupby(["search", "scheduler"], sort=False).agg(
        studies=("study", "count"), best_mean=(f"best {comparison.objective}", "mean"),
        best_std=(f"best {comparison.objective}", "std"), wall_time_mean=("wall time (s)", "mean"),
        epochs_mean=("epochs", "mean")).reset_index()
    lead = by_setting.sort_values("best_mean", ascending=comparison.mode == "min").iloc[0]
    fastest = by_setting.sort_values("wall_time_mean").iloc[0]
    text = "\n".join([
        f"# {title}", "",
        (f"{len(studies)} studies, objective **{comparison.objective}** ({comparison.mode}). "
         f"Best on average: **{lead['search']} + {lead['scheduler']}** "
         f"({comparison.objective} {lead['best_mean']:.4f}); fastest: **{fastest['search']} + "
         f"{fastest['scheduler']}** ({fastest['wall_time_mean']:.1f} s on average)."), "",
        "## Studies", "", _table(comparison.table), "",
        (f"Target for 'time to target': {comparison.objective} "
         f"{'≥' if comparison.mode == 'max' else '≤'} {comparison.target:.4g}."), "",
        "## By setting (mean over seeds)", "", _table(by_setting), "",
        "## Anytime performance", "",
        ("Best objective so far against wall time and against epochs trained; several seeds of "
         "one setting are shown as their mean with a min–max band."), "",
        "![anytime](anytime.png)", "",
    ])
    write_comparison_documents(title, text, out)
    return comparison
