"""The cluster-launcher configs shipped with tunefleet pass Ray's own config validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import tunefleet

CONFIGS = sorted((Path(tunefleet.__file__).parent / "cluster" / "launcher").glob("*.yaml"))


def test_both_kinds_are_shipped():
    assert {p.name for p in CONFIGS} == {"onprem.yaml", "aws-gpu.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_passes_rays_validation(path):
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load(path.read_text())
    assert any("pip install" in c and "tunefleet" in c for c in config["setup_commands"])
    prepared = prepare_config(config)  # Ray's defaults merged in, as `ray up` does
    validate_config(prepared)  # raises on anything Ray's schema refuses
    if config["provider"]["type"] == "aws":
        gpu = prepared["available_node_types"]["gpu_worker"]["node_config"]["InstanceType"]
        assert gpu.startswith("g5")


def test_validation_would_catch_a_broken_config():
    from ray.autoscaler._private.util import prepare_config, validate_config
    import jsonschema

    config = yaml.safe_load(CONFIGS[0].read_text())
    config["max_workers"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(config))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_the_dashboard_and_its_job_api_listen_on_the_heads_loopback_only(path):
    config = yaml.safe_load(path.read_text())
    head = [c for c in config["head_start_ray_commands"] if "ray start --head" in c]
    assert len(head) == 1 and "--dashboard-host=127.0.0.1" in head[0]
    assert "0.0.0.0" not in path.read_text()
    assert f"ray dashboard tunefleet/cluster/launcher/{path.name}" in path.read_text()
