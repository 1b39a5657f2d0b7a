"""The aggregate a trial with several executions reports, and the executions' seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tunefleet.trainables.executions import aggregate_logs, execution_seed, per_execution

LOGS = [{"loss": 0.5, "val_accuracy": 0.90}, {"loss": 0.3, "val_accuracy": 0.80},
        {"loss": 0.4, "val_accuracy": 0.96}]


@pytest.mark.parametrize("how, loss, accuracy", [
    ("mean", 0.4, (0.90 + 0.80 + 0.96) / 3),
    ("median", 0.4, 0.90),
    ("worst", 0.5, 0.80),  # the highest loss, the lowest accuracy
])
def test_aggregate_of_the_executions(how, loss, accuracy):
    out = aggregate_logs(LOGS, how, "val_accuracy", "max")
    assert out["loss"] == pytest.approx(loss) and out["val_accuracy"] == pytest.approx(accuracy)
    assert out["std/val_accuracy"] == pytest.approx(np.std([0.90, 0.80, 0.96]))
    assert per_execution(out, "val_accuracy") == [0.90, 0.80, 0.96]


def test_worst_follows_the_objective_mode():
    # An objective minimised (e.g. a custom score) takes its highest value as the worst.
    out = aggregate_logs(LOGS, "worst", "val_accuracy", "min")
    assert out["val_accuracy"] == pytest.approx(0.96)


def test_one_execution_reports_plain_values_only():
    out = aggregate_logs(LOGS[:1], "mean", "val_accuracy", "max")
    assert out == {"loss": 0.5, "val_accuracy": 0.90}


def test_a_nan_execution_makes_the_mean_nan():
    out = aggregate_logs([{"loss": math.nan}, {"loss": 0.2}], "mean", "val_loss", "min")
    assert math.isnan(out["loss"]) and math.isnan(out["std/loss"])


def test_execution_seeds_are_distinct_and_stable():
    seeds = [execution_seed(123, k) for k in range(5)]
    assert seeds[0] == 123 and len(set(seeds)) == 5
    assert seeds == [execution_seed(123, k) for k in range(5)]
