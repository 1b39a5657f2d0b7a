"""The best trial's model on the held-out test split: restored from its best checkpoint (or,
on request, retrained on train+validation), scored with scikit-learn, exported as .keras."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..data import DataInfo, ImageFolderData, load_dataset, load_test_split
from ..data.image_folder import FileSplit, report_root
from ..spec import SpecError
from ..trainables.checkpoint import execution_dir, load_state
from ..trainables.compile import make_callbacks
from ..trainables.epoch_data import EpochData
from ..trainables.executions import execution_seed
from ..trainables.keras_trainable import build_trial_model, derive_seed, fit_arguments
from .export import export_best_model
from .load import StudyData

__all__ = ["TestReport", "evaluate_best", "classification_metrics", "regression_metrics",
           "NoCheckpointError", "restore_model"]


class NoCheckpointError(SpecError):
    """The best trial kept no checkpoint to restore (the report says so and goes on)."""


@dataclass
class TestReport:
    """Test-split scores of the best model, and where it came from."""

    trial_id: str
    task: str
    source: str  # "checkpoint <path>" or "retrained on train+validation for N epochs"
    n_test: int
    metrics: dict[str, float]
    per_class: Optional[dict[str, dict[str, float]]] = None
    confusion: Optional[list[list[int]]] = None
    labels: list[str] = field(default_factory=list)
    model_path: Optional[str] = None
    metrics_std: Optional[dict[str, float]] = None  # across executions, when there are several
    executions: Optional[list[dict[str, float]]] = None
    model_usage: str = ""  # Markdown: how to predict with the exported model (raw rows)
    # The epoch whose checkpoint was restored, and its validation metrics as the trial reported
    # them (None when retrained): the model scored is the one the best epoch names.
    epoch: Optional[int] = None
    validation: Optional[dict[str, float]] = None

    def to_json(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str],
                           scores: Optional[np.ndarray] = None) -> dict[str, Any]:
    """Accuracy, weighted and macro precision/recall/F1, per-class report, confusion matrix,
    and ROC AUC when ``scores`` (positive-class probabilities, binary tasks) are given."""
    from sklearn import metrics as skm

    ids = list(range(len(labels)))
    metrics = {"accuracy": float(skm.accuracy_score(y_true, y_pred))}
    for avg in ("weighted", "macro"):
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=ids, average=avg,
                                                         zero_division=0)
        metrics.update({f"precision_{avg}": float(p), f"recall_{avg}": float(r), f"f1_{avg}": float(f)})
    if scores is not None:
        metrics["roc_auc"] = float(skm.roc_auc_score(y_true, scores))
    report = skm.classification_report(y_true, y_pred, labels=ids, target_names=labels,
                                       output_dict=True, zero_division=0)
    per_class = {name: {k: float(v) for k, v in report[name].items()} for name in labels}
    confusion = skm.confusion_matrix(y_true, y_pred, labels=ids).tolist()
    return {"metrics": metrics, "per_class": per_class, "confusion": confusion}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, MSE, RMSE and R²."""
    from sklearn import metrics as skm

    mse = float(skm.mean_squared_error(y_true, y_pred))
    return {"mae": float(skm.mean_absolute_error(y_true, y_pred)), "mse": mse,
            "rmse": float(np.sqrt(mse)), "r2": float(skm.r2_score(y_true, y_pred))}


def _info(meta: dict[str, Any]) -> DataInfo:
    return DataInfo(name=meta["name"], task=meta["task"], input_shape=tuple(meta["input_shape"]),
                    num_classes=meta["num_classes"], class_names=meta.get("class_names", []))


def predict(model: Any, x: Any, task: str) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """(predicted labels or values, positive-class scores for binary tasks); ``x`` an array,
    or a batched ``tf.data`` pipeline (an image folder's test split, streamed)."""
    batch = {"batch_size": 512} if isinstance(x, np.ndarray) else {}
    out = np.asarray(model.predict(x, verbose=0, **batch))
    if task == "multiclass":
        return out.argmax(axis=1), None
    if task == "binary":
        return (out[:, 0] > 0.5).astype(int), out[:, 0]
    return out[:, 0], None


def _hypermodel(study: StudyData, hypermodel: Any) -> Any:
    ref = hypermodel if hypermodel is not None else study.experiment.model.hypermodel
    if ref is None:
        return None
    from ..trainables.hypermodel import HypermodelError, resolve_hypermodel

    try:
        return resolve_hypermodel(ref)
    except HypermodelError as exc:
        raise SpecError("model.hypermodel", f"cannot rebuild the best model: {exc}", ref,
                        fix="run the report where that module imports, or pass the hypermodel "
                        "itself: tunefleet.report(dir, hypermodel=build_model)") from None


def restore_model(study: StudyData, row: Any, hypermodel: Any, meta: dict[str, Any],
                  execution: int = 0) -> Any:
    """Trial ``row``'s model (built as the trial built it) with the state of its best
    checkpoint (``execution``'s, for a trial of several executions)."""
    model, _ = _restored(study, row, _hypermodel(study, hypermodel), _info(meta), execution)
    return model


def _restored(study: StudyData, row: Any, hm: Any, info: DataInfo,
              execution: int) -> tuple[Any, dict[str, Any]]:
    exp = study.experiment
    trial_dir = study.path / f"trial_{row['trial_id']}"
    config = json.loads((trial_dir / "params.json").read_text())
    n = exp.search.executions_per_trial
    trial = build_trial_model(exp, info, config, hm,
                              execution_seed(derive_seed(exp.search.seed, config), execution))
    meta = load_state(execution_dir(Path(row["checkpoint"]), execution, n), trial.model,
                      info.input_shape)
    return trial.model, meta


