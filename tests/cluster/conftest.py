"""The cluster scenarios seven tests here assert on (scenarios.py), run once per session beside
the other tests. Each scenario is a study on Ray processes of its own (a multi-node cluster, an
autoscaling one, a job submitted to a head node), and most of its time is spent waiting: for
Ray to start nodes, for paced epochs, for an autoscaler's loop. So they start, in two processes
(one interpreter and one TensorFlow import each), when the session has collected its tests,
and the tests that assert on them run last in the session: by then the scenarios are done
and nothing waited for them. Only the scenarios of the tests selected run.

Under pytest-xdist (the README's test command runs two workers) one worker starts them, into a
directory every worker finds, and any worker's test reads their outcome from there: each
process writes its exit code to a file when it ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

# scenario -> the test that asserts on it
TESTS = {
    "gpus": "test_gpus.py::test_half_gpu_trials_are_packed_two_per_declared_gpu_and_the_driver_"
            "hides_them",
    "multinode": "test_multinode.py::test_a_killed_worker_node_loses_no_trial",
    "blind": "test_node_local_storage.py::test_a_node_local_storage_path_is_refused_with_the_"
             "node_named",
    "autoscaled": "test_autoscaling.py::test_a_gpu_study_runs_on_gpu_workers_the_autoscaler_"
                  "starts",
    "submitted": "test_submit.py::test_submit_runs_the_study_as_a_ray_job",
    "mirrored": "test_gpus.py::test_mirrored_strategy_over_two_logical_cpus",
    "unreachable": "test_autoscaling.py::test_preview_of_a_cluster_where_nothing_answers_says_"
                   "so_at_once",
}
# The scenarios of a group run one after another in one process; the two groups run side by
# side. ``gpus`` comes first in its process: it checks what its driver's TensorFlow sees before
# anything else there touched it.
GROUPS = (("gpus", "multinode", "blind"), ("autoscaled", "submitted", "mirrored", "unreachable"))
TIMEOUT_S = 1500
_NODEIDS = {f"tests/cluster/{test}": name for name, test in TESTS.items()}


def can_make_a_mount_namespace() -> str:
    """'' if `unshare` can give a process its own mounts here, else why not."""
    try:
        probe = subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c",
                                "mount -t tmpfs probe /mnt"], capture_output=True, text=True,
                               timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return "" if probe.returncode == 0 else probe.stderr.strip()[:200]


class _Group:
    """One scenarios.py process: started at once by the worker that starts the scenarios; its
    outcome read, by any worker, from the files it writes (output, then its exit code)."""

    def __init__(self, names: list[str], out: Path):
        self.names, self.out = names, out
        tag = "+".join(names)
        self.stdout_path, self.stderr_path = out / f"{tag}.stdout", out / f"{tag}.stderr"
        self.exit_path = out / f"{tag}.exit"
        self.proc: subprocess.Popen | None = None
        self.outcomes: dict[str, dict[str, Any]] | None = None
        self.returncode: int | None = None

    def start(self) -> None:
        env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": str(ROOT)}
        # The shell writes the exit code once the scenarios end, for a reader in any process.
        command = '"$@"; echo $? > "$0"'
        with open(self.stdout_path, "w") as stdout, open(self.stderr_path, "w") as stderr:
            self.proc = subprocess.Popen(
                ["sh", "-c", command, str(self.exit_path), sys.executable,
                 str(ROOT / "tests" / "cluster" / "scenarios.py"), str(self.out), *self.names],
                env=env, stdout=stdout, stderr=stderr, text=True, cwd=self.out,
                start_new_session=True)

    def wait(self) -> dict[str, dict[str, Any]]:
        if self.outcomes is None:
            deadline = time.monotonic() + TIMEOUT_S
            while (code := self._exit_code()) is None and time.monotonic() < deadline:
                time.sleep(1)
            if code is None:
                self.stop()
            self.returncode = code
            self.outcomes = {}
            for line in self.stdout_path.read_text().splitlines():
                if line.startswith("RESULT "):
                    name, _, outcome = line.removeprefix("RESULT ").partition(" ")
                    self.outcomes[name] = json.loads(outcome)
        return self.outcomes

    def _exit_code(self) -> int | None:
        """The process's exit code once its shell has written it, else None."""
        text = self.exit_path.read_text().strip() if self.exit_path.is_file() else ""
        return int(text) if text else None

    def stop(self) -> None:
        """End the process and what it started (its Ray nodes are in its process group)."""
        if self.proc is None:
            return  # another worker's: that worker ends it
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                return
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass

    def stderr(self) -> str:
        return self.stderr_path.read_text()


