#!/usr/bin/env python
"""GPU check with neither Ray nor TensorFlow: tunefleet's trial body on KERAS_BACKEND=jax.

Trains the CNN of examples/cifar10_cnn.yaml on synthetic CIFAR-shaped data (32x32x3, 10
classes) as 1, 2, 4 and 8 processes started together on one GPU, each limited to 1/k of its
memory, then one process with ``mixed_bfloat16`` + ``jit_compile`` against one in float32
without XLA. Each process runs tunefleet's own trial code as ``train_trial`` does
(``select_backend`` and ``configure_trial_devices``; ``build_trial_model`` with the cnn
builder, ``precision_policy`` and ``compile_model``; ``fit_arguments``, ``EpochData``, one
``fit`` per epoch with validation) but not Ray's reporting and checkpointing. After one
warm-up epoch (tracing and compiling) the processes wait for each other, then train whole
epochs for a fixed time. Prints training images/s per process (validation time included, as
in a trial) and in total, peak GPU memory per process, and out-of-memory errors; then the two
target ratios with pass/fail, within 8 minutes. Every process sees one GPU: with
CUDA_VISIBLE_DEVICES unset, the script sets it to 0 for them.

    KERAS_BACKEND=jax python scripts/gpu_check.py [--json PATH]
    python scripts/gpu_check.py --smoke [--json PATH]   # CPU, tiny, the plumbing only

Needs keras, jax (``pip install keras 'jax[cuda12]' pydantic pyyaml``) and this repository
tree; not tunefleet installed, not Ray, not TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "cifar10_cnn.yaml"
NEEDED = {"numpy": "numpy", "pydantic": "pydantic", "yaml": "pyyaml", "keras": "keras",
          "jax": "jax[cuda12]"}
TARGET_SHARING = 3.0  # 4 processes sharing one GPU: total images/s >= 3x one process alone
TARGET_PRECISION = 1.5  # mixed_bfloat16 + XLA >= 1.5x the images/s of float32 without XLA
BUDGET_S = 8 * 60
# A group is started only if the budget leaves it the time to get ready (the slowest start seen
# so far x this factor: more processes compile at once; the ready timeout before any is seen)
# and 3x its measuring time, plus a margin for starting and collecting.
READY_FACTOR = 2.0
BLOCKED = ("ray", "tensorflow")  # unimportable in a trial process here (see __main__)
FLOAT32 = {"name": "float32, no XLA", "mixed_precision": None, "jit_compile": False}
BF16_XLA = {"name": "mixed_bfloat16 + XLA", "mixed_precision": "mixed_bfloat16",
            "jit_compile": True}
DEFAULT = {"name": "spec default (float32, jit auto)", "mixed_precision": None,
           "jit_compile": "auto"}
SIZES = {  # train/validation images: multiples of batch x steps_per_execution (8)
    "gpu": {"batch_size": 128, "train": 12288, "val": 1024, "measure_s": 15.0,
            "ready_timeout_s": 180.0, "levels": [1, 2, 4, 8], "model_params": {}},
    # Smoke: one shared group (2 processes) and the precision pair, started all at once (the
    # plumbing of every path, not speed): 4 process start-ups overlap on a 2-core CPU.
    "smoke": {"batch_size": 32, "train": 256, "val": 64, "measure_s": 0.5,
              "ready_timeout_s": 90.0, "levels": [2], "all_at_once": True,
              # the same builder, one conv block: fewer ops for jax to compile on a small CPU
              "model_params": {"conv_blocks": 1, "filters": 8, "dense_units": 16},
              # Keras' optional imports, which no trial here uses: 2.3 s of a trial process's
              # 4.4 s start on a 2-core CPU (pandas: 0.3 s more)
              "skip_modules": ["matplotlib", "sklearn", "pandas"]},
}


# ---------------------------------------------------------------- the driver (no jax here)

def missing_modules() -> list[str]:
    """pip names of what this script needs and cannot find (found without importing it)."""
    return [pip for module, pip in NEEDED.items() if importlib.util.find_spec(module) is None]


def trial_environment(share: float, smoke: bool) -> tuple[dict[str, str], dict[str, str]]:
    """A trial process's environment for ``share`` of the GPU, from tunefleet's own
    ``backend_environment`` (what it adds, for the record, comes second). Every process is
    pinned to the same GPU, as the check intends: ``CUDA_VISIBLE_DEVICES=0`` unless it is set
    already (then it is kept)."""
    from tunefleet.cluster.devices import backend_environment

    extra = backend_environment("jax", share)
    if smoke:
        extra["JAX_PLATFORMS"] = "cpu"
        # XLA without LLVM's optimisations: the smoke's compiles (train, validation and each
        # weight initialiser's random bits) take half the CPU of a trial process
        extra["XLA_FLAGS"] = " ".join(filter(None, [os.environ.get("XLA_FLAGS"),
                                                    "--xla_backend_optimization_level=0"]))
    if "CUDA_VISIBLE_DEVICES" not in os.environ:
        extra["CUDA_VISIBLE_DEVICES"] = "0"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env, extra


class Group:
    """``count`` trial processes of one variant, each with 1/count of the GPU's memory, started
    together and released together after their warm-up (a barrier of files in ``directory``)."""

    def __init__(self, directory: Path, kind: str, count: int, variant: dict, size: dict,
                 smoke: bool):
        self.dir, self.kind, self.count, self.variant, self.size = (directory, kind, count,
                                                                    variant, size)
        self.env, self.extra = trial_environment(1.0 / count, smoke)
        self.procs: list[tuple[subprocess.Popen, Any]] = []
        self.started = 0.0

    @property
    def label(self) -> str:
        return f"{self.variant['name']} x{self.count}"

    def start(self) -> None:
        self.dir.mkdir()
        task = {"variant": self.variant, "size": self.size, "count": self.count}
        (self.dir / "task.json").write_text(json.dumps(task))
        self.started = time.perf_counter()
        for i in range(self.count):
            log = open(self.dir / f"log-{i}.txt", "w")  # closed in finish
            self.procs.append((subprocess.Popen(
                [sys.executable, __file__, "--child", str(self.dir), str(i)], env=self.env,
                stdout=log, stderr=subprocess.STDOUT), log))

    def finish(self, deadline: float) -> dict[str, Any]:
        """Release the processes once all are ready (or ended), wait for them, collect. A
        process still running when the budget's ``deadline`` ends it is killed and reported
        as such, not as failed: it was cut short, it did not fail."""
        ready_by = min(deadline, self.started + self.size["ready_timeout_s"])
        while time.perf_counter() < ready_by:
            if all((self.dir / f"ready-{i}").exists() or p.poll() is not None
                   for i, (p, _) in enumerate(self.procs)):
                break
            time.sleep(0.05)
        (self.dir / "go").touch()
        own_end = time.perf_counter() + self.size["measure_s"] * 3 + 60
        end_by = min(deadline, own_end)
        killed: set[int] = set()
        for i, (p, log) in enumerate(self.procs):
            try:
                p.wait(timeout=max(1.0, end_by - time.perf_counter()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                killed.add(i)
            log.close()
        # Cut by the budget: killed at the deadline (not at the group's own end), and ready
        # by then, or denied the full ready timeout by it (else it hung: a failure).
        denied_ready = deadline < self.started + self.size["ready_timeout_s"]
        by_budget = {i for i in killed if deadline <= own_end
                     and (denied_ready or (self.dir / f"ready-{i}").exists())}
        results = [_child_result(self.dir, i, p.returncode, i in by_budget)
                   for i, (p, _) in enumerate(self.procs)]
        ok = [r for r in results if r["ok"]]
        cut = sum(bool(r.get("killed_by_budget")) for r in results)
        return {
            "kind": self.kind, "name": self.variant["name"], "processes": self.count,
            "memory_share": 1.0 / self.count,
            "environment": self.extra,
            "per_process": results,
            "total_images_per_s": sum(r["images_per_s"] for r in ok),
            "failed": len(results) - len(ok) - cut,
            "killed_by_budget": cut,
            "oom_errors": sum(bool(r.get("oom")) for r in results),
            "wall_s": round(time.perf_counter() - self.started, 2),
        }


def _child_result(group: Path, i: int, returncode: Optional[int],
                  killed_by_budget: bool = False) -> dict[str, Any]:
    path = group / f"result-{i}.json"
    if path.exists():
        result = json.loads(path.read_text())
    elif killed_by_budget:  # still running at the budget's end: cut short, not failed
        result = {"ok": False, "oom": False, "killed_by_budget": True,
                  "error": f"killed at the end of the {BUDGET_S:.0f} s budget"}
    else:  # killed (timeout, the host's OOM killer) or crashed before writing anything
        log = (group / f"log-{i}.txt").read_text(errors="replace")
        result = {"ok": False, "oom": "RESOURCE_EXHAUSTED" in log or "out of memory" in log,
                  "error": f"exit code {returncode}; log tail: {log[-600:]}"}
    result["index"], result["returncode"] = i, returncode
    return result


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="CPU, k = 1, 2, tiny data: checks the plumbing, judges no target")
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--measure-s", type=float, help="timed seconds per group (after warm-up)")
    args = parser.parse_args(argv)
    missing = missing_modules()
    if missing:
        print(f"gpu_check: missing {', '.join(missing)}; install them first: "
              f"pip install {' '.join(repr(m) if '[' in m else m for m in missing)}")
        return 2
    if os.environ.get("KERAS_BACKEND", "jax") != "jax":
        print(f"gpu_check: KERAS_BACKEND={os.environ['KERAS_BACKEND']} ignored; this check runs "
              "its trials on jax")
    sys.path.insert(0, str(ROOT))  # this tree's tunefleet, installed or not
    mode = "smoke" if args.smoke else "gpu"
    size = dict(SIZES[mode])
    if args.measure_s:
        size["measure_s"] = args.measure_s
    started = time.perf_counter()
    deadline = started + BUDGET_S
    workdir = Path(tempfile.mkdtemp(prefix="tunefleet-gpu-check-"))
    # The sharing target and the precision pair first; then the other levels, time allowing.
    plan = [("share", 1, DEFAULT), ("share", 4, DEFAULT), ("precision", 1, FLOAT32),
            ("precision", 1, BF16_XLA), ("share", 2, DEFAULT), ("share", 8, DEFAULT)]
    plan = [p for p in plan if p[0] == "precision" or p[1] in size["levels"]]
    groups: list[dict[str, Any]] = []
    skipped: list[str] = []
    device: dict[str, Any] = {}
    pending = [Group(workdir / f"{n}-{kind}-{count}", kind, count, variant, size, args.smoke)
               for n, (kind, count, variant) in enumerate(plan)]
    margin = 10 if args.smoke else 45

    def shortfall() -> Optional[str]:
        """Why the next group does not fit in what is left of the budget; None if it does."""
        need = group_need_s(groups, size) + margin
        left = deadline - time.perf_counter()
        if need <= left:
            return None
        return f"not started, needs about {need:.0f} s and {max(left, 0):.0f} s of the " \
               f"{BUDGET_S:.0f} s budget are left"

    pinned = "CUDA_VISIBLE_DEVICES" not in os.environ
    visible = "0" if pinned else os.environ["CUDA_VISIBLE_DEVICES"]
    print(f"trial processes see CUDA_VISIBLE_DEVICES={visible}"
          + (" (set by this check: every process on the same GPU)" if pinned else
             " (as set)"), flush=True)
    if size.get("all_at_once") and shortfall() is None:
        for g in pending:
            print(f"starting {g.label} ...", flush=True)
            g.start()
    for g in pending:
        why = None if g.procs else shortfall()
        if why is not None:
            skipped.append(f"{g.label}: {why}")
            continue
        if not g.procs:
            print(f"running {g.label} ...", flush=True)
            g.start()
        groups.append(g.finish(deadline))
        if groups[-1]["killed_by_budget"]:
            skipped.append(f"{g.label}: {groups[-1]['killed_by_budget']} of {g.count} processes "
                           "killed at the end of the budget (not counted as failed)")
        first = next((r for r in groups[-1]["per_process"] if r.get("platform")), None)
        if first and not device:
            device = {k: first[k] for k in ("platform", "device_kind", "device_count")}
            print(f"device: {device['device_kind']} ({device['platform']}, "
                  f"{device['device_count']} visible)", flush=True)
            if not args.smoke and device["platform"] != "gpu":
                print("gpu_check: JAX sees no GPU (install jax[cuda12]), so there is nothing "
                      "to measure; use --smoke on CPU")
                break
    summary = summarize(groups, skipped, device, mode, size, time.perf_counter() - started)
    summary["cuda_visible_devices"] = {"value": visible, "set_by_check": pinned}
    print_summary(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
        print(f"figures written to {args.json}")
    failed = any(g["failed"] for g in groups)
    if failed:
        print(f"logs of every process kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    measured = any(r["ok"] for g in groups for r in g["per_process"])
    return 1 if failed or not measured else 0


def group_need_s(groups: list[dict[str, Any]], size: dict[str, Any]) -> float:
    """Seconds a group may take: to get ready (the slowest ready time of the groups so far x
    :data:`READY_FACTOR`, at most the ready timeout; the ready timeout before any was measured),
    then 3x its measuring time (epochs are whole, and validation comes on top)."""
    seen = [r["ready_s"] for g in groups for r in g["per_process"]
            if r.get("ok") and r.get("ready_s") is not None]
    ready = size["ready_timeout_s"]
    if seen:
        ready = min(ready, max(seen) * READY_FACTOR)
    return ready + 3 * size["measure_s"]


def _ratio(a: float, b: float) -> Optional[float]:
    return round(a / b, 3) if a and b else None


def summarize(groups: list[dict], skipped: list[str], device: dict, mode: str, size: dict,
              elapsed: float) -> dict[str, Any]:
    """Every figure, and the two targets (judged on a GPU only)."""
    # A group the budget cut short measured fewer processes than it ran: no ratio from it.
    whole = [g for g in groups if not g.get("killed_by_budget")]
    share = {g["processes"]: g for g in whole if g["kind"] == "share"}
    precision = {g["name"]: g for g in whole if g["kind"] == "precision"}
    judged = mode == "gpu" and device.get("platform") == "gpu"
    one, four = share.get(1), share.get(4)
    f32, bf16 = precision.get(FLOAT32["name"]), precision.get(BF16_XLA["name"])
    sharing = _ratio(four["total_images_per_s"], one["total_images_per_s"]) if one and four \
        else None
    oom = sum(g["oom_errors"] for g in groups)
    speedup = _ratio(bf16["total_images_per_s"], f32["total_images_per_s"]) if f32 and bf16 \
        else None
    # Not a target: how much of that is bfloat16 alone (the k = 1 run is float32 with XLA).
    bf16_alone = _ratio(bf16["total_images_per_s"], one["total_images_per_s"]) if bf16 and one \
        else None
    return {
        "mode": mode, "device": device, "sizes": size, "model": str(SPEC.relative_to(ROOT)),
        "elapsed_s": round(elapsed, 1), "budget_s": BUDGET_S, "skipped": skipped,
        "groups": groups, "targets_judged": judged,
        "targets": {
            "sharing": {"ratio_4_vs_1": sharing, "target": TARGET_SHARING, "oom_errors": oom,
                        "passed": (sharing is not None and sharing >= TARGET_SHARING
                                   and oom == 0) if judged else None},
            "precision": {"ratio_bf16_xla_vs_float32": speedup, "target": TARGET_PRECISION,
                          "passed": (speedup is not None and speedup >= TARGET_PRECISION)
                          if judged else None,
                          "ratio_bf16_xla_vs_float32_xla": bf16_alone},
        },
    }


def _times(ratio: Optional[float], needs: str) -> str:
    return f"{ratio:.2f}x" if ratio is not None else f"n/a (needs {needs})"


def _mb(value: Optional[int]) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f} MB"


def print_summary(s: dict[str, Any]) -> None:
    print(f"\n{s['mode']} run on {s['device'].get('device_kind', 'unknown device')}, "
          f"{s['sizes']['train']} train / {s['sizes']['val']} validation images per epoch, "
          f"batch {s['sizes']['batch_size']}, the CNN of {s['model']}"
          + (f" with {s['sizes']['model_params']}" if s["sizes"]["model_params"] else "")
          + f"; {s['elapsed_s']} s in all")
    print(f"{'run':<34} {'k':>2} {'process':>7} {'images/s':>10} {'ready s':>8} "
          f"{'peak mem':>9} {'limit':>9}  status")
    order = sorted(s["groups"], key=lambda g: (g["kind"] != "share", g["processes"]))
    for g in order:
        for r in g["per_process"]:
            status = "ok" if r["ok"] else ("OUT OF MEMORY" if r.get("oom") else
                                           "CUT BY BUDGET" if r.get("killed_by_budget") else
                                           "FAILED")
            if not r["ok"]:
                status += f": {str(r.get('error', ''))[:160]}"
            rate = f"{r['images_per_s']:.0f}" if r["ok"] else "-"
            ready = f"{r['ready_s']:.1f}" if r["ok"] else "-"
            print(f"{g['name']:<34} {g['processes']:>2} {r['index']:>7} {rate:>10} {ready:>8} "
                  f"{_mb(r.get('peak_bytes')):>9} {_mb(r.get('bytes_limit')):>9}  {status}")
        print(f"{'':<34} {g['processes']:>2} {'total':>7} {g['total_images_per_s']:>10.0f} "
              f"{'':>8}   out-of-memory errors: {g['oom_errors']}, failed: {g['failed']}"
              + (f", killed at the budget's end: {g['killed_by_budget']}"
                 if g.get("killed_by_budget") else ""))
    print("images/s: training images per second of whole epochs, validation included, after "
          "a warm-up epoch; ready s: from process start to the end of that warm-up")
    for line in s["skipped"]:
        print(f"skipped: {line}")
    t = s["targets"]
    verdict = (lambda ok: "PASS" if ok else "FAIL") if s["targets_judged"] else \
        (lambda ok: "not judged")
    sharing, speedup = t["sharing"]["ratio_4_vs_1"], t["precision"]["ratio_bf16_xla_vs_float32"]
    print(f"sharing: 4 processes give {_times(sharing, 'k = 1 and 4')} the images/s (trials per "
          f"hour) of 1 alone, {t['sharing']['oom_errors']} out-of-memory errors in all runs; "
          f"target >= {TARGET_SHARING}x with none: {verdict(t['sharing']['passed'])}")
    print(f"precision: mixed_bfloat16 + XLA gives {_times(speedup, 'both runs')} the images/s of "
          f"float32 without XLA; target >= {TARGET_PRECISION}x: "
          f"{verdict(t['precision']['passed'])}")
    print("  (on jax, Keras without XLA runs the train step op by op, not jax.jit-compiled; "
          "mixed_bfloat16 alone, both with XLA: "
          f"{_times(t['precision']['ratio_bf16_xla_vs_float32_xla'], 'k = 1')}, not a target)")
    if not s["targets_judged"]:
        print("targets are not judged: " + ("smoke mode checks the plumbing, not speed"
                                            if s["mode"] == "smoke" else "no GPU"))


# ---------------------------------------------------------------- one trial process

def child(group: Path, index: int) -> None:
    """One trial: tunefleet's trial body on synthetic CIFAR-shaped data; writes its figures."""
    begun = time.perf_counter()
    task = json.loads((group / "task.json").read_text())
    for name in task["size"].get("skip_modules", []):
        sys.modules.setdefault(name, None)
    out = group / f"result-{index}.json"
    result: dict[str, Any] = {"ok": False, "oom": False}
    try:
        result.update(_train(task, group, index, begun))
        result["ok"] = True
    except BaseException as exc:  # noqa: BLE001 (every failure is reported, never hidden)
        traceback.print_exc()  # into the process's log
        from tunefleet.trainables.watchdog import is_out_of_memory

        result.update(oom=is_out_of_memory(exc),
                      error=f"{type(exc).__name__}: {str(exc).strip()[:1500]}")
        (group / f"ready-{index}").touch()  # do not hold the others at the barrier
    out.write_text(json.dumps(result))