def _score(report: TestReport, y_test: np.ndarray, y_pred: np.ndarray,
           scores: Optional[np.ndarray], info: DataInfo) -> dict[str, float]:
    if info.task == "regression":
        return regression_metrics(y_test, y_pred)
    labels = info.class_names or [str(i) for i in range(info.num_classes)]
    scored = classification_metrics(y_test.astype(int), y_pred, labels, scores)
    if report.per_class is None:  # the first execution's details stand for the report
        report.per_class, report.confusion, report.labels = (
            scored["per_class"], scored["confusion"], labels)
    return scored["metrics"]


def evaluate_best(study: StudyData, out_dir: Path, retrain: bool = False,
                  hypermodel: Any = None) -> Optional[TestReport]:
    """Score the best trial's model on the saved test split; None if no trial scored.

    With several executions per trial every execution's model is scored: the report gives
    their mean (and standard deviation), and exports the first execution's model.
    """
    best = study.best_trial()
    if best is None:
        return None
    exp = study.experiment
    trial_dir = study.path / f"trial_{best['trial_id']}"
    if not retrain and not isinstance(best["checkpoint"], str):
        raise NoCheckpointError(str(trial_dir), "the best trial kept no checkpoint to restore",
                                fix="report with --retrain (it trains the best configuration "
                                "again), or re-run the study: every epoch that improves a "
                                "trial's objective is checkpointed")
    hm = _hypermodel(study, hypermodel)
    if retrain and exp.data.dataset == "arrays":
        raise SpecError("--retrain", "the study's data came from Python arrays, which the "
                        "report cannot reload", fix="report without --retrain")
    config = json.loads((trial_dir / "params.json").read_text())
    x_test, y_test, meta = load_test_split(study.path / "data")
    info = _info(meta)
    n = exp.search.executions_per_trial
    trial_seed = derive_seed(exp.search.seed, config)
    report = TestReport(trial_id=str(best["trial_id"]), task=info.task, source="",
                        n_test=int(len(y_test)), metrics={})
    runs, first = [], None
    for k in range(n):
        if retrain:
            trial = build_trial_model(exp, info, config, hm, execution_seed(trial_seed, k))
            epochs = _retrain(exp, trial, int(best["best_epoch"] or trial.settings.epochs), hm)
            report.source = f"retrained on train+validation for {epochs} epochs (--retrain)"
            model = trial.model
        else:
            model, meta = _restored(study, best, hm, info, k)
            report.source = f"checkpoint {Path(best['checkpoint']).relative_to(study.path)}"
            report.epoch = int(meta["epoch"])
            report.validation = _validation(study, report.trial_id, report.epoch)
        y_pred, scores = predict(model, x_test, info.task)
        runs.append(_score(report, y_test, y_pred, scores, info))
        if first is None:
            first = model
    report.metrics = {m: float(np.mean([r[m] for r in runs])) for m in runs[0]}
    if n > 1:
        report.source += f"; mean of {n} executions"
        report.metrics_std = {m: float(np.std([r[m] for r in runs])) for m in runs[0]}
        report.executions = runs
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "best_model.keras"
    report.model_usage = export_best_model(first, study.path / "data", model_path)
    report.model_path = str(model_path)
    report.to_json(out_dir / "test_metrics.json")
    return report


def _validation(study: StudyData, trial_id: str, epoch: int) -> dict[str, float]:
    """The validation metrics (and the objective) trial ``trial_id`` reported at ``epoch``."""
    history = study.history
    rows = history[(history["trial_id"] == trial_id) & (history["epoch"] == epoch)]
    if rows.empty:
        return {}
    row = rows.iloc[-1]
    names = [m for m in study.metrics if m.startswith("val_") or m == study.objective]
    return {m: float(row[m]) for m in names if m in row and not np.isnan(float(row[m]))}


def _retrain(exp: Any, trial: Any, epochs: int, hypermodel: Any) -> int:
    spec = exp.data
    if spec.dataset == "image_folder":  # where the report reads the folder from
        spec = spec.model_copy(update={"path": report_root(spec.path)})
    data = load_dataset(spec).training
    # Only the schedule applies: with validation data merged in, nothing can be monitored.
    schedule = make_callbacks(trial.settings.train.model_copy(
        update={"early_stopping": None, "reduce_lr_on_plateau": None}))
    arguments = fit_arguments(exp, trial.settings, hypermodel)
    if isinstance(data, ImageFolderData):  # streamed from the files, shuffled as a trial is
        merged = replace(data, train=FileSplit(data.train.files + data.validation.files,
                                               np.concatenate([data.y_train, data.y_val])))
        feed = EpochData(merged, arguments.pop("batch_size"), trial.settings.train.shuffle,
                         pipeline=True)
        for epoch in range(epochs):
            trial.fit(**feed.epoch(exp.search.seed, epoch), epochs=epoch + 1,
                      initial_epoch=epoch, callbacks=schedule, **{**arguments, "shuffle": False})
        return epochs
    # Joined as stored (uint8 for compact images), then scaled once: one float32 copy.
    trial.fit(x=data.model_inputs(np.concatenate([data.stored_x_train, data.stored_x_val])),
              y=np.concatenate([data.y_train, data.y_val]), epochs=epochs, callbacks=schedule,
              **arguments)
    return epochs
