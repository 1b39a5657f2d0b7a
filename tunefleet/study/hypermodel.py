"""The Python entry point for KerasTuner users: ``tune_hypermodel(build_model, x, y, ...)`` runs
the hypermodel under Ray Tune the way ``tuner.search(x, y, ...)`` would run it in one process,
and ``best_hyperparameters`` hands the winner back as a ``keras_tuner.HyperParameters``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

from ..data import arrays_as_raw
from ..spec import SpecError, apply_overrides
from ..spec.directions import metric_direction
from .summary import StudyResult, typed_value

__all__ = ["tune_hypermodel", "best_hyperparameters"]


def _objective(objective: Any) -> dict[str, Any]:
    """The objective as KerasTuner takes it (``"val_loss"``, ``keras_tuner.Objective(name,
    direction)``, or a list of one of these) as the spec's objective section: the direction is
    the Objective's, or inferred from the metric's Keras name, or the user is asked for it."""
    fix = "pass e.g. objective='val_accuracy' or keras_tuner.Objective('val_f1', direction='max')"
    if isinstance(objective, (list, tuple)):
        if len(objective) != 1:
            names = [getattr(o, "name", o) for o in objective]
            raise SpecError("objective", "tunefleet optimises one objective, not a list of "
                            f"{len(objective)} (KerasTuner's multi-objective search)", names,
                            fix="pick the one metric to optimise, e.g. objective="
                            f"{names[0]!r}" if names else fix)
        objective = objective[0]
    if isinstance(objective, str):
        if not objective:
            raise SpecError("objective", "must name a metric", objective, fix=fix)
        return {"metric": objective}
    name, direction = getattr(objective, "name", None), getattr(objective, "direction", None)
    if not isinstance(name, str) or not name:
        raise SpecError("objective", "must be a metric name or a keras_tuner.Objective",
                        objective, fix=fix)
    if direction not in ("min", "max"):
        raise SpecError("objective", f"keras_tuner.Objective({name!r}) needs direction 'min' or "
                        "'max'", direction,
                        fix=f"pass keras_tuner.Objective({name!r}, direction='max') (or 'min')")
    return {"metric": name, "mode": direction}


def _check_direction(objective: dict[str, Any]) -> None:
    """A metric name with no direction KerasTuner users can see how to give."""
    metric = objective.get("metric")
    if objective.get("mode") is None and isinstance(metric, str) and metric_direction(metric) is None:
        raise SpecError("objective", "cannot tell whether this metric is better higher or lower "
                        "(it is not a metric or loss Keras names)", metric,
                        fix=f"pass keras_tuner.Objective({metric!r}, direction='max') (or "
                        "direction='min'), or settings=['objective.mode=max']")


def tune_hypermodel(hypermodel: Any, x: Any, y: Any, *, validation_split: float = 0.2,
                    validation_data: Optional[tuple] = None, test_data: Optional[tuple] = None,
                    objective: Any = "val_accuracy", max_trials: int = 10,
                    search: str = "hyperopt", scheduler: str = "asha", epochs: int = 10,
                    batch_size: Optional[int] = None, executions_per_trial: int = 1,
                    name: str = "hypermodel", directory: Union[str, Path] = "tunefleet_results",
                    overwrite: bool = False, seed: int = 0, report: bool = True,
                    settings: Optional[list[str]] = None) -> StudyResult:
    """Tune a KerasTuner ``build_model(hp)`` function or ``HyperModel`` on ``x, y``.

    - ``validation_split`` / ``validation_data`` as in ``tuner.search``; ``test_data=(x, y)``
      is held out for the report (without it, 20% of ``x, y`` is held out);
    - ``search``: ``hyperopt`` (TPE), ``random`` or ``grid``; ``scheduler``: ``asha``,
      ``hyperband``, ``median`` or ``fifo``; ``max_trials`` configurations (a grid runs each of
      its configurations once);
    - ``settings``: further spec settings as ``"section.key=value"`` strings, as on the command
      line (``"train.early_stopping.patience=5"``, ``"resources.cpu=2"``).

    Returns the finished study; its report (test metrics of the best model, figures) is in
    ``directory/name/report`` unless ``report=False``.
    """
    from .runner import run

    spec: dict[str, Any] = {
        "name": name,
        "data": {"dataset": "arrays", "validation_fraction": validation_split, "seed": seed},
        "model": {"hypermodel": _reference(hypermodel)},
        "train": {"epochs": epochs, **({"batch_size": batch_size} if batch_size else {})},
        "search": {"algorithm": search, "seed": seed,
                   "num_samples": 1 if search == "grid" else max_trials,
                   "executions_per_trial": executions_per_trial},
        "scheduler": {"name": scheduler},
        "objective": _objective(objective),
        "output": {"storage": str(directory)},
    }
    spec = apply_overrides(spec, settings or [])
    _check_direction(spec["objective"])
    try:
        data = arrays_as_raw(x, y, validation_data, test_data)
    except ValueError as exc:
        raise SpecError("data", str(exc)) from None
    result = run(spec, overwrite=overwrite, data=data, hypermodel=hypermodel)
    if report:
        from ..reports import build_study_report

        # The study as the run's summary loaded it: not read again.
        build_study_report(result.study if result.study is not None else result.path,
                           hypermodel=hypermodel)
    return result


def _reference(hypermodel: Any) -> str:
    from ..trainables.hypermodel import hypermodel_reference

    return hypermodel_reference(hypermodel)


def best_hyperparameters(study: Union[StudyResult, str, Path]) -> Any:
    """The best trial's values as a ``keras_tuner.HyperParameters`` holding the whole discovered
    space, so that ``build_model(best_hyperparameters(study))`` builds the winning model."""
    import json

    import keras_tuner as kt

    from ..search_spaces.hypermodel_space import SPACE_FILE

    path = Path(study.path if isinstance(study, StudyResult) else study)
    space_file = path / SPACE_FILE
    if not space_file.is_file():
        raise SpecError(str(path), "is not a hypermodel study (no search_space.json)",
                        fix="best_hyperparameters is for studies of a KerasTuner hypermodel; "
                        "read summary.json's best.config otherwise")
    summary = json.loads((path / "summary.json").read_text())
    if not summary.get("best"):
        raise SpecError(str(path), "has no best trial (no trial reported a finite objective)")
    space = json.loads(space_file.read_text())
    config = space["keras_tuner"]
    hp = kt.HyperParameters.from_config({"space": config.get("space", []), "values": {}})
    # Each value as its hyperparameter types it, also for a summary.json written before
    # summaries kept ints (an Int read back from a float column: units_1: 24.0).
    declared = {p["name"]: p for p in space["params"]}
    hp.values = {k: typed_value(v, declared.get(k, {}))
                 for k, v in summary["best"]["config"].items()}
    return hp
