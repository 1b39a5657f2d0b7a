"""One study's report: tables, test metrics of the best model, importance, figures, rendered."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..data.image_folder import ImageFolderUnreadable
from .evaluate import NoCheckpointError, TestReport, evaluate_best
from .figures import collect_anytime, collect_curves, collect_effects, collect_parallel
from .importance import Importance, collect_importance
from ..storage import StudyStorage
from .load import StudyData, load_study
from .schedules import collect_schedules, plot_schedules
from .plots import (plot_anytime, plot_confusion, plot_curves, plot_effects, plot_importance,
                    plot_parallel)

__all__ = ["StudyReport", "build_study_report", "write_tables"]


@dataclass
class StudyReport:
    """Everything a study report shows, with the files it wrote."""

    study: StudyData
    out_dir: Path
    test: Optional[TestReport]
    importance: Importance
    test_note: str = ""
    figures: dict[str, Path] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    uploaded_to: Optional[str] = None  # for a study at a URI: where the report was copied
    schedules: Any = None  # PBT/PB2 studies: hyperparameters by epoch (schedules.py)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, in order


class _Clock:
    """Seconds spent in each stage of a report (``scripts/bench_report.py`` prints them)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage] = now - self._last
        self._last = now


def write_tables(study: StudyData, out_dir: Path) -> dict[str, Path]:
    """``trials.csv`` and ``history.csv``: the same bytes each time for the same study."""
    out_dir.mkdir(parents=True, exist_ok=True)
    trials, history = out_dir / "trials.csv", out_dir / "history.csv"
    table = study.trials.drop(columns=["checkpoint"]).copy()
    table.insert(len(table.columns), "checkpoint", study.trials["checkpoint"].map(
        lambda p: str(Path(p).relative_to(study.path)) if isinstance(p, str) else ""))
    table.to_csv(trials, index=False)
    study.history.to_csv(history, index=False)
    return {"trials": trials, "history": history}


def build_study_report(path: str | Path | StudyStorage | StudyData,
                       out_dir: Optional[str | Path] = None, retrain: bool = False,
                       evaluate: bool = True, hypermodel: Any = None) -> StudyReport:
    """Read the study at ``path`` and write its report (default: ``path/report``; for a study at
    a URI, in its local mirror, then uploaded next to the study). ``path`` may be a study
    already loaded (:func:`load_study`): it is then not read again.

    ``hypermodel``: for a hypermodel study whose ``build_model`` cannot be imported by name
    (defined in a notebook or ``__main__``), the object itself, to rebuild the best model.
    """
    from .render import write_study_documents

    clock = _Clock()
    study = path if isinstance(path, StudyData) else load_study(path)
    clock.lap("load")
    out = Path(out_dir) if out_dir else study.path / "report"
    storage = study.storage
    files = write_tables(study, out)
    clock.lap("tables")
    test, note = None, ""
    if evaluate:
        try:
            test = evaluate_best(study, out, retrain=retrain, hypermodel=hypermodel)
        except (NoCheckpointError, ImageFolderUnreadable) as exc:
            note = str(exc)  # no checkpoint, or an image folder unreadable here: the rest stands
        if test is None and not note:
            note = "no trial reported a finite objective, so there is no best model to test"
        clock.lap("evaluate")
    importance = collect_importance(study)
    importance.as_frame().to_csv(out / "importance.csv", index=False)
    clock.lap("importance")
    figures = {}
    if not study.history.empty:  # with no result at all there is nothing to draw
        figures["curves"] = plot_curves(collect_curves(study), out / "curves.png")
        clock.lap("figure curves")
        figures["anytime"] = plot_anytime([collect_anytime(study)], out / "anytime.png")
        clock.lap("figure anytime")
        figures["effects"] = plot_effects(collect_effects(study), out / "effects.png")
        clock.lap("figure effects")
        figures["parallel"] = plot_parallel(collect_parallel(study), out / "parallel.png")
        clock.lap("figure parallel")
    if importance.names:
        figures["importance"] = plot_importance(importance, out / "importance.png")
        clock.lap("figure importance")
    if test is not None and test.confusion is not None:
        figures["confusion"] = plot_confusion(test.confusion, test.labels, out / "confusion.png")
        clock.lap("figure confusion")
    schedules = collect_schedules(study)
    if schedules is not None and not schedules.rows.empty:
        schedules.rows.to_csv(out / "schedules.csv", index=False)
        files["schedules"] = out / "schedules.csv"
        figures["schedules"] = plot_schedules(schedules, out / "schedules.png")
        clock.lap("schedules")
    report = StudyReport(study, out, test, importance, note, figures, files,
                         schedules=schedules)
    report.files.update(write_study_documents(report))
    clock.lap("documents")
    if storage is not None and out_dir is None:  # the report goes next to the study it reports
        storage.upload("report")
        report.uploaded_to = f"{storage.location}/report"
        clock.lap("upload")
    report.timings = clock.laps
    return report
