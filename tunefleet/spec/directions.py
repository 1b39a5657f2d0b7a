"""Which way a metric improves, from its name as Keras reports it (``val_auc_1``,
``val_sparse_categorical_accuracy``, ``output_a_loss``): one function for the spec, the
executions' ``worst`` aggregate and the report loader, so they never disagree."""

from __future__ import annotations

import re
from typing import Optional

__all__ = ["metric_direction", "KNOWN_DIRECTIONS"]

# Every metric and loss Keras 3 ships, under the names Keras logs them by (snake case, their
# short aliases, and KerasTuner's special cases), with the direction each Keras metric object
# declares itself (``Metric._direction``: "up" is max). tests/spec/test_directions.py checks
# this table against the installed Keras. Resolving names through Keras at run time instead
# would import TensorFlow into the driver and build metric objects (TF ops before GPUs are
# hidden), and KerasTuner's ``infer_metric_direction`` calls F1Score and R2Score "min".
_MAX = (
    "accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
    "auc", "precision", "recall", "precision_at_recall", "recall_at_precision",
    "sensitivity_at_specificity", "specificity_at_sensitivity", "true_positives",
    "true_negatives", "f1_score", "f1", "fbeta_score", "f_beta_score", "r2_score", "r2",
    "iou", "io_u", "mean_iou", "mean_io_u", "binary_iou", "binary_io_u", "one_hot_iou",
    "one_hot_io_u", "one_hot_mean_iou", "one_hot_mean_io_u", "pearson_correlation",
    "concordance_correlation", "cosine_similarity",
)
_MIN = (
    "loss", "crossentropy", "ce", "mae", "mse", "rmse", "mape", "msle", "mean_absolute_error",
    "mean_squared_error", "root_mean_squared_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "binary_crossentropy", "bce", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "binary_focal_crossentropy",
    "categorical_focal_crossentropy", "kl_divergence", "kld", "kullback_leibler_divergence",
    "poisson", "hinge", "squared_hinge", "categorical_hinge", "log_cosh", "logcosh",
    "log_cosh_error", "huber", "huber_loss", "false_positives", "false_negatives", "ctc", "dice",
    "tversky", "circle",
)
KNOWN_DIRECTIONS: dict[str, str] = {**{n: "max" for n in _MAX}, **{n: "min" for n in _MIN}}

# Keras makes a second metric of a kind unique with a counter: ``auc_1``, ``precision_2``.
_COUNTER = re.compile(r"_\d+$")


def _snake(name: str) -> str:
    """Keras' own class-name-to-metric-name rule: ``MeanIoU`` -> ``mean_io_u``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def metric_direction(name: str) -> Optional[str]:
    """``"min"`` or ``"max"`` for a metric name as Keras logs it; None when no rule applies
    (then the user must say, with ``objective.mode``). Accepts the ``val_`` and ``weighted_``
    prefixes, Keras' ``_1`` counters, any case, and an output-name prefix of a multi-output
    model (``output_a_loss``)."""
    if not isinstance(name, str):
        return None
    bases = dict.fromkeys(n.strip().removeprefix("val_").removeprefix("weighted_")
                          for n in (name.lower(), _snake(name)))
    for candidate in (*bases, *(_COUNTER.sub("", b) for b in bases)):
        words = candidate.split("_")
        # The longest known tail wins: ``false_positives`` before ``positives``.
        for start in range(len(words)):
            found = KNOWN_DIRECTIONS.get("_".join(words[start:]))
            if found is not None:
                return found
    return None
