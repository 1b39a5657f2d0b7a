"""Ray's callback telemetry leaves tunefleet's own callbacks out, and with them the MLflow and
W&B imports it made for every study (tunefleet/study/ray_telemetry.py)."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

# In a fresh process: this suite's workers have imported MLflow and W&B already.
_PROBE = """
import json, sys
from ray.air._internal import usage
from ray.tune import Callback
from ray.tune.logger import LoggerCallback
from ray._common.usage import usage_lib
from tunefleet.study.ray_telemetry import users_callbacks_counted

own = type("_Console", (Callback,), {"__module__": "tunefleet.study.ray_console"})()
tracker = type("HParamsLogger", (LoggerCallback,),
               {"__module__": "tunefleet.study.trackers.tensorboard_logger"})()
original = usage.tag_callbacks
seen = {}
with users_callbacks_counted():
    usage.tag_callbacks([own])  # what tune.run calls with the study's callbacks
    seen["own_only_imports"] = [m for m in ("mlflow", "wandb", "ray.air.integrations.mlflow")
                                if m in sys.modules]
    seen["own_only_tag"] = usage_lib._recorded_extra_usage_tags.get("air_callbacks")
    usage.tag_callbacks([own, tracker])
    seen["tracker_tag"] = usage_lib._recorded_extra_usage_tags.get("air_callbacks")
seen["restored"] = usage.tag_callbacks is original
print(json.dumps(seen))
"""


def test_own_callbacks_are_not_counted_and_import_nothing():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["own_only_imports"] == []
    assert seen["own_only_tag"] is None  # nothing recorded, as for a run without callbacks
    assert json.loads(seen["tracker_tag"]) == {"CustomLoggerCallback": 1}  # trackers count
    assert seen["restored"] is True


def test_ray_tune_looks_the_tag_up_at_each_run():
    """The filter replaces the module's function: Ray Tune must call it through the module."""
    import ray.tune.tune

    assert "air_usage.tag_callbacks(callbacks)" in inspect.getsource(ray.tune.tune.run)
