"""A finished study read back the way KerasTuner's tuners hand results out: the best trials
ranked by their best epoch, each trial's ``HyperParameters``, and its model restored from the
checkpoint of that epoch (not retrained)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..reports.load import StudyData
from ..search_spaces.hypermodel_space import SPACE_FILE
from ..spec import SpecError
from ..study.summary import recorded_config

__all__ = ["ranked", "trial_hyperparameters", "trial_model", "space_hyperparameters"]


def ranked(study: StudyData, count: int) -> list[pd.Series]:
    """Up to ``count`` trials with a finite objective, best first (ties: earlier trial)."""
    column = f"best_{study.objective}"
    scored = study.trials.dropna(subset=[column])
    scored = scored.assign(_score=scored[column].astype(float)).sort_values(
        "_score", ascending=study.mode == "min", kind="stable")
    return [row for _, row in scored.head(max(int(count), 0)).iterrows()]


def space_hyperparameters(path: Path) -> Any:
    """The study's discovered space as a ``keras_tuner.HyperParameters`` (no values set)."""
    import keras_tuner as kt

    space = json.loads((path / SPACE_FILE).read_text())["keras_tuner"]
    return kt.HyperParameters.from_config({"space": space.get("space", []), "values": {}})


def trial_hyperparameters(study: StudyData, row: pd.Series) -> Any:
    """The trial's values, typed as declared, in a ``HyperParameters`` holding the whole space:
    ``build_model(hp)`` builds that trial's model."""
    hp = space_hyperparameters(study.path)
    config = recorded_config(study.path, str(row["trial_id"]), study.hyperparameters, row)
    hp.values = {k: v for k, v in config.items() if k in study.hyperparameters}
    return hp


def trial_model(study: StudyData, row: pd.Series, hypermodel: Any) -> Any:
    """The trial's model with the weights of the checkpoint of its best epoch. With several
    executions the trial's score is their aggregate, but the checkpoint holds one model per
    execution; as KerasTuner keeps "the best epoch across all executions", this returns the
    execution whose model there scores best on the objective (as recorded for those weights:
    that epoch's logs, or, for an execution that ran before the last in one-call mode and so
    holds its final weights, its final logs). Ties go to the earlier execution."""
    from ..data import load_test_split
    from ..reports.evaluate import restore_model

    if not isinstance(row.get("checkpoint"), str):
        raise SpecError(f"trial {row['trial_id']}", "kept no checkpoint of its best epoch",
                        fix="keep more checkpoints: settings=['output.num_to_keep=3']")
    meta = load_test_split(study.path / "data")[2]
    return restore_model(study, row, hypermodel, meta, _best_execution(study, row))


def _best_execution(study: StudyData, row: pd.Series) -> int:
    import math

    from ..trainables.checkpoint import META_FILE, execution_dir

    n = study.experiment.search.executions_per_trial
    if n == 1:
        return 0
    scores = []
    for k in range(n):
        meta = json.loads((execution_dir(Path(row["checkpoint"]), k, n) / META_FILE).read_text())
        history = meta.get("history") or []
        logs = history[-1] if meta.get("finished") and history else meta.get("last") or {}
        value = float(logs.get(study.objective, math.nan))
        if math.isfinite(value):
            scores.append((-value if study.mode == "max" else value, k))
    return min(scores)[1] if scores else 0
