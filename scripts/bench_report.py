#!/usr/bin/env python
"""Report speed on a synthetic study of 10,000 trials × 20 epochs, in Ray Tune's on-disk layout,
and of a comparison of 5 variants × 5 seeds × 200 trials × 30 epochs.

Writes two synthetic studies (``tunefleet/reports/synthetic.py``: spec.yaml, summary.json, and
per trial ``params.json`` and ``result.json``, the files the report reads), every trial trained
to its last epoch. Then, in one run:

- end to end: ``tunefleet report DIR`` in a fresh process (imports included), on the large study
  and on a baseline of 1,000 trials, to show how the time scales with the number of trials. The
  synthetic studies keep no checkpoint, so the test-set evaluation of the best model stops at
  "no checkpoint" (noted in the report) and costs nothing here;
- the same report in this process, stage by stage (load, tables, importance, each figure,
  Markdown and HTML), with ``--profile N`` the N most expensive functions (cProfile);
- loading alone against the usual hand-written way (one ``pandas.read_json`` per trial, then
  concat) on the baseline study;
- with ``--uri``: the baseline study at an ``s3://`` URI served by moto on 127.0.0.1 (the test
  extra), downloaded into an empty mirror one file at a time and then with the parallel
  transfers ``load_study`` uses;
- the comparison report (``reports/compare.py``: every study loaded, read at the budget,
  bootstrap intervals, rank tests, anytime bands, two figures, Markdown and HTML) of
  ``--variants`` × ``--seeds`` synthetic studies of ``--comparison-trials`` × ``--comparison-epochs``,
  each with ``search.budget`` epochs and a test score, as ``tunefleet compare`` leaves them.
  ``--only comparison`` skips the single-study benchmarks.

Targets: the large report end to end, and the comparison report, each in under 20 s on 2 cores.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from tunefleet.reports.compare import build_comparison_report, collect_comparison
from tunefleet.reports.load import load_study
from tunefleet.reports.study import build_study_report
from tunefleet.reports.synthetic import write_synthetic_study

TARGET_S = 20.0


def naive_load(study: Path) -> pd.DataFrame:
    """What a user would write without tunefleet: one read_json per trial."""
    frames = [pd.read_json(d / "result.json", lines=True).assign(trial=d.name)
              for d in sorted(study.glob("trial_*"))]
    return pd.concat(frames, ignore_index=True)


def cli_report(study: Path) -> tuple[float, float]:
    """Wall and CPU seconds for ``tunefleet report DIR`` in a fresh process (the CPU time
    depends less on what else the machine runs)."""
    shutil.rmtree(study / "report", ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from tunefleet.cli import main; main()", "report",
                    str(study)], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def uri_download(study: Path, tmp: Path) -> None:
    """Download the study from a local S3 server: one file at a time, then in parallel."""
    try:
        import moto.server  # noqa: F401 -- only to say what is missing
    except ImportError:
        print("--uri: moto is not installed (pip install -e '.[test]'); skipped")
        return
    import pyarrow.fs as pafs

    import tunefleet.storage as storage_module

    # moto takes any credentials; these keep pyarrow from looking for real ones.
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_EC2_METADATA_DISABLED", "true")):
        os.environ.setdefault(key, value)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # In its own process, so that the server does not share this one's interpreter lock.
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        query = f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
        for _ in range(100):
            try:
                fs, _ = pafs.FileSystem.from_uri(f"s3://bucket?{query}&allow_bucket_creation=true")
                fs.create_dir("bucket")
                break
            except OSError:
                time.sleep(0.1)
        pafs.copy_files(str(study), f"bucket/bench/{study.name}",
                        source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
        files = sum(1 for p in study.rglob("*") if p.is_file())
        uri = f"s3://bucket/bench/{study.name}?{query}"
        default = storage_module.TRANSFER_THREADS
        times = {}
        for threads in (1, default):
            os.environ["TUNEFLEET_CACHE"] = str(tmp / f"cache_{threads}")
            storage_module.TRANSFER_THREADS = threads
            started = time.perf_counter()
            load_study(uri)
            times[threads] = time.perf_counter() - started
        storage_module.TRANSFER_THREADS = default
        print(f"URI study ({files} files, moto S3 on 127.0.0.1), download + load: one file at a "
              f"time {times[1]:.2f} s, {default} at a time {times[default]:.2f} s "
              f"(ratio {times[default] / times[1]:.2f})")
    finally:
        server.terminate()
        server.wait(timeout=10)


# Variants of the comparison benchmark: (label, searcher, accuracy offset); more repeat them.
COMPARISON_VARIANTS = [("grid", "grid", 0.0), ("random", "random", 0.0),
                       ("random-better", "random", 0.01), ("random-worse", "random", -0.01),
                       ("random-best", "random", 0.02)]


def comparison_bench(tmp: Path, variants: int, seeds: int, trials: int, epochs: int) -> None:
    """Time the comparison report of ``variants`` × ``seeds`` synthetic studies, end to end
    (fresh loads) and stage by stage."""
    started = time.perf_counter()
    paths, labels = [], []
    budget = {"epochs": trials * epochs}  # every trial trains to its end, then the budget ends
    for v in range(variants):
        label, search, offset = COMPARISON_VARIANTS[v % len(COMPARISON_VARIANTS)]
        label = label if v < len(COMPARISON_VARIANTS) else f"{label}-{v}"
        for s in range(seeds):
            paths.append(write_synthetic_study(
                tmp / "comparison", trials=trials, epochs=epochs, seed=1000 * v + s,
                name=f"{label}-seed{s}", search=search, cut_fraction=0.0, budget=budget,
                offset=offset, test_metrics=True))
            labels.append(label)
    print(f"synthesised a comparison of {variants} variants × {seeds} seeds × {trials} trials × "
          f"{epochs} epochs in {time.perf_counter() - started:.1f} s")
    started, cpu = time.perf_counter(), time.process_time()
    comparison = build_comparison_report(paths, tmp / "comparison" / "report", labels=labels)
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    rows = sum(len(run.best) for runs in comparison.groups.values() for run in runs)
    print(f"comparison report ({len(paths)} studies, {rows} epoch rows; loads, statistics, "
          f"2 figures, Markdown and HTML): {total:.2f} s ({cpu:.2f} s CPU); target < "
          f"{TARGET_S:.0f} s: {'met' if total < TARGET_S else 'NOT met'}")
    started = time.perf_counter()
    studies = [load_study(p) for p in paths]
    loading = time.perf_counter() - started
    started = time.perf_counter()
    collect_comparison(studies, labels=labels)
    collecting = time.perf_counter() - started
    started = time.perf_counter()
    build_comparison_report(studies, tmp / "comparison" / "again", labels=labels)
    drawing = time.perf_counter() - started - collecting
    print(f"  {'load':<18} {loading:6.2f} s\n  {'statistics':<18} {collecting:6.2f} s\n"
          f"  {'figures, documents':<18} {drawing:6.2f} s")
    print(f"  verdict: {comparison.verdict[:160]}...")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--baseline-trials", type=int, default=1_000)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the N functions with the most cumulative time")
    parser.add_argument("--uri", action="store_true", help="also time a download from s3://")
    parser.add_argument("--variants", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--comparison-trials", type=int, default=200)
    parser.add_argument("--comparison-epochs", type=int, default=30)
    parser.add_argument("--only", choices=["all", "study", "comparison"], default="all",
                        help="run only the single-study or only the comparison benchmark")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"at the start")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.only != "study":
            comparison_bench(tmp, args.variants, args.seeds, args.comparison_trials,
                             args.comparison_epochs)
        if args.only == "comparison":
            return
        started = time.perf_counter()
        large = write_synthetic_study(tmp, trials=args.trials, epochs=args.epochs, seed=0,
                                      name="large", cut_fraction=0.0)
        small = write_synthetic_study(tmp, trials=args.baseline_trials, epochs=args.epochs,
                                      seed=0, name="baseline", cut_fraction=0.0)
        print(f"synthesised {args.trials} + {args.baseline_trials} trials × {args.epochs} "
              f"epochs in {time.perf_counter() - started:.1f} s")

        (e2e_small, cpu_small), (e2e_large, cpu_large) = cli_report(small), cli_report(large)
        print(f"`tunefleet report` end to end (fresh process; no checkpoint, so no test-set "
              f"evaluation): {args.baseline_trials} trials {e2e_small:.2f} s ({cpu_small:.2f} s "
              f"CPU), {args.trials} trials {e2e_large:.2f} s ({cpu_large:.2f} s CPU); ratio "
              f"{e2e_large / e2e_small:.2f} for {args.trials / args.baseline_trials:.0f}× the "
              f"trials; target < {TARGET_S:.0f} s: {'met' if e2e_large < TARGET_S else 'NOT met'}")

        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        started, cpu = time.perf_counter(), time.process_time()
        report = build_study_report(large, evaluate=False)
        in_process, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler:
            profiler.disable()
        rows = len(report.study.history)
        print(f"in this process ({rows} epoch rows, {len(report.figures)} figures"
              f"{', under cProfile' if profiler else ''}): {in_process:.2f} s ({cpu:.2f} s CPU)")
        for stage, seconds in report.timings.items():
            print(f"  {stage:<18} {seconds:6.2f} s")

        started = time.perf_counter()
        naive_rows = len(naive_load(small))
        naive = time.perf_counter() - started
        started = time.perf_counter()
        load_study(small)
        loading = time.perf_counter() - started
        print(f"loading {args.baseline_trials} trials ({naive_rows} rows): pandas.read_json per "
              f"trial {naive:.2f} s, tunefleet load_study {loading:.2f} s (ratio "
              f"{loading / naive:.2f})")
        if args.uri:
            uri_download(small, tmp)
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")


if __name__ == "__main__":
    main()
