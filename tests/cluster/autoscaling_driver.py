"""Run by tests/cluster/test_autoscaling.py in its own process (the test session's Ray is
embedded in pytest's): the driver of a GPU study on a fake autoscaling cluster that starts with
no GPU node. Prints ``RESULT {json}``: what ``preview`` said, the study's summary, and the GPU
each trial's epochs ran on.

    python autoscaling_driver.py GCS_ADDRESS OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(address: str, out_dir: str) -> None:
    import tunefleet
    from tunefleet.study.preview import collect_plan, render_plan

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
        rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
        gpus[trial_dir.name] = sorted({str(r.get("gpu_ids")) for r in rows})
    summary = json.loads((result.path / "summary.json").read_text())
    print("RESULT " + json.dumps({"preview": preview, "summary": summary, "gpu_ids": gpus}),
          flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
