#!/usr/bin/env python
"""Per-trial overhead: many short trials through tunefleet and through plain Ray Tune.

The workload (issue 14): N trials (default 200) of a one-layer MLP on scikit-learn's bundled
breast_cancer (455 training rows after tunefleet's split), 2 epochs each, random search over
learning rate, batch size and width, 2 one-CPU trials at a time on an embedded local Ray with 2
CPUs. It runs twice, each in a fresh subprocess timed end to end (Ray start-up included):

- ``tunefleet``: a spec run through ``tunefleet.run`` (default settings otherwise: warm trial
  processes on CPU, tunefleet's checkpoint policy, its summary).
- ``baseline``: the same Keras trial body through plain Ray Tune: a function trainable with
  ``reuse_actors=True`` that builds and compiles the same model, fits one epoch at a time on the
  same split and ``tune.report``-s each epoch; no checkpoints.

For each it prints the wall time, trials per minute, the median first-epoch and steady-epoch
time (Ray's ``time_this_iter_s``: the first includes building, compiling and tracing the model;
``epoch_time_s`` is the fit call alone), and the driver process's resident memory (sampled every
0.25 s in a thread): its peak, its value when the 100th trial (or the middle one, for fewer)
finished, and at the end (flat memory: the two agree). Then the ratio tunefleet / baseline.

    .venv/bin/python scripts/bench_overhead.py             # 200 trials each (~2 x 2-5 min)
    .venv/bin/python scripts/bench_overhead.py --trials 40
    .venv/bin/python scripts/bench_overhead.py --quick     # 20 trials, a smoke test

Results depend on the machine's load: the script prints ``uptime``'s load before and after.
Each run's Ray output goes to a log file in the work directory (printed), not the console.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SYSTEMS = ("tunefleet", "baseline")
EPOCHS = 2
CONCURRENT = 2
SEED = 0
SPACE = {"learning_rate": (1e-3, 3e-2), "batch_size": [16, 32, 64], "units": [16, 32]}


def spec(trials: int, storage: Path) -> dict[str, Any]:
    """The tunefleet study: what the baseline below does by hand."""
    return {
        "name": "bench_overhead",
        "data": {"dataset": "breast_cancer"},
        "model": {"builder": "mlp", "params": {"layers": 1, "units": 32}},
        "train": {"epochs": EPOCHS, "batch_size": 32, "optimizer": "adam"},
        "search_space": {
            "learning_rate": {"type": "loguniform", "low": SPACE["learning_rate"][0],
                              "high": SPACE["learning_rate"][1]},
            "batch_size": {"type": "choice", "values": SPACE["batch_size"]},
            "units": {"type": "choice", "values": SPACE["units"]},
        },
        "search": {"algorithm": "random", "num_samples": trials, "seed": SEED},
        "scheduler": {"name": "fifo"},
        "objective": {"metric": "val_accuracy", "mode": "max"},
        "resources": {"cpu": 1},
        "cluster": {"num_cpus": CONCURRENT},
        "output": {"storage": str(storage)},
    }


class RssSampler(threading.Thread):
    """This process's resident memory (bytes) every ``interval`` seconds, from /proc."""

    def __init__(self, interval: float = 0.25):
        super().__init__(daemon=True)
        self.interval, self.samples = interval, []  # (unix time, bytes)
        self._halt = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append((time.time(), self.rss()))
            self._halt.wait(self.interval)

    def stop(self) -> list[tuple[float, int]]:
        self._halt.set()
        self.join()
        self.samples.append((time.time(), self.rss()))
        return self.samples


