"""search.points_to_evaluate: HyperOpt's TPE tries the given configurations first, in order,
exactly as written (types kept), then samples; fixed entries stay the spec's.

The same holds for every model-based searcher: test_model_based.py drives HyperOpt, Optuna (TPE
and CMA-ES) and BOHB as Ray does, without a cluster; tests/test_contract.py checks that the
points of its Optuna and BOHB studies ran as written on a real Ray."""

from __future__ import annotations

import json

import pytest

from tests.conftest import tiny_spec
from tunefleet import run

pytestmark = pytest.mark.slow


def test_hyperopt_starts_from_the_given_points(ray_local, tmp_path):
    points = [{"learning_rate": 0.01, "dropout": 0.05, "units": 16},
              {"learning_rate": 0.002, "dropout": 0.25, "units": 32}]
    result = run(tiny_spec(
        tmp_path, name="points", model={"builder": "mlp"}, train={"epochs": 1},
        search_space={"learning_rate": {"type": "loguniform", "low": 1e-3, "high": 2e-2},
                      "dropout": {"type": "uniform", "low": 0.0, "high": 0.3},
                      "units": {"type": "choice", "values": [16, 32]}, "layers": 1},
        search={"algorithm": "hyperopt", "num_samples": 3, "seed": 4, "max_concurrent": 1,
                "points_to_evaluate": points}))
    assert result.finished == 3
    # One trial at a time: the order of their first results is the order they were suggested.
    def started(trial_dir):
        return json.loads((trial_dir / "result.json").read_text().splitlines()[0])["reported_at"]

    trial_dirs = sorted(result.path.glob("trial_*"), key=started)
    configs = [json.loads((d / "params.json").read_text()) for d in trial_dirs]
    tried = [{k: c[k] for k in ("learning_rate", "dropout", "units")} for c in configs]
    assert tried[:2] == points
    assert [type(c["units"]) for c in configs[:2]] == [int, int]
    assert tried[2] not in points  # then TPE's own suggestion
    assert all(c["layers"] == 1 for c in configs)  # the fixed entry, not HyperOpt's
