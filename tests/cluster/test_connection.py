"""Ray stays on loopback; a study that no node can place is refused with the reason."""

from __future__ import annotations

import pytest

from tests.conftest import tiny_spec
from tunefleet import Experiment, SpecError
from tunefleet.cluster import ClusterInfo, check_fits, concurrent_trials


def test_local_ray_listens_on_loopback_only(ray_local):
    nodes = ray_local.nodes()
    assert nodes and all(n["NodeManagerAddress"] == "127.0.0.1" for n in nodes)
    assert ray_local.get_runtime_context().gcs_address.startswith("127.0.0.1:")


def _cluster(cpus=4.0, gpus=0.0, node_cpus=None, node_gpus=None) -> ClusterInfo:
    return ClusterInfo("local", cpus, gpus, node_cpus if node_cpus is not None else cpus,
                       node_gpus if node_gpus is not None else gpus, 1, False)


@pytest.mark.parametrize("resources, cluster, pattern", [
    ({"gpu": 0.5}, _cluster(), r"^resources\.gpu: the Ray cluster has no GPUs, got 0\.5"),
    ({"gpu": 2}, _cluster(gpus=2, node_gpus=1), r"^resources\.gpu: no node has that many GPUs \(largest: 1\)"),
    ({"cpu": 3}, _cluster(cpus=4, node_cpus=2), r"^resources\.cpu: no node has that many CPUs \(largest: 2\)"),
])
def test_unplaceable_trials_are_refused(tmp_path, resources, cluster, pattern):
    exp = Experiment.from_dict(tiny_spec(tmp_path, resources=resources))
    with pytest.raises(SpecError, match=pattern):
        check_fits(exp, cluster)


@pytest.mark.parametrize("resources, cpus, gpus, limit, expected", [
    ({"cpu": 1}, 2, 0, None, 2),
    ({"cpu": 0.5}, 2, 0, None, 4),
    ({"cpu": 1, "gpu": 0.5}, 8, 1, None, 2),   # two trials share the one GPU
    ({"cpu": 1}, 8, 0, 3, 3),                  # search.max_concurrent caps it
    ({"cpu": 4}, 2, 0, None, 1),
])
def test_concurrent_trials(tmp_path, resources, cpus, gpus, limit, expected):
    search = {"algorithm": "random", "num_samples": 8, "max_concurrent": limit}
    exp = Experiment.from_dict(tiny_spec(tmp_path, resources=resources, search=search))
    assert concurrent_trials(exp, cpus, gpus) == expected
