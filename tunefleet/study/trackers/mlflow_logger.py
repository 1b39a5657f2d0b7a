"""MLflow runs of a study (``output.trackers: [mlflow]``): a parent run for the study, a child
run per trial."""

from __future__ import annotations

import tempfile
import time
from typing import Any, Optional

from ray.air.integrations.mlflow import MLflowLoggerCallback

from ...spec import Experiment
from . import BEST_MODEL_ARTIFACT, UNMEASURED, BestEpochs, hyperparameters, keras_metrics, number

__all__ = ["MlflowLogger", "STUDY_TAG", "TRIAL_TAG", "BEST_TRIAL_TAG"]

STUDY_TAG = "tunefleet.study"  # on the parent run: the study's directory or URI
TRIAL_TAG = "tunefleet.trial_id"  # on a child run: Ray's trial id (trial_<id>/)
BEST_TRIAL_TAG = "tunefleet.best_trial_id"  # on the parent run, at the end


class MlflowLogger(MLflowLoggerCallback):
    """Ray's MLflow logger, nested: a parent run for the study (its spec, and at the end the
    best trial, its objective and its best epoch's checkpoint under ``best_model/``), and a
    child run per trial (``mlflow.parentRunId``) with the trial's hyperparameters (without the
    seed) and its Keras metrics, learning rate and epoch time at step = epoch. A resumed study
    continues its parent run and its trials' runs (found by their tags)."""

    def __init__(self, experiment: Experiment, location: str, tracking_uri: Optional[str],
                 artifact_location: Optional[str]) -> None:
        import os

        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or experiment.name
        super().__init__(tracking_uri=tracking_uri, experiment_name=name)
        self.name = name
        self.experiment = experiment
        self.location = location
        self.artifact_location = artifact_location
        self.best = BestEpochs(experiment)
        self.parent = ""  # the study's run, set up when Ray starts the study

    def setup(self, *args: Any, **kwargs: Any) -> None:
        from mlflow.tracking import MlflowClient

        # A client of its own, not Ray's setup: mlflow.set_tracking_uri would point every later
        # MLflow user in this process (the next study too) at this study's store.
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        known = self.client.get_experiment_by_name(self.name)
        self.experiment_id = str(known.experiment_id if known is not None else
                                 self.client.create_experiment(
                                     self.name, artifact_location=self.artifact_location))
        self._trial_runs: dict[Any, str] = {}
        found = self._runs(f"tags.`{STUDY_TAG}` = '{self.location}'")
        if found:
            self.parent = found[0].info.run_id
            self.client.update_run(self.parent, status="RUNNING")
            self._earlier_bests()
        else:
            exp = self.experiment
            run = self.client.create_run(self.experiment_id, run_name=exp.name,
                                         tags={STUDY_TAG: self.location})
            self.parent = run.info.run_id
            self.client.log_dict(self.parent, exp.to_dict(), "spec.json")
            self._params(self.parent, {
                "objective": f"{exp.objective.metric} ({exp.objective.mode})",
                "search": exp.search.algorithm, "scheduler": exp.scheduler.name,
                "num_samples": exp.search.num_samples, "epochs": exp.train.epochs,
                "study": self.location})
        self.tags = {"mlflow.parentRunId": self.parent}

    def _earlier_bests(self) -> None:
        """A resumed study's finished trials, as their runs recorded them: they compete for
        the study's best trial with the trials this run trains."""
        key = f"best_{self.best.metric}"
        for run in self.client.search_runs(
                [self.experiment_id], max_results=50000,
                filter_string=f"tags.`mlflow.parentRunId` = '{self.parent}'"):
            metrics, trial_id = run.data.metrics, run.data.tags.get(TRIAL_TAG)
            if trial_id and key in metrics and "best_epoch" in metrics:
                self.best.record(trial_id, float(metrics[key]), int(metrics["best_epoch"]))

    def _runs(self, query: str) -> list:
        return list(self.client.search_runs([self.experiment_id], filter_string=query,
                                            max_results=2))

    def _params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow's limit per batch
            self.client.log_batch(run_id, params=items[i:i + 100])

    def _metrics(self, run_id: str, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, step)
                                               for k, v in values.items()])

    def log_trial_start(self, trial: Any) -> None:
        if trial in self._trial_runs:
            return
        found = self._runs(f"tags.`{TRIAL_TAG}` = '{trial.trial_id}' and "
                           f"tags.`mlflow.parentRunId` = '{self.parent}'")
        if found:
            self._trial_runs[trial] = found[0].info.run_id
            self.client.update_run(self._trial_runs[trial], status="RUNNING")
            return
        run = self.client.create_run(self.experiment_id, run_name=f"trial_{trial.trial_id}",
                                     tags={"mlflow.parentRunId": self.parent,
                                           TRIAL_TAG: trial.trial_id})
        self._trial_runs[trial] = run.info.run_id
        self._params(run.info.run_id, hyperparameters(trial.config))

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        if trial not in self._trial_runs:
            self.log_trial_start(trial)
        self.best.update(trial.trial_id, result)
        if result.get("stop_reason") in UNMEASURED:
            return
        values = keras_metrics(result)
        for extra in ("lr", "epoch_time_s"):
            value = number(result.get(extra))
            if value is not None:
                values[extra] = value
        self._metrics(self._trial_runs[trial], values, int(result.get("epoch", iteration)))

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        run_id = self._trial_runs.pop(trial, None)
        if run_id is None:
            return
        best = self.best.of(trial.trial_id)
        if best is not None:
            self._metrics(run_id, {f"best_{self.best.metric}": best[0],
                                   "best_epoch": float(best[1])}, 0)
        self.client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if not self.parent:
            return
        winner = self.best.winner()
        trial = next((t for t in trials if t.trial_id == winner), None)
        if trial is not None:
            value, epoch = self.best.best[trial.trial_id]
            self.client.set_tag(self.parent, BEST_TRIAL_TAG, trial.trial_id)
            self._metrics(self.parent, {f"best_{self.best.metric}": value}, 0)
            self.client.log_dict(self.parent, {
                "trial_id": trial.trial_id, "epoch": epoch, self.best.metric: value,
                "config": hyperparameters(trial.config)}, "best_trial.json")
            self._log_checkpoint(trial, epoch)
        self.client.set_terminated(self.parent, status="FINISHED")

    def _log_checkpoint(self, trial: Any, epoch: int) -> None:
        """The best trial's checkpoint of its best epoch (Ray keeps the best ones by the
        objective), under ``best_model/`` of the parent run."""
        manager = getattr(getattr(trial, "run_metadata", None), "checkpoint_manager", None)
        results = list(getattr(manager, "best_checkpoint_results", None) or [])
        chosen = [r for r in results if int(r.metrics.get("epoch", -1)) == epoch]
        if not chosen:
            return
        with tempfile.TemporaryDirectory(prefix="tunefleet-mlflow-") as tmp:
            local = chosen[-1].checkpoint.to_directory(tmp)
            self.client.log_artifacts(self.parent, local, BEST_MODEL_ARTIFACT)