def _baseline_trial(config: dict[str, Any], data: Any) -> None:
    """The trial body as a Ray Tune user writes it: build, compile, fit epoch by epoch."""
    import keras
    from ray import tune

    keras.backend.clear_session()  # a reused actor would otherwise pile up models
    keras.utils.set_random_seed(int(config["seed"]))
    inputs = keras.Input(shape=data.info.input_shape)
    x = keras.layers.Dense(int(config["units"]), activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=float(config["learning_rate"])),
                  loss="binary_crossentropy",
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy")])
    for epoch in range(EPOCHS):
        started = time.perf_counter()
        history = model.fit(data.x_train, data.y_train, batch_size=int(config["batch_size"]),
                            epochs=epoch + 1, initial_epoch=epoch, shuffle=True, verbose=0,
                            validation_data=(data.x_val, data.y_val))
        logs = {k: float(v[-1]) for k, v in history.history.items()}
        tune.report({**logs, "epoch": epoch + 1,
                     "epoch_time_s": time.perf_counter() - started})


def run_baseline(trials: int, storage: Path) -> Path:
    import ray
    from ray import tune

    from tunefleet.data import load_dataset
    from tunefleet.spec import Experiment

    experiment = Experiment.from_dict(spec(trials, storage))
    data = load_dataset(experiment.data).training
    ray.init(address="local", num_cpus=CONCURRENT, num_gpus=0, include_dashboard=False)
    try:
        space = {"learning_rate": tune.loguniform(*SPACE["learning_rate"]),
                 "batch_size": tune.choice(SPACE["batch_size"]),
                 "units": tune.choice(SPACE["units"]),
                 "seed": tune.randint(0, 2**31 - 1)}
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(_baseline_trial, data=data), {"cpu": 1}),
            param_space=space,
            tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", num_samples=trials,
                                        reuse_actors=True,
                                        search_alg=tune.search.BasicVariantGenerator(
                                            random_state=SEED)),
            run_config=tune.RunConfig(name="bench_overhead", storage_path=str(storage),
                                      verbose=1))
        tuner.fit()
    finally:
        ray.shutdown()
    return storage / "bench_overhead"


def run_tunefleet(trials: int, storage: Path, overrides: list[str]) -> Path:
    from tunefleet import run

    return Path(run(spec(trials, storage), overrides).path)


def _rows(study: Path) -> list[list[dict[str, Any]]]:
    """Every trial's reported rows (result.json), in order."""
    out = []
    for result in sorted(study.glob("*/result.json")):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if rows:
            out.append(rows)
    return out


def _bytes(path: Path, checkpoints_only: bool = False) -> int:
    total = 0
    for p in path.rglob("*"):
        if p.is_file() and (not checkpoints_only
                            or any(part.startswith("checkpoint_") for part in p.parts)):
            total += p.stat().st_size
    return total


