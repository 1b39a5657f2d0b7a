"""scripts/gpu_check.py in its smoke mode (CPU, 2 processes sharing, and the precision pair), with Ray and TensorFlow made
unimportable in the script and in every trial process it starts: the check needs neither, as on
a GPU machine where only JAX is installed. Also: the trial's modules import without the study
(tunefleet's lazy package names), and how failures, missing packages and the budget show."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = ("ray", "tensorflow")

# Loaded by every Python process started with this directory on PYTHONPATH (the script and
# each trial process it spawns): `import ray` / `import tensorflow` then fail as where they
# are not installed; each process records its pid, so the test sees the blocker was active.
SITECUSTOMIZE = textwrap.dedent("""
    import importlib.abc, os, sys

    class _Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {blocked!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, _Blocker())
    with open(os.path.join(os.path.dirname(__file__), "pids.txt"), "a") as f:
        f.write(f"{{os.getpid()}}\\n")
""").format(blocked=BLOCKED)


def _blocked_env(blocker: Path) -> dict[str, str]:
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = os.pathsep.join([str(blocker), str(ROOT)])
    env = {**os.environ, "PYTHONPATH": path, "KERAS_BACKEND": "jax"}
    env.pop("CUDA_VISIBLE_DEVICES", None)  # unset: the script pins its processes to GPU 0
    return env


def test_blocker_makes_ray_and_tensorflow_unimportable(tmp_path):
    # Both are installed here, so only the blocker can make their imports fail.
    assert all(importlib.util.find_spec(name) is not None for name in BLOCKED)
    env = _blocked_env(tmp_path / "blocker")
    for name in BLOCKED:
        proc = subprocess.run([sys.executable, "-c", f"import {name}"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1
        assert f"ModuleNotFoundError: No module named '{name}' (blocked)" in proc.stderr


LAZY_CHECK = textwrap.dedent("""
    import sys
    import tunefleet.trainables.builders, tunefleet.trainables.compile
    import tunefleet.trainables.keras_trainable, tunefleet.trainables.epoch_data
    import tunefleet.cluster.devices, tunefleet.data, tunefleet.spec
    heavy = ["tunefleet.study", "pandas", "ray", "tensorflow", "keras"]
    print(sorted(m for m in heavy if sys.modules.get(m) is not None))
    from tunefleet import Experiment, run
    from tunefleet.trainables import STOP_REASONS, train_trial
    import tunefleet
    try:
        tunefleet.no_such_name
    except AttributeError as exc:
        print(exc)
    print(run.__module__, Experiment.__module__, train_trial.__module__, type(STOP_REASONS))
