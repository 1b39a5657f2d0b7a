#!/usr/bin/env python
"""Run a study on the Ray cluster this script runs on: the entry point for `ray submit`.

    # the cluster config's file_mounts copies your spec and model modules to the head, e.g.
    #   file_mounts: {"~/study": "./my_study"}
    ray submit tunefleet/cluster/launcher/onprem.yaml scripts/cluster_study.py -- ~/study/spec.yaml

It joins the running cluster (address auto), runs every trial there, writes the report and
exits non-zero if no trial finished.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="the experiment spec on the head node")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    spec = Path(args.spec).expanduser().resolve()
    os.chdir(spec.parent)  # the spec's model modules import from its directory
    sys.path.insert(0, str(spec.parent))
    import tunefleet

    result = tunefleet.run(spec, ["cluster.address=auto", *args.overrides])
    if result.summary.get("best"):
        tunefleet.report(result.location)  # a study at a URI gets its report uploaded beside it
    print(f"{result.finished} of {len(result.trials)} trials finished; results in "
          f"{result.summary['location']}")
    return 0 if result.finished else 1


if __name__ == "__main__":
    sys.exit(main())