def measure(system: str, trials: int, work: Path, overrides: list[str]) -> dict[str, Any]:
    """Run one system in this process and return its figures."""
    sampler = RssSampler()
    sampler.start()
    started = time.time()
    study = (run_tunefleet(trials, work / system, overrides) if system == "tunefleet"
             else run_baseline(trials, work / system))
    wall = time.time() - started
    samples = sampler.stop()
    rows = _rows(study)
    first = [r[0]["time_this_iter_s"] for r in rows]
    steady = [row["time_this_iter_s"] for r in rows for row in r[1:]]
    fit_first = [r[0]["epoch_time_s"] for r in rows if "epoch_time_s" in r[0]]
    fit_steady = [row["epoch_time_s"] for r in rows for row in r[1:] if "epoch_time_s" in row]
    ends = sorted(r[-1]["timestamp"] for r in rows)  # whole seconds, Ray's clock
    mark = min(100, max(1, len(ends) // 2))
    at_mark = [rss for t, rss in samples if t <= ends[mark - 1] + 1] if ends else []
    return {
        "system": system, "trials": len(rows), "wall_s": wall,
        "trials_per_min": 60 * len(rows) / wall,
        "first_epoch_s": statistics.median(first) if first else None,
        "steady_epoch_s": statistics.median(steady) if steady else None,
        "first_fit_s": statistics.median(fit_first) if fit_first else None,
        "steady_fit_s": statistics.median(fit_steady) if fit_steady else None,
        "rss_peak_mb": max(r for _, r in samples) / 2**20,
        "rss_mark_trial": mark, "rss_at_mark_mb": (at_mark[-1] / 2**20) if at_mark else None,
        "rss_end_mb": samples[-1][1] / 2**20,
        "study_bytes": _bytes(study), "checkpoint_bytes": _bytes(study, checkpoints_only=True),
    }


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load: unknown"


def _fmt(value: Any, spec_: str) -> str:
    return "-" if value is None else format(value, spec_)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=200, help="trials per system (200)")
    parser.add_argument("--quick", action="store_true", help="20 trials: a smoke test")
    parser.add_argument("--only", choices=SYSTEMS, help="run one system only")
    parser.add_argument("--work", type=Path, help="where studies and logs go (a temp dir)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override the tunefleet spec, as `tunefleet "
                        "run --set` (repeatable), e.g. output.checkpoint_every=1")
    parser.add_argument("--child", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    trials = 20 if args.quick else args.trials
    if args.child:  # one system, in a fresh process of its own
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        result = measure(args.child, trials, args.work, args.overrides)
        args.out.write_text(json.dumps(result))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    print(f"{trials} trials per system, {EPOCHS} epochs each, {CONCURRENT} at a time; "
          f"work dir {work}" + (f"; tunefleet with {' '.join(args.overrides)}"
                                if args.overrides else ""))
    print(f"before: {_uptime()}")
    results = []
    for system in ([args.only] if args.only else SYSTEMS):
        out, log = work / f"{system}.json", work / f"{system}.log"
        started = time.time()
        with log.open("w") as f:
            done = subprocess.run([sys.executable, __file__, "--child", system, "--trials",
                                   str(trials), "--work", str(work), "--out", str(out),
                                   *(f"--set={o}" for o in args.overrides)],
                                  stdout=f, stderr=subprocess.STDOUT, env=env, cwd=work)
        if done.returncode != 0 or not out.exists():
            sys.exit(f"{system} failed (exit {done.returncode}) after "
                     f"{time.time() - started:.0f} s; see {log}")
        results.append(json.loads(out.read_text()))
        print(f"  {system}: done in {time.time() - started:.0f} s (log: {log})")
    print(f"after: {_uptime()}")
    head = (f"{'system':<10} {'trials':>6} {'wall s':>7} {'trials/min':>10} {'1st epoch s':>11} "
            f"{'steady s':>8} {'1st fit s':>9} {'fit s':>6} {'RSS peak MB':>11} "
            f"{'RSS@mark':>12} {'RSS end':>8} {'study MB':>8} {'ckpt MB':>7}")
    print(head)
    for r in results:
        print(f"{r['system']:<10} {r['trials']:>6} {r['wall_s']:>7.1f} "
              f"{r['trials_per_min']:>10.1f} {_fmt(r['first_epoch_s'], '.3f'):>11} "
              f"{_fmt(r['steady_epoch_s'], '.3f'):>8} {_fmt(r['first_fit_s'], '.3f'):>9} "
              f"{_fmt(r['steady_fit_s'], '.3f'):>6} {r['rss_peak_mb']:>11.0f} "
              f"{_fmt(r['rss_at_mark_mb'], '.0f'):>7}@{r['rss_mark_trial']:<4} "
              f"{r['rss_end_mb']:>8.0f} {r['study_bytes'] / 1e6:>8.2f} "
              f"{r['checkpoint_bytes'] / 1e6:>7.2f}")
    if len(results) == 2:
        tf_, base = results
        print(f"ratio tunefleet/baseline: trials/min {tf_['trials_per_min'] / base['trials_per_min']:.2f}, "
              f"wall {tf_['wall_s'] / base['wall_s']:.2f}, first epoch "
              f"{tf_['first_epoch_s'] / base['first_epoch_s']:.2f}")


if __name__ == "__main__":
    main()