class Scenarios:
    """The selected scenarios, running or done: ``result(name)`` waits for its group."""

    def __init__(self, out: Path, names: list[str], blind_skipped: str, start: bool):
        self.out = out  # each scenario's directory is out / its name
        self.blind_skipped = blind_skipped  # why the blind node could not be made ('' if it ran)
        self.groups = [_Group(chosen, out) for chosen in
                       ([n for n in group if n in names] for group in GROUPS) if chosen]
        self.by_name = {name: group for group in self.groups for name in group.names}
        if start:
            for group in self.groups:
                group.start()

    def result(self, name: str) -> tuple[Path, dict[str, Any]]:
        """(the scenario's directory, its outcome); fails the test with the reason if none."""
        group = self.by_name.get(name)
        assert group is not None, f"scenario {name!r} did not run (is its test in TESTS above?)"
        outcome = group.wait().get(name)
        assert group.returncode == 0 and outcome is not None, (
            f"no outcome of scenario {name!r}", group.returncode,
            group.stdout_path.read_text()[-3000:], group.stderr()[-3000:])
        assert "error" not in outcome, outcome["error"]
        return self.out / name, outcome["result"]

    def stderr(self) -> str:
        """What every scenario process has written to standard error (each waited for)."""
        for group in self.groups:
            group.wait()
        return "".join(group.stderr() for group in self.groups)


_STARTED: list[Scenarios] = []


def _start(session: pytest.Session) -> Scenarios:
    """The scenarios of the tests selected: started here, or (under pytest-xdist) by the
    first worker, gw0, into a directory beside every worker's own, where the others read."""
    if not _STARTED:
        names = [_NODEIDS[item.nodeid] for item in session.items if item.nodeid in _NODEIDS]
        names.sort(key=list(TESTS).index)
        blind_skipped = can_make_a_mount_namespace() if "blind" in names else ""
        if blind_skipped:
            names.remove("blind")
        # The session's tmp_path_factory, where pytest's own fixture finds it (no fixture
        # can be asked for when the collection finishes).
        factory = session.config._tmp_path_factory
        worker = getattr(session.config, "workerinput", {}).get("workerid")
        if worker is None:
            out, starts = factory.mktemp("cluster_scenarios"), True
        else:  # each worker's base is a folder of the run's own (pytest-N/popen-gwK)
            out, starts = factory.getbasetemp().parent / "cluster_scenarios", worker == "gw0"
            out.mkdir(exist_ok=True)
        _STARTED.append(Scenarios(out, names, blind_skipped, start=starts))
    return _STARTED[0]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    """The tests that assert on the scenarios last, in their order."""
    last = [item for item in items if item.nodeid in _NODEIDS]
    if last:
        items[:] = [item for item in items if item.nodeid not in _NODEIDS] + last


def pytest_collection_finish(session):
    """Start the selected tests' scenarios, to run beside the session's other tests."""
    if not session.config.option.collectonly and any(
            item.nodeid in _NODEIDS for item in session.items):
        _start(session)


def pytest_sessionfinish(session, exitstatus):
    """A session that ended before asking (stopped at a failure, interrupted): end them. A
    worker that started them for others lets them finish first (the others wait on them)."""
    for scenarios in _STARTED:
        for group in scenarios.groups:
            if group.proc is not None and exitstatus != pytest.ExitCode.INTERRUPTED \
                    and hasattr(session.config, "workerinput"):
                group.wait()
            group.stop()


@pytest.fixture(scope="session")
def cluster_scenarios(request) -> Scenarios:
    return _start(request.session)