""")


def test_trial_modules_import_without_the_study_and_public_names_still_resolve():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "jax"}
    proc = subprocess.run([sys.executable, "-c", LAZY_CHECK], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == [
        "[]", "module 'tunefleet' has no attribute 'no_such_name'",
        ("tunefleet.study.runner tunefleet.spec.experiment tunefleet.trainables.keras_trainable "
         "<class 'tuple'>")]


def test_smoke_runs_without_ray_or_tensorflow(tmp_path):
    env = _blocked_env(tmp_path / "blocker")
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--smoke",
                           "--json", str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "targets are not judged: smoke mode checks the plumbing" in proc.stdout
    assert ("trial processes see CUDA_VISIBLE_DEVICES=0 (set by this check: every process on "
            "the same GPU)") in proc.stdout
    s = json.loads(out.read_text())
    assert s["mode"] == "smoke" and s["device"]["platform"] == "cpu" and s["skipped"] == []
    assert s["cuda_visible_devices"] == {"value": "0", "set_by_check": True}
    groups = s["groups"]
    sharing = sorted(g["processes"] for g in groups if g["kind"] == "share")
    assert sharing == [2]
    assert sorted(g["name"] for g in groups if g["kind"] == "precision") == [
        "float32, no XLA", "mixed_bfloat16 + XLA"]
    for g in groups:
        assert g["failed"] == 0 and g["oom_errors"] == 0 and g["killed_by_budget"] == 0
        assert len(g["per_process"]) == g["processes"]
        assert g["environment"]["KERAS_BACKEND"] == "jax"
        assert g["environment"]["CUDA_VISIBLE_DEVICES"] == "0"
        assert float(g["environment"]["XLA_PYTHON_CLIENT_MEM_FRACTION"]) < 1
        rates = [r["images_per_s"] for r in g["per_process"]]
        assert all(isinstance(v, float) and v > 0 for v in rates)
        assert abs(g["total_images_per_s"] - sum(rates)) < 1e-6
        for r in g["per_process"]:
            assert r["ok"] is True and r["oom"] is False and r["epochs"] >= 1
            assert r["peak_bytes"] is None  # no memory statistics on CPU: printed n/a
    two = next(g for g in groups if g["processes"] == 2)
    assert two["environment"]["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.450"  # 1/2 x 0.9
    policies = {g["name"]: (g["per_process"][0]["dtype_policy"], g["per_process"][0]["jit_compile"])
                for g in groups if g["kind"] == "precision"}
    assert policies == {"float32, no XLA": ("float32", False),
                        "mixed_bfloat16 + XLA": ("mixed_bfloat16", True)}
    targets = s["targets"]
    assert s["targets_judged"] is False
    assert targets["sharing"]["passed"] is None and targets["precision"]["passed"] is None
    assert isinstance(targets["precision"]["ratio_bf16_xla_vs_float32"], float)
    # The blocker ran in the script and in each of its 4 trial processes.
    pids = set((tmp_path / "blocker" / "pids.txt").read_text().split())
    assert len(pids) >= 5


def _script():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _group(kind: str, k: int, rate: float, oom: int = 0) -> dict:
    ok = [{"ok": True, "oom": False, "index": i, "images_per_s": rate, "ready_s": 1.0}
          for i in range(k - oom)]
    bad = [{"ok": False, "oom": True, "index": i, "error": "XlaRuntimeError: RESOURCE_EXHAUSTED"}
           for i in range(k - oom, k)]
    name = {"share": "spec default (float32, jit auto)"}.get(kind, kind)
    return {"kind": "precision" if kind != "share" else "share", "name": name, "processes": k,
            "per_process": ok + bad, "total_images_per_s": rate * (k - oom),
            "failed": oom, "oom_errors": oom}


def test_an_out_of_memory_process_is_counted_and_fails_the_sharing_target(tmp_path, capsys):
    gc = _script()
    gpu = {"platform": "gpu", "device_kind": "NVIDIA H200", "device_count": 1}
    clean = [_group("share", 1, 1000.0), _group("share", 4, 900.0),
             _group("float32, no XLA", 1, 100.0), _group("mixed_bfloat16 + XLA", 1, 1600.0)]
    s = gc.summarize(clean, [], gpu, "gpu", gc.SIZES["gpu"], 300.0)
    assert s["targets_judged"] is True
    assert s["targets"]["sharing"] == {"ratio_4_vs_1": 3.6, "target": 3.0, "oom_errors": 0,
                                       "passed": True}
    assert s["targets"]["precision"]["ratio_bf16_xla_vs_float32"] == 16.0
    assert s["targets"]["precision"]["passed"] is True
    assert s["targets"]["precision"]["ratio_bf16_xla_vs_float32_xla"] == 1.6
    # One of 4 processes out of memory: the 3 others still give 2.7x, and the target fails.
    s = gc.summarize([clean[0], _group("share", 4, 900.0, oom=1), *clean[2:]], [], gpu, "gpu",
                     gc.SIZES["gpu"], 300.0)
    assert s["targets"]["sharing"] == {"ratio_4_vs_1": 2.7, "target": 3.0, "oom_errors": 1,
                                       "passed": False}
    gc.print_summary(s)
    printed = capsys.readouterr().out
    assert "OUT OF MEMORY: XlaRuntimeError: RESOURCE_EXHAUSTED" in printed
    assert "out-of-memory errors: 1, failed: 1" in printed and "FAIL" in printed
    # A process killed before writing its figures is failed, its log searched for the cause.
    (tmp_path / "log-0.txt").write_text("... RESOURCE_EXHAUSTED: Out of memory while trying")
    r = gc._child_result(tmp_path, 0, -9)
    assert (r["ok"], r["oom"], r["returncode"]) == (False, True, -9)
    assert r["error"].startswith("exit code -9; log tail: ")


def test_missing_packages_are_named_with_the_install_line(monkeypatch, capsys):
    gc = _script()
    monkeypatch.setattr(gc, "NEEDED", {**gc.NEEDED, "no_such_module_here": "no-such-pkg[cuda]"})
    assert gc.main(["--smoke"]) == 2
    assert capsys.readouterr().out == ("gpu_check: missing no-such-pkg[cuda]; install them "
                                       "first: pip install 'no-such-pkg[cuda]'\n")


@pytest.mark.parametrize("budget", [0, 60])
def test_groups_past_the_budget_are_listed_as_skipped_not_run(monkeypatch, capsys, tmp_path,
                                                              budget):
    """60 s: more than the old rule asked (measure_s + 10 s), less than a group may need
    before any ready time is measured (the 90 s ready timeout + 3 x 0.5 s + 10 s)."""
    gc = _script()
    monkeypatch.setattr(gc, "BUDGET_S", budget)
    monkeypatch.setattr(sys, "path", list(sys.path))  # main() puts the tree first
    out = tmp_path / "figures.json"
    assert gc.main(["--smoke", "--json", str(out)]) == 1  # nothing ran
    s = json.loads(out.read_text())
    assert s["groups"] == [] and len(s["skipped"]) == 3
    assert re.fullmatch(rf"float32, no XLA x1: not started, needs about 102 s and \d+ s of the "
                        rf"{budget} s budget are left", s["skipped"][0]), s["skipped"][0]
    assert "skipped: mixed_bfloat16 + XLA x1: not started" in capsys.readouterr().out


def test_a_groups_need_comes_from_the_ready_times_seen_so_far():
    gc = _script()
    size = gc.SIZES["gpu"]  # ready timeout 180 s, 15 s measured
    assert gc.group_need_s([], size) == 180.0 + 45.0  # nothing measured yet: the timeout
    seen = [_group("share", 1, 1000.0), _group("share", 4, 900.0, oom=1)]
    seen[1]["per_process"][0]["ready_s"] = 40.0  # the slowest start so far
    assert gc.group_need_s(seen, size) == 40.0 * gc.READY_FACTOR + 45.0
    seen[1]["per_process"][1]["ready_s"] = 150.0  # x 2 would pass the timeout: capped
    assert gc.group_need_s(seen, size) == 180.0 + 45.0


def test_processes_the_budget_cuts_short_are_reported_so_not_failed(tmp_path, monkeypatch,
                                                                    capsys):
    """A group still running at the deadline: its processes (ready, then still measuring)
    are killed and reported as cut by the budget; the group counts no failure, and no ratio
    is taken from it."""
    gc = _script()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    size = {**gc.SIZES["smoke"], "measure_s": 30.0}
    g = gc.Group(tmp_path / "group", "share", 2, gc.DEFAULT, size, smoke=True)
    assert g.extra["CUDA_VISIBLE_DEVICES"] == "0" and g.env["CUDA_VISIBLE_DEVICES"] == "0"
    g.dir.mkdir()
    g.started = time.perf_counter()
    for i in range(2):  # ready at once, then busy far past the deadline
        (g.dir / f"ready-{i}").touch()
        log = open(g.dir / f"log-{i}.txt", "w")
        g.procs.append((subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                         stdout=log, stderr=subprocess.STDOUT), log))
    begun = time.perf_counter()
    result = g.finish(deadline=begun + 1.0)
    assert time.perf_counter() - begun < 10  # killed at the deadline, not waited for
    assert (result["failed"], result["killed_by_budget"], result["oom_errors"]) == (0, 2, 0)
    assert all(r["killed_by_budget"] is True and r["ok"] is False and r["returncode"] != 0
               for r in result["per_process"])
    s = gc.summarize([result], [], {}, "smoke", size, 2.0)
    assert s["targets"]["sharing"]["ratio_4_vs_1"] is None
    gc.print_summary(s)
    printed = capsys.readouterr().out
    assert "CUT BY BUDGET: killed at the end of the" in printed
    assert "failed: 0, killed at the budget's end: 2" in printed


def test_a_cuda_visible_devices_already_set_is_kept(monkeypatch):
    gc = _script()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    env, extra = gc.trial_environment(0.5, smoke=False)
    assert env["CUDA_VISIBLE_DEVICES"] == "3" and "CUDA_VISIBLE_DEVICES" not in extra