def _train(task: dict, group: Path, index: int, begun: float) -> dict[str, Any]:
    size, variant = task["size"], task["variant"]
    from tunefleet.cluster.devices import configure_trial_devices, select_backend
    from tunefleet.data import DataInfo, TrainingData
    from tunefleet.spec import Experiment, load_yaml

    spec = load_yaml(SPEC)
    experiment = Experiment.from_dict({
        "name": "gpu_check",
        "model": {**spec["model"], "params": {**spec["model"]["params"],
                                              **size["model_params"]}},
        "train": {**spec["train"], "batch_size": size["batch_size"], "epochs": 1000,
                  "mixed_precision": variant["mixed_precision"],
                  "jit_compile": variant["jit_compile"], "backend": "jax"},
        "resources": {"cpu": 1, "gpu": 1.0 / task["count"]},
    })
    # A trial's first steps, as in train_trial: its backend and share of the GPU (the
    # environment the driver set already holds them), then its devices (no TensorFlow).
    select_backend(experiment.train.backend, experiment.resources.gpu,
                   experiment.resources.gpu_memory)
    configure_trial_devices(experiment.resources.cpu, experiment.resources.gpu,
                            experiment.resources.gpu_memory)
    import jax
    import numpy as np

    from tunefleet.trainables.epoch_data import EpochData
    from tunefleet.trainables.keras_trainable import build_trial_model, fit_arguments

    rng = np.random.default_rng(index)
    n, n_val = size["train"], size["val"]
    info = DataInfo("synthetic_cifar", "multiclass", (32, 32, 3), 10,
                    [str(c) for c in range(10)])
    data = TrainingData(info, rng.random((n, 32, 32, 3), dtype=np.float32),
                        rng.integers(0, 10, n).astype(np.int64),
                        rng.random((n_val, 32, 32, 3), dtype=np.float32),
                        rng.integers(0, 10, n_val).astype(np.int64))
    trial = build_trial_model(experiment, info, {}, seed=index)
    arguments = {**fit_arguments(experiment, trial.settings, None), "shuffle": False}
    feed = EpochData(data, trial.settings.batch_size, trial.settings.train.shuffle,
                     pipeline=True)  # keras' own arrays on jax, as a trial gets them
    if feed.pipeline:
        arguments.pop("batch_size", None)

    def epoch(e: int) -> float:
        t = time.perf_counter()
        history = trial.fit(**feed.epoch(index, e), epochs=e + 1, initial_epoch=e,
                            validation_data=feed.validation(), **arguments)
        losses.append(float(history.history["loss"][-1]))
        return time.perf_counter() - t

    losses: list[float] = []
    warmup_epoch_s = epoch(0)  # traces and compiles train and validation steps
    ready_s = time.perf_counter() - begun
    (group / f"ready-{index}").touch()
    waited_by = time.perf_counter() + size["ready_timeout_s"] + 30
    while not (group / "go").exists() and time.perf_counter() < waited_by:
        time.sleep(0.01)
    times: list[float] = []
    while not times or sum(times) < size["measure_s"]:
        times.append(epoch(len(times) + 1))
    if not all(math.isfinite(v) for v in losses):
        raise FloatingPointError(f"loss is not finite: {losses}")
    device = jax.devices()[0]
    stats = device.memory_stats() or {}
    return {"images_per_s": len(times) * n / sum(times), "epochs": len(times),
            "measured_s": round(sum(times), 3), "epoch_s": [round(t, 4) for t in times],
            "warmup_epoch_s": round(warmup_epoch_s, 2), "ready_s": round(ready_s, 2),
            "loss": losses[-1], "peak_bytes": stats.get("peak_bytes_in_use"),
            "bytes_limit": stats.get("bytes_limit"), "platform": device.platform,
            "device_kind": device.device_kind, "device_count": len(jax.devices()),
            "dtype_policy": trial.model.dtype_policy.name,
            "jit_compile": bool(trial.model.jit_compile)}


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        # A trial process runs as where neither is installed: keras.utils.set_random_seed
        # would otherwise import TensorFlow wherever it is (seconds, and GPU state).
        for blocked in BLOCKED:
            sys.modules.setdefault(blocked, None)
        sys.path.insert(0, str(ROOT))
        child(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(main())
