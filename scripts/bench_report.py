#!/usr/bin/env python
"""Report aggregation speed on a synthetic study of 2,000 trials × up to 50 epochs.

Times tunefleet's whole report without the model evaluation (loading every trial, the tidy
tables, importance, every figure, Markdown and HTML) and, as a baseline in the same run, the
loading step done the usual hand-written way (pandas.read_json per trial, then concat).
Target: the whole report in under 10 s on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from tunefleet.reports.study import build_study_report
from tunefleet.reports.synthetic import write_synthetic_study


def naive_load(study: Path) -> pd.DataFrame:
    """What a user would write without tunefleet: one read_json per trial."""
    frames = [pd.read_json(d / "result.json", lines=True).assign(trial=d.name)
              for d in sorted(study.glob("trial_*"))]
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        study = write_synthetic_study(tmp, trials=args.trials, epochs=args.epochs, seed=0,
                                      cut_fraction=0.0)  # every trial trains every epoch
        started = time.perf_counter()
        rows = len(naive_load(study))
        naive = time.perf_counter() - started
        started = time.perf_counter()
        report = build_study_report(study, evaluate=False)
        full = time.perf_counter() - started
        started = time.perf_counter()
        from tunefleet.reports.load import load_study

        load_study(study)
        loading = time.perf_counter() - started
    print(f"{args.trials} trials, {rows} epoch rows")
    print(f"baseline: pandas.read_json per trial: {naive:.2f} s (loading only)")
    print(f"tunefleet load_study: {loading:.2f} s (ratio to baseline {loading / naive:.2f})")
    print(f"tunefleet whole report (tables, importance, {len(report.figures)} figures, md, html): "
          f"{full:.2f} s (target < 10 s: {'met' if full < 10 else 'NOT met'})")


if __name__ == "__main__":
    main()
