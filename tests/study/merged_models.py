"""Builders and hypermodels that let one real study answer several tests' questions
(imported by trial processes by name, like tests/builders.py and tests/hypermodels.py)."""

from __future__ import annotations

from tests import hypermodels
from tests.builders import small_mlp, troubled_mlp


class MetricObjectBatchSizeHyperModel(hypermodels.BatchSizeHyperModel):
    """BatchSizeHyperModel's ``fit`` (the batch size tuned in fit()), built by
    ``metric_object_mlp`` (compiled with a ``SparseCategoricalAccuracy()`` metric object)."""

    def build(self, hp):
        return hypermodels.metric_object_mlp(hp)


def failing_mlp(info, units: int = 16, fail_on_units: int = -1, hang_on_units: int = -1,
                oom_on_units: int = -1, nan_on_units: int = -1):
    """troubled_mlp (hangs for ``hang_on_units``, MemoryError for ``oom_on_units``) that also
    raises RuntimeError, as small_mlp does, for ``fail_on_units``, and whose loss is NaN (small_mlp's
    ``explode``) for ``nan_on_units``."""
    if int(units) == int(fail_on_units):
        raise RuntimeError(f"deliberate failure for units={units}")
    if int(units) == int(nan_on_units):
        return small_mlp(info, units=units, explode=True)
    return troubled_mlp(info, units=units, hang_on_units=hang_on_units, oom_on_units=oom_on_units)
