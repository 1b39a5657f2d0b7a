"""TensorBoard with the HParams dashboard populated (``output.trackers: [tensorboard]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ray.tune.logger import TBXLoggerCallback

from ...spec import Experiment
from . import BestEpochs, hyperparameters, keras_metrics

__all__ = ["HParamsLogger"]

EXPERIMENT_TAG = "_hparams_/experiment"


class HParamsLogger(TBXLoggerCallback):
    """Ray's TensorBoard logger (every reported number, per epoch, in each trial's directory),
    with the HParams dashboard written the way TensorBoard reads it: each trial is a session
    (its hyperparameters, without the seed) whose metrics are its final Keras metrics and
    ``best/<objective>`` (its best epoch's, as summary.json has it); one experiment record at
    the study's top lists them all. Ray's own writes an experiment record in every trial, and
    TensorBoard shows only the first one found: one trial's metrics and Ray's bookkeeping."""

    def __init__(self, experiment: Experiment) -> None:
        super().__init__()
        self.best = BestEpochs(experiment)
        self.best_tag = f"best/{experiment.objective.metric}"
        self.types: dict[str, str] = {}  # hyperparameter -> TensorBoard data type
        self.metric_tags: set[str] = set()
        self.top: Optional[str] = None  # the study directory (Ray's experiment directory)

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        super().log_trial_result(iteration, trial, result)
        self.best.update(trial.trial_id, result)
        self.top = str(Path(trial.local_path).parent)

    def _try_log_hparams(self, trial: Any, result: dict) -> None:
        """Ray's per-trial experiment record: replaced by :meth:`_log_session` (Ray writes it
        only for trials with ``evaluated_params``, which a custom searcher's trials lack)."""

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        if trial in self._trial_writer:
            self._log_session(trial, failed)
        super().log_trial_end(trial, failed)

    def _log_session(self, trial: Any, failed: bool) -> None:
        from tensorboardX.proto.api_pb2 import Status
        from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo
        from tensorboardX.summary import hparams

        writer = self._trial_writer[trial]
        params = hyperparameters(trial.config)
        metrics = {f"ray/tune/{k}": v
                   for k, v in keras_metrics(trial.last_result or {}).items()}
        best = self.best.of(trial.trial_id)
        if best is not None:
            writer.add_scalar(self.best_tag, best[0], global_step=best[1])
            metrics[self.best_tag] = best[0]
        _, start, end = hparams(hparam_dict=params, metric_dict=metrics)
        if failed:
            end.value[0].metadata.plugin_data.content = HParamsPluginData(
                session_end_info=SessionEndInfo(status=Status.Value("STATUS_FAILURE")),
                version=0).SerializeToString()
        writer.file_writer.add_summary(start)
        writer.file_writer.add_summary(end)
        for key, value in params.items():
            self.types.setdefault(key, "DATA_TYPE_BOOL" if isinstance(value, bool) else
                                  "DATA_TYPE_STRING" if isinstance(value, str) else
                                  "DATA_TYPE_FLOAT64")
        self.metric_tags.update(metrics)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        super().on_experiment_end(trials, **info)
        if self.top is None or not self.types:
            return
        from tensorboardX.proto.api_pb2 import (
            DataType,
            Experiment as Record,
            HParamInfo,
            MetricInfo,
            MetricName,
        )
        from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
        from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

        tags = sorted(self.metric_tags, key=lambda t: (t != self.best_tag, t))
        record = Record(
            hparam_infos=[HParamInfo(name=k, type=DataType.Value(t))
                          for k, t in sorted(self.types.items())],
            metric_infos=[MetricInfo(name=MetricName(tag=t)) for t in tags])
        meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name="hparams",
            content=HParamsPluginData(experiment=record, version=0).SerializeToString()))
        writer = self._summary_writer_cls(self.top, flush_secs=30)
        writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=EXPERIMENT_TAG,
                                                                    metadata=meta)]))
        writer.close()
