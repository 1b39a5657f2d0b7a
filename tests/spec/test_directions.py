"""Which way a metric improves: inferred from its Keras name, one function for the spec, the
executions' ``worst`` aggregate and the report loader; an unknown name is refused, never guessed."""

from __future__ import annotations

import inspect

import pytest

from tunefleet import Experiment
from tunefleet.reports.load import metric_direction as loader_direction
from tunefleet.spec import SpecError
from tunefleet.spec.directions import KNOWN_DIRECTIONS, metric_direction
from tunefleet.trainables.executions import aggregate_logs

MAXIMISED = ["val_sparse_categorical_accuracy", "val_categorical_accuracy", "val_binary_accuracy",
             "val_f1_score", "val_AUC", "val_auc_1", "val_r2_score", "val_accuracy", "accuracy",
             "val_precision_1", "val_recall", "val_fbeta_score", "val_mean_io_u", "val_acc",
             "val_top_k_categorical_accuracy", "val_true_positives", "val_pearson_correlation",
             "val_output_a_accuracy", "val_weighted_sparse_categorical_accuracy", "F1Score"]
MINIMISED = ["val_loss", "loss", "val_mae", "val_mse", "val_rmse", "val_mean_absolute_error",
             "val_root_mean_squared_error", "val_mean_squared_logarithmic_error", "val_mape",
             "val_sparse_categorical_crossentropy", "val_binary_crossentropy", "val_kl_divergence",
             "val_logcosh", "val_hinge", "val_false_negatives", "val_output_a_loss", "val_loss_2",
             "MeanSquaredError"]


def _mode(metric: str, **objective: str) -> str:
    return Experiment.from_dict({"name": "x", "objective": {"metric": metric, **objective}}).objective.mode


@pytest.mark.parametrize("metric", MAXIMISED)
def test_scores_are_maximised(metric):
    mode = _mode(metric)
    assert isinstance(mode, str) and mode == "max"


@pytest.mark.parametrize("metric", MINIMISED)
def test_losses_and_errors_are_minimised(metric):
    assert _mode(metric) == "min"


@pytest.mark.parametrize("metric", ["val_foo", "val_my_score", "val_", "val_mean", "val_error_rate"])
def test_an_unknown_direction_is_refused_and_asks_for_objective_mode(metric):
    with pytest.raises(SpecError, match=rf"^objective\.mode: cannot tell whether '{metric}' is "
                       r"better higher or lower .*set objective\.mode: max or objective\.mode: min"):
        _mode(metric)


@pytest.mark.parametrize("metric,mode", [("val_foo", "max"), ("val_foo", "min"), ("val_f1_score", "max")])
def test_an_explicit_mode_is_kept(metric, mode):
    assert _mode(metric, mode=mode) == mode


def test_an_explicit_mode_against_the_metric_is_refused():
    with pytest.raises(SpecError, match=r"^objective\.mode: val_f1_score is better when higher, "
                       r"got mode='min'; use mode: max"):
        _mode("val_f1_score", mode="min")


@pytest.mark.parametrize("metric", MAXIMISED + MINIMISED)
def test_spec_loader_and_executions_agree(metric):
    """The spec's mode, the report loader's direction for a best_<metric> column, and the
    executions' worst aggregate of a non-objective metric all read one function."""
    mode = _mode(metric)
    assert loader_direction(metric) == mode == metric_direction(metric)
    logs = [{metric: 0.2, "objective": 1.0}, {metric: 0.8, "objective": 2.0}]
    worst = aggregate_logs(logs, "worst", objective="objective", objective_mode="min")[metric]
    assert worst == (0.2 if mode == "max" else 0.8)


def test_the_loader_falls_back_only_for_metrics_no_spec_could_have_as_objective():
    assert loader_direction("val_foo") == "max" and metric_direction("val_foo") is None


def _keras_metrics():
    import keras
    from keras.src import metrics as keras_metrics

    needs = {"num_classes": 2, "target_class_ids": [0], "recall": 0.5, "precision": 0.5,
             "specificity": 0.5, "sensitivity": 0.5}
    for key, obj in sorted(keras_metrics.ALL_OBJECTS_DICT.items()):
        if not (inspect.isclass(obj) and issubclass(obj, keras.metrics.Metric)):
            continue
        params = inspect.signature(obj.__init__).parameters
        if "fn" in params:
            continue  # MeanMetricWrapper: its direction is its function's
        yield key, obj(**{k: v for k, v in needs.items() if k in params})


def test_every_keras_metric_has_the_direction_it_declares():
    """The table against the installed Keras: each metric object's own ``_direction``."""
    checked = 0
    for key, metric in _keras_metrics():
        declared = getattr(metric, "_direction", None)
        if declared is None:
            continue  # Mean, Sum, TruePositives, ...: Keras does not say
        expected = {"up": "max", "down": "min"}[declared]
        assert metric_direction(metric.name) == expected, (key, metric.name)
        assert metric_direction(f"val_{metric.name}") == expected, key
        assert metric_direction(key) == expected, key
        checked += 1
    assert checked >= 40


def test_every_keras_loss_is_minimised():
    from keras.src import losses as keras_losses

    for key in keras_losses.ALL_OBJECTS_DICT:
        if key in ("Loss", "LossFunctionWrapper"):
            continue
        if key in ("cosine_similarity", "CosineSimilarity"):
            # Compiled as a loss it is logged as "loss"; as a metric it is a similarity.
            assert metric_direction(key) == "max"
            continue
        assert metric_direction(key) == "min", key


def test_keras_tuner_agrees_except_where_keras_itself_says_otherwise():
    """KerasTuner's infer_metric_direction calls F1Score, R2Score and the correlations "min"
    (they are not in its list of scores); Keras' own metric objects say "up"."""
    from keras_tuner.engine.metrics_tracking import infer_metric_direction

    kerastuner_wrong = {"f1_score", "f_beta_score", "r2_score", "cosine_similarity",
                        "pearson_correlation", "concordance_correlation", "binary_io_u"}
    for name in KNOWN_DIRECTIONS:
        try:
            theirs = infer_metric_direction(name)
        except Exception:  # noqa: BLE001 - it builds metric objects, and some need arguments
            continue
        if theirs is None or name in kerastuner_wrong:
            continue
        assert theirs == KNOWN_DIRECTIONS[name], name
    assert infer_metric_direction("f1_score") == "min" and metric_direction("f1_score") == "max"
