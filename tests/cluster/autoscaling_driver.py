"""Run by tests/cluster/scenarios.py for test_autoscaling.py (or alone: python
autoscaling_driver.py OUT_DIR): a fake autoscaling cluster that starts with no GPU node
(fake_autoscaler.py), and this process the driver of a GPU study on it, as a user's driver
joining the cluster would be. Prints ``RESULT {json}``: the cluster's address and config file,
what ``preview`` said, the study's summary, the GPU each trial's epochs ran on, and the
cluster's processes still alive once it was stopped."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

WORKERS = {"gpu_worker": {"resources": {"CPU": 1, "GPU": 1}, "max_workers": 2}}


def main(out_dir: str) -> None:
    from tests.cluster.fake_autoscaler import cluster_env

    saved = dict(os.environ)
    os.environ.update(cluster_env())  # the head's auth mode, before this process imports Ray
    try:
        _study_on_the_cluster(out_dir)
    finally:  # the scenarios after this one in the process get the environment back
        os.environ.clear()
        os.environ.update(saved)


def _study_on_the_cluster(out_dir: str) -> None:
    from tests.cluster.fake_autoscaler import autoscaling_cluster, processes_of
    import tunefleet
    from tunefleet.study.preview import collect_plan, render_plan

    with autoscaling_cluster({"CPU": 1, "GPU": 0}, WORKERS) as (address, config):
        spec = {
            "name": "autoscaled", "data": {"dataset": "digits"},
            "model": {"builder": "mlp", "params": {"units": 16}},
            "train": {"epochs": 2, "batch_size": 64},
            "search_space": {"dropout": {"type": "grid", "values": [0.0, 0.2]}},
            "search": {"algorithm": "grid", "seed": 1},
            "objective": {"metric": "val_accuracy", "mode": "max"},
            "resources": {"cpu": 0.5, "gpu": 0.5},
            "cluster": {"address": address},
            "output": {"storage": str(Path(out_dir) / "results")},
        }
        experiment = tunefleet.Experiment.from_dict(spec)
        preview = render_plan(collect_plan(experiment))
        result = tunefleet.run(experiment)
        gpus = {}
        for trial_dir in sorted(result.path.glob("trial_*")):
            rows = [json.loads(line)
                    for line in (trial_dir / "result.json").read_text().splitlines()]
            gpus[trial_dir.name] = sorted({str(r.get("gpu_ids")) for r in rows})
        summary = json.loads((result.path / "summary.json").read_text())
    print("RESULT " + json.dumps({"address": address, "config": str(config), "preview": preview,
                                  "summary": summary, "gpu_ids": gpus,
                                  "left": processes_of(config.parent)}), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main(sys.argv[1])
