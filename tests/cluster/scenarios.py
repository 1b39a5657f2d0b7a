"""Run by tests/cluster/conftest.py, in two processes beside the tests: the cluster scenarios of
test_gpus.py (half-GPU trials on an embedded Ray with 2 GPUs declared), test_multinode.py (a
worker node killed mid-study, multinode_study.py), test_node_local_storage.py (a node blind to
the study's directory, blind_node.py), test_autoscaling.py (a GPU study on a fake autoscaling
cluster, autoscaling_driver.py) and test_submit.py (a study submitted as a Ray job), each on Ray
processes of its own; and two that need a process, not a cluster, of their own (test_gpus.py's
MirroredStrategy trial on an embedded Ray, test_autoscaling.py's `tunefleet preview` of an
address where nothing answers). The scenarios named to one process run one after another in
it, with one interpreter and one TensorFlow import; each test asserts on its own scenario's
outcome.

    python scenarios.py OUT_DIR NAME [NAME ...]   prints RESULT NAME {json} per scenario

``gpus`` runs first when named: it checks what the driver's TensorFlow sees before anything
else in this process has touched it.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def gpus(out_dir: str) -> dict:
    """A study with 2 GPUs declared to its embedded Ray, half a GPU per trial; what the
    driver's TensorFlow saw before and after (the study writes into OUT_DIR/results/gpus)."""
    from tunefleet import run
    from tunefleet.cluster.devices import driver_gpus_hidden

    from tests.conftest import tiny_spec

    spec = tiny_spec(Path(out_dir), name="gpus", search={"algorithm": "grid", "max_concurrent": 4},
                     model={"builder": "mlp", "params": {"units": 16}},
                     search_space={"dropout": {"type": "grid", "values": [0.0, 0.1, 0.2, 0.3]}},
                     train={"epochs": 1, "batch_size": 64},
                     resources={"cpu": 0.5, "gpu": 0.5},
                     cluster={"num_cpus": 2, "num_gpus": 2})
    before = driver_gpus_hidden()
    result = run(spec)  # its checks build models and train: TensorFlow has run ops by now
    import tensorflow as tf

    return {"before": before, "hidden": driver_gpus_hidden(),
            "gpus": len(tf.config.get_visible_devices("GPU")), "finished": result.finished}


def _printed_result(main, out_dir: str) -> dict:
    """Run a scenario script's ``main(out_dir)``; return the JSON of its RESULT line."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main(out_dir)
    lines = [line for line in printed.getvalue().splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"no RESULT line; it printed: {printed.getvalue()[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def multinode(out_dir: str) -> dict:
    from tests.cluster import multinode_study

    return _printed_result(multinode_study.main, out_dir)


def blind(out_dir: str) -> dict:
    from tests.cluster import blind_node

    return _printed_result(blind_node.main, out_dir)


def autoscaled(out_dir: str) -> dict:
    from tests.cluster import autoscaling_driver

    return _printed_result(autoscaling_driver.main, out_dir)


def submitted(out_dir: str) -> dict:
    from tests.cluster import test_submit

    return test_submit.submitted_study(Path(out_dir))


def mirrored(out_dir: str) -> dict:
    """One trial training with MirroredStrategy over two logical CPU devices, on an embedded
    Ray of its own, and its report (the test split, from the trial's checkpoint), here."""
    from tunefleet import report, run

    from tests.conftest import tiny_spec

    spec = tiny_spec(Path(out_dir), name="mirrored",
                     search={"algorithm": "random", "num_samples": 1},
                     train={"epochs": 3, "batch_size": 32, "learning_rate": 0.01,
                            "distribute": {"strategy": "mirrored", "cpu_devices": 2}})
    result = run(spec)
    built = report(result.path)
    return {"finished": result.finished, "test_accuracy": float(built.test.metrics["accuracy"])}


def unreachable(out_dir: str) -> dict:
    """`tunefleet preview` of a spec whose cluster.address nothing answers at, as a user runs
    it: what it printed, and how long it took."""
    import subprocess
    import time

    import yaml

    from tests.cluster.fake_autoscaler import cluster_env

    spec = {"name": "away", "data": {"dataset": "digits"},
            "model": {"builder": "mlp", "params": {"units": 8}}, "train": {"epochs": 1},
            "objective": {"metric": "val_accuracy", "mode": "max"},
            "cluster": {"address": "127.0.0.1:1"}}
    (Path(out_dir) / "spec.yaml").write_text(yaml.safe_dump(spec))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "tunefleet.cli", "preview", "spec.yaml"],
                          cwd=out_dir, env=cluster_env(), capture_output=True, text=True,
                          timeout=300)
    return {"returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr,
            "took_s": time.monotonic() - started}


SCENARIOS = {"gpus": gpus, "multinode": multinode, "blind": blind, "autoscaled": autoscaled,
             "submitted": submitted, "mirrored": mirrored, "unreachable": unreachable}


def main(out_dir: str, names: list[str]) -> None:
    for name in sorted(names, key=list(SCENARIOS).index):  # gpus first
        where = Path(out_dir) / name
        where.mkdir(parents=True, exist_ok=True)
        try:
            outcome = {"result": SCENARIOS[name](str(where))}
        except (Exception, SystemExit):  # noqa: BLE001 - recorded; the next scenario runs
            outcome = {"error": traceback.format_exc()[-4000:]}
        finally:
            import ray

            if ray.is_initialized():  # a scenario that failed half-way: the next starts clean
                ray.shutdown()
        print(f"RESULT {name} " + json.dumps(outcome, default=str), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main(sys.argv[1], sys.argv[2:])
