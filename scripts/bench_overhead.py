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
``epoch_time_s`` is the fit call alone), and the driver process's resident memory: its peak
(sampled every 0.25 s in a thread), and, from a Ray Tune callback in the driver recording it
as each trial ends, its value when the 100th trial (or the middle one, for fewer) ended and
when the last one did, and the growth per trial after that mark (least squares over every
trial's end; flat memory: about 0). The growth is also split by where it is: glibc's heap in
use, glibc's free memory it keeps (``mallinfo2``), memory glibc mmapped, pyarrow's pool.
Then the ratio tunefleet / baseline.

    .venv/bin/python scripts/bench_overhead.py             # 200 trials each (~2 x 2-5 min)
    .venv/bin/python scripts/bench_overhead.py --trials 40
    .venv/bin/python scripts/bench_overhead.py --quick     # 20 trials, a smoke test

Where the driver's memory goes (issue 14; each writes a report into the work directory):

    --maps 100,400      # /proc/self/smaps at those trial counts: growth by kind of mapping,
                        # and Python's small-object arenas (cheap)
    --trace 100,400     # tracemalloc snapshots: what Python's heap gained, by traceback
                        # (slows the driver; its figures then include tracemalloc's own)
    --arena-max 0 --keep-windows   # tunefleet without study/driver_memory.py's measures

Results depend on the machine's load: the script prints ``uptime``'s load before and after.
Each run's Ray output goes to a log file in the work directory (printed), not the console.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Optional

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


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _mallinfo() -> Optional[Callable[[], tuple[int, int, int]]]:
    """glibc's heap figures as (bytes in use, bytes free but kept, bytes mmapped); None
    where the C library has no ``mallinfo2`` (not glibc >= 2.33)."""
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2

    def read() -> tuple[int, int, int]:
        info = fn()
        return info.uordblks, info.fordblks, info.hblkhd
    return read


def _slope(points: list[tuple[int, float]]) -> Optional[float]:
    """Least-squares slope of y over x (None for fewer than 3 points)."""
    if len(points) < 3:
        return None
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else None


def driver_probe(work: Path, system: str, trace_at: tuple[int, ...] = (),
                 frames: int = 12, maps_at: tuple[int, ...] = ()) -> Any:
    """A Ray Tune callback in the driver that records, each time a trial ends, the driver's
    resident memory, glibc's heap (in use, free but kept, mmapped), pyarrow's pool and, with
    ``trace_at``, Python's traced heap (tracemalloc, ``frames`` deep, from the first trial's
    end); at each count in ``trace_at`` it dumps a snapshot to compare later
    (:func:`trace_report`); at each count in ``maps_at``, a copy of /proc/self/smaps
    (:func:`maps_report`)."""
    import pyarrow
    from ray.tune import Callback

    page = os.sysconf("SC_PAGE_SIZE")

    class _Probe(Callback):
        def __init__(self) -> None:
            self.ended = 0
            # (trials ended, RSS, heap in use, heap free, mmapped, pyarrow, traced), bytes
            self.rows: list[tuple[int, ...]] = []
            self.dumps: list[Path] = []
            self.maps: list[Path] = []
            self._heap = _mallinfo()

        def __reduce__(self) -> tuple[Any, ...]:
            # Ray pickles the run's callbacks with the tuner (for a restore, which this run
            # never does): a plain dict stands in, ctypes and this class cannot travel.
            return (dict, ())

        def _record(self) -> None:
            self.ended += 1
            if self.ended == 1 and trace_at:
                # From the first trial's end: tracing the driver's start-up (TensorFlow's
                # import, tunefleet's checks) would take minutes and is no growth per trial.
                tracemalloc.start(frames)
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * page
            used, free, mapped = self._heap() if self._heap else (0, 0, 0)
            traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
            self.rows.append((self.ended, rss, used, free, mapped,
                              pyarrow.total_allocated_bytes(), traced))
            if self.ended in maps_at:
                path = work / f"{system}-smaps-{self.ended}.txt"
                path.write_text(Path("/proc/self/smaps").read_text())
                self.maps.append(path)
                _pymalloc_stats(work / f"{system}-pymalloc-{self.ended}.txt")
            if self.ended in trace_at and tracemalloc.is_tracing():
                path = work / f"{system}-trace-{self.ended}.pickle"
                tracemalloc.take_snapshot().dump(str(path))
                self.dumps.append(path)

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._record()

        def on_trial_error(self, iteration, trials, trial, **info):
            self._record()

    return _Probe()


def _pymalloc_stats(path: Path) -> None:
    """Python's small-object allocator's statistics (``sys._debugmallocstats``, which writes
    to file descriptor 2) into ``path``."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with path.open("w") as f:
            os.dup2(f.fileno(), 2)
            sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _pymalloc_arenas(path: Path) -> str:
    """The arena and block lines of a :func:`_pymalloc_stats` dump."""
    keep = ("# arenas allocated current", "# bytes in allocated blocks",
            "# bytes in available blocks", "# bytes lost to", "Total")
    return "; ".join(" ".join(line.split()) for line in path.read_text().splitlines()
                     if line.startswith(keep))


def _smaps(path: Path) -> dict[tuple[str, str], tuple[int, int, str]]:
    """A dump of /proc/self/smaps as {(start, name): (size kB, Rss kB, perms)}."""
    maps: dict[tuple[str, str], tuple[int, int, str]] = {}
    key: Optional[tuple[str, str]] = None
    size, perms = 0, ""
    for line in path.read_text().splitlines():
        head = line.split()
        if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            start, end = head[0].split("-")
            key, perms = (start, " ".join(head[5:]) or "[anon]"), head[1]
            size = (int(end, 16) - int(start, 16)) // 1024
        elif head[0] == "Rss:" and key is not None:
            maps[key] = (size, int(head[1]), perms)
    return maps


def _kind(name: str, size_kb: int, perms: str) -> str:
    if name != "[anon]":
        return name if name.startswith("[") else "files"
    if size_kb == 1024:
        return "anon 1 MiB (Python's small-object arenas)"
    if size_kb in (8192, 8196) or perms == "---p":
        return "anon stacks and guards"
    return "anon other (glibc arenas, Ray, TensorFlow, pyarrow)"


def maps_report(dumps: list[Path], out: Path, top: int = 15) -> None:
    """Where the driver's resident memory grew between two dumps of /proc/self/smaps: by kind
    of mapping, and the mappings that grew most."""
    old, new = _smaps(dumps[0]), _smaps(dumps[-1])
    changes = []
    for key in old.keys() | new.keys():
        size, rss, perms = new.get(key) or old[key]
        diff = (new[key][1] if key in new else 0) - (old[key][1] if key in old else 0)
        state = "new" if key not in old else "gone" if key not in new else "kept"
        changes.append((diff, key, size, perms, state))
    kinds: dict[str, list[int]] = {}
    for diff, (_, name), size, perms, state in changes:
        entry = kinds.setdefault(_kind(name, size, perms), [0, 0, 0])
        entry[0] += diff
        entry[1] += state == "new"
        entry[2] += state == "gone"
    grown = sum(c[0] for c in changes) / 1024
    lines = [f"resident memory from {dumps[0].stem} to {dumps[-1].stem}: {grown:+.1f} MB"]
    for kind, (diff, born, gone) in sorted(kinds.items(), key=lambda kv: -abs(kv[1][0])):
        lines.append(f"  {diff / 1024:+8.2f}  {kind} ({born} mappings new, {gone} gone)")
    lines.append(f"the {top} mappings that changed most (kB):")
    for diff, (start, name), size, perms, state in sorted(changes, key=lambda c: -abs(c[0]))[:top]:
        lines.append(f"  {diff:+8d}  {start} {perms} {size} kB {state} {name}")
    for dump in dumps:
        stats = dump.with_name(dump.name.replace("-smaps-", "-pymalloc-"))
        if stats.exists():
            lines.append(f"pymalloc at {dump.stem}: {_pymalloc_arenas(stats)}")
    out.write_text("\n".join(lines) + "\n")


def trace_report(dumps: list[Path], out: Path, top: int = 30) -> None:
    """What Python's heap gained between the first and the last snapshot, by traceback and
    by file, into ``out``."""
    old, new = (tracemalloc.Snapshot.load(str(p)).filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__, all_frames=True)]) for p in (dumps[0], dumps[-1]))
    lines = [f"traced heap from {dumps[0].stem} to {dumps[-1].stem}"]
    for key in ("filename", "traceback"):
        stats = new.compare_to(old, key)
        grown = sum(s.size_diff for s in stats)
        lines.append(f"\n== by {key}: {grown / 2**20:+.2f} MB in all; top {top} ==")
        for stat in stats[:top]:
            lines.append(f"{stat.size_diff / 2**10:+10.1f} KiB {stat.count_diff:+8d} blocks")
            frames = stat.traceback.format(most_recent_first=True)
            lines.extend("    " + f for f in (frames if key == "traceback" else frames[:1]))
    out.write_text("\n".join(lines) + "\n")


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


def run_baseline(trials: int, storage: Path, probe: Any) -> Path:
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
                                      callbacks=[probe], verbose=1))
        tuner.fit()
    finally:
        ray.shutdown()
    return storage / "bench_overhead"


def run_tunefleet(trials: int, storage: Path, overrides: list[str], probe: Any) -> Path:
    from tunefleet import run
    from tunefleet.study import runner

    # The probe joins the study's own callbacks (the runner has no public way in).
    own = runner._callbacks_and_stop

    def with_probe(*args: Any, **kwargs: Any) -> tuple[list[Any], Any]:
        callbacks, stop = own(*args, **kwargs)
        return [*callbacks, probe], stop

    runner._callbacks_and_stop = with_probe
    try:
        return Path(run(spec(trials, storage), overrides).path)
    finally:
        runner._callbacks_and_stop = own


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


def measure(system: str, trials: int, work: Path, overrides: list[str],
            trace_at: tuple[int, ...] = (), frames: int = 12,
            maps_at: tuple[int, ...] = ()) -> dict[str, Any]:
    """Run one system in this process and return its figures. ``trace_at``: trial counts at
    which to snapshot Python's heap (tracemalloc, ``frames`` deep; it slows the driver and
    its own bookkeeping adds to the resident memory)."""
    probe = driver_probe(work, system, trace_at, frames, maps_at)
    sampler = RssSampler()
    sampler.start()
    started = time.time()
    study = (run_tunefleet(trials, work / system, overrides, probe) if system == "tunefleet"
             else run_baseline(trials, work / system, probe))
    wall = time.time() - started
    samples = sampler.stop()
    if len(probe.dumps) > 1:
        tracemalloc.stop()
        trace_report(probe.dumps, work / f"{system}-trace.txt")
    if len(probe.maps) > 1:
        maps_report(probe.maps, work / f"{system}-maps.txt")
    rows = _rows(study)
    first = [r[0]["time_this_iter_s"] for r in rows]
    steady = [row["time_this_iter_s"] for r in rows for row in r[1:]]
    fit_first = [r[0]["epoch_time_s"] for r in rows if "epoch_time_s" in r[0]]
    fit_steady = [row["epoch_time_s"] for r in rows for row in r[1:] if "epoch_time_s" in row]
    ended = probe.rows  # one per trial, as it ended
    mark = min(100, max(1, len(ended) // 2))
    after = [row for row in ended if row[0] >= mark]
    # Growth per trial after the mark (least squares over every trial's end), by where it is.
    growth = {name: _slope([(row[0], row[k] / 2**20) for row in after])
              for k, name in enumerate(("rss", "heap_used", "heap_free", "mmapped", "pyarrow",
                                        "traced"), start=1)}
    return {
        "system": system, "trials": len(rows), "wall_s": wall,
        "trials_per_min": 60 * len(rows) / wall,
        "first_epoch_s": statistics.median(first) if first else None,
        "steady_epoch_s": statistics.median(steady) if steady else None,
        "first_fit_s": statistics.median(fit_first) if fit_first else None,
        "steady_fit_s": statistics.median(fit_steady) if fit_steady else None,
        "rss_peak_mb": max(r for _, r in samples) / 2**20,
        "rss_mark_trial": mark,
        "rss_at_mark_mb": ended[mark - 1][1] / 2**20 if ended else None,
        "rss_last_trial_mb": ended[-1][1] / 2**20 if ended else None,
        "rss_end_mb": samples[-1][1] / 2**20,
        "mb_per_trial": growth, "traced": bool(trace_at),
        "study_bytes": _bytes(study), "checkpoint_bytes": _bytes(study, checkpoints_only=True),
    }


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load: unknown"


def _fmt(value: Any, spec_: str) -> str:
    return "-" if value is None else format(value, spec_)


def _counts(text: str) -> tuple[int, ...]:
    counts = tuple(sorted(int(n) for n in text.split(",") if n.strip()))
    if len(counts) < 2 or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"two trial counts or more are needed, like "
                                         f"100,400, got {text!r}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=200, help="trials per system (200)")
    parser.add_argument("--quick", action="store_true", help="20 trials: a smoke test")
    parser.add_argument("--only", choices=SYSTEMS, help="run one system only")
    parser.add_argument("--work", type=Path, help="where studies and logs go (a temp dir)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override the tunefleet spec, as `tunefleet "
                        "run --set` (repeatable), e.g. output.checkpoint_every=1")
    parser.add_argument("--trace", metavar="N,M", type=_counts, default=(),
                        help="snapshot the driver's Python heap (tracemalloc) when N and M "
                        "trials have ended and write what grew to <system>-trace.txt in the "
                        "work dir (slows the driver; its memory figures then include "
                        "tracemalloc's own)")
    parser.add_argument("--maps", metavar="N,M", type=_counts, default=(),
                        help="copy the driver's /proc/self/smaps when N and M trials have "
                        "ended and write where its resident memory grew to "
                        "<system>-maps.txt in the work dir (cheap)")
    parser.add_argument("--keep-windows", action="store_true",
                        help="tunefleet's driver keeps finished trials' windows of last metric "
                        "values (study/driver_memory.py; by default it drops them)")
    parser.add_argument("--arena-max", type=int, metavar="N",
                        help="glibc arenas for tunefleet's driver threads "
                        "(study/driver_memory.py; default its own, 0: glibc's default)")
    parser.add_argument("--child", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    trials = 20 if args.quick else args.trials
    if args.child:  # one system, in a fresh process of its own
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        from tunefleet.study import driver_memory

        if args.keep_windows:
            driver_memory.DROP_WINDOWS = False
        if args.arena_max is not None:
            driver_memory.ARENA_MAX = args.arena_max
        result = measure(args.child, trials, args.work, args.overrides, args.trace,
                         maps_at=args.maps)
        args.out.write_text(json.dumps(result))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    print(f"{trials} trials per system, {EPOCHS} epochs each, {CONCURRENT} at a time; "
          f"work dir {work}" + (f"; tunefleet with {' '.join(args.overrides)}"
                                if args.overrides else "")
          + ("; tunefleet keeps finished trials' windows" if args.keep_windows else "")
          + (f"; tunefleet's driver at most {args.arena_max} arenas" if args.arena_max
             else "; tunefleet's driver with glibc's arenas" if args.arena_max == 0 else ""))
    print(f"before: {_uptime()}")
    results = []
    for system in ([args.only] if args.only else SYSTEMS):
        out, log = work / f"{system}.json", work / f"{system}.log"
        started = time.time()
        with log.open("w") as f:
            done = subprocess.run([sys.executable, __file__, "--child", system, "--trials",
                                   str(trials), "--work", str(work), "--out", str(out),
                                   *(f"--set={o}" for o in args.overrides),
                                   *([f"--trace={','.join(map(str, args.trace))}"]
                                     if args.trace else []),
                                   *([f"--maps={','.join(map(str, args.maps))}"]
                                     if args.maps else []),
                                   *(["--keep-windows"] if args.keep_windows else []),
                                   *([f"--arena-max={args.arena_max}"]
                                     if args.arena_max is not None else [])],
                                  stdout=f, stderr=subprocess.STDOUT, env=env, cwd=work)
        if done.returncode != 0 or not out.exists():
            sys.exit(f"{system} failed (exit {done.returncode}) after "
                     f"{time.time() - started:.0f} s; see {log}")
        results.append(json.loads(out.read_text()))
        print(f"  {system}: done in {time.time() - started:.0f} s (log: {log})")
    print(f"after: {_uptime()}")
    head = (f"{'system':<10} {'trials':>6} {'wall s':>7} {'trials/min':>10} {'1st epoch s':>11} "
            f"{'steady s':>8} {'1st fit s':>9} {'fit s':>6} {'RSS peak MB':>11} "
            f"{'RSS@mark':>12} {'RSS last':>8} {'MB/trial':>8} {'study MB':>8} {'ckpt MB':>7}")
    print(head)
    for r in results:
        print(f"{r['system']:<10} {r['trials']:>6} {r['wall_s']:>7.1f} "
              f"{r['trials_per_min']:>10.1f} {_fmt(r['first_epoch_s'], '.3f'):>11} "
              f"{_fmt(r['steady_epoch_s'], '.3f'):>8} {_fmt(r['first_fit_s'], '.3f'):>9} "
              f"{_fmt(r['steady_fit_s'], '.3f'):>6} {r['rss_peak_mb']:>11.0f} "
              f"{_fmt(r['rss_at_mark_mb'], '.0f'):>7}@{r['rss_mark_trial']:<4} "
              f"{_fmt(r['rss_last_trial_mb'], '.0f'):>8} "
              f"{_fmt(r['mb_per_trial']['rss'], '.3f'):>8} {r['study_bytes'] / 1e6:>8.2f} "
              f"{r['checkpoint_bytes'] / 1e6:>7.2f}")
    print(f"driver memory growth per trial after trial {results[0]['rss_mark_trial']} (least "
          "squares over each trial's end), MB: RSS; glibc heap in use, free but kept, mmapped; "
          "pyarrow's pool" + ("; Python's traced heap" if args.trace else ""))
    for r in results:
        growth = r["mb_per_trial"]
        parts = [f"{name} {_fmt(growth[name], '+.4f')}" for name in
                 ("rss", "heap_used", "heap_free", "mmapped", "pyarrow")
                 + (("traced",) if r["traced"] else ())]
        print(f"  {r['system']:<10} " + ", ".join(parts))
    if args.trace:
        print(f"what Python's heap gained: {work}/<system>-trace.txt")
    if args.maps:
        print(f"where resident memory grew: {work}/<system>-maps.txt")
    if len(results) == 2:
        tf_, base = results
        print(f"ratio tunefleet/baseline: trials/min {tf_['trials_per_min'] / base['trials_per_min']:.2f}, "
              f"wall {tf_['wall_s'] / base['wall_s']:.2f}, first epoch "
              f"{tf_['first_epoch_s'] / base['first_epoch_s']:.2f}")


if __name__ == "__main__":
    main()
