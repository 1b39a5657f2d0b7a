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
    """The trial's model with the weights of its best epoch (its first execution's)."""
    from ..data import load_test_split
    from ..reports.evaluate import restore_model

    if not isinstance(row.get("checkpoint"), str):
        raise SpecError(f"trial {row['trial_id']}", "kept no checkpoint of its best epoch",
                        fix="keep more checkpoints: settings=['output.num_to_keep=3']")
    meta = load_test_split(study.path / "data")[2]
    return restore_model(study, row, hypermodel, meta)
