"""Run by tests/cluster/conftest.py in one process of its own: the cluster scenarios of
test_gpus.py (half-GPU trials on an embedded Ray with 2 GPUs declared), test_multinode.py (a
worker node killed mid-study, multinode_study.py) and test_node_local_storage.py (a node blind
to the study's directory, blind_node.py), one after another, each on a Ray of its own. One
interpreter and one TensorFlow import serve all three instead of one each; each test asserts
on its own scenario's outcome.

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

    spec = tiny_spec(Path(out_dir), name="gpus", search={"algorithm": "grid"},
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


SCENARIOS = {"gpus": gpus, "multinode": multinode, "blind": blind}


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
