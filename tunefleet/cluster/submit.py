"""`tunefleet submit`: run a study on a Ray cluster as a Ray job (Ray's Job Submission API).

The job's working directory is the directory of the spec: the spec and the user's own model
modules travel with it, and the job runs ``tunefleet run SPEC --address auto`` on the cluster,
which must have tunefleet installed (the cluster-launcher configs in ``cluster/launcher``
install it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from typing import Any, Callable, Optional

from ..spec import SpecError
from ..storage import experiment_storage, is_uri

__all__ = ["SubmittedJob", "submit_study", "follow_job", "exposed_dashboard", "EXCLUDES"]

# Not uploaded with the working directory (Ray caps it at 100 MiB).
EXCLUDES = [".git", ".venv", "venv", "__pycache__", "*.pyc", "results", "comparison",
            ".pytest_cache", "*.npz", "*.keras"]


@dataclass(frozen=True)
class SubmittedJob:
    job_id: str
    address: str
    entrypoint: str
    study: str = ""  # where the study will be: a path on the cluster, or a URI

    def commands(self) -> dict[str, str]:
        """How to follow, stop and fetch the job from a shell."""
        a = shlex.quote(self.address)
        return {
            "follow": f"ray job logs --follow --address {a} {self.job_id}",
            "status": f"ray job status --address {a} {self.job_id}",
            "stop": f"ray job stop --address {a} {self.job_id}",
            "fetch": (f"tunefleet report {shlex.quote(self.study)}  (reads the study from "
                      "its bucket)" if is_uri(self.study) else
                      f"the study is written to {self.study or 'output.storage'} on the "
                      "cluster; copy it back (e.g. `ray rsync-down CLUSTER.yaml "
                      f"{self.study or 'REMOTE_DIR'} ./results/`) and run `tunefleet report DIR`"),
        }


def exposed_dashboard(address: str) -> Optional[str]:
    """A warning when ``address`` reaches the dashboard over the network rather than through a
    tunnel: Ray's job API runs any command it is sent, without authentication. (No lookup:
    a host name other than ``localhost`` counts as the network.)"""
    if address == "auto":  # Ray finds the dashboard of the cluster on this machine
        return None
    host = urlparse(address if "://" in address else f"http://{address}").hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return None
    return (f"warning: the dashboard at {host} is reached over the network, and Ray's job API "
            "runs any command sent to it without authentication. Keep the dashboard on the "
            "head's loopback (--dashboard-host=127.0.0.1, as tunefleet's launcher configs do) "
            "and reach it through SSH: `ray dashboard CLUSTER.yaml` or "
            "`ssh -L 8265:127.0.0.1:8265 HEAD`, then --address http://127.0.0.1:8265")


def _client(address: str) -> Any:
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise SpecError("--address", f"no Ray dashboard answers there ({first})", address,
                        fix="reach the head's dashboard through an SSH tunnel and give its local "
                        "end, http://127.0.0.1:8265 (`ray dashboard CLUSTER.yaml`, or `ssh -L "
                        "8265:127.0.0.1:8265 HEAD` to a head started with `ray start --head`), "
                        "or run the study here with `tunefleet run`") from None


def submit_study(spec: Path, address: str, overrides: list[str], *, driver_cpus: float = 1.0,
                 driver_gpus: float = 0.0, pip: Optional[list[str]] = None,
                 agent_wait_s: float = 90.0) -> SubmittedJob:
    """Submit ``spec`` as a job to the cluster whose dashboard is at ``address``."""
    spec = Path(spec).resolve()
    if not spec.is_file():
        raise SpecError("SPEC", "no such file", str(spec))
    from ..spec import Experiment

    experiment = Experiment.from_yaml(spec, overrides)  # bad input fails here, not on the cluster
    out = experiment.output.storage
    study = experiment_storage(experiment).location
    if not (out.startswith(("/", "~")) or is_uri(out)):
        # A relative output.storage would land in the job's temporary working directory.
        overrides = [*overrides, f"output.storage=~/tunefleet_results/{out}"]
        study = f"~/tunefleet_results/{out}/{experiment.name}"
    client = _client(address)
    sets = " ".join(f"--set {shlex.quote(o)}" for o in overrides)
    entrypoint = f"tunefleet run {shlex.quote(spec.name)} --address auto {sets}".strip()
    runtime_env: dict[str, Any] = {"working_dir": str(spec.parent), "excludes": EXCLUDES}
    if pip:
        runtime_env["pip"] = pip
    deadline = time.monotonic() + agent_wait_s
    while True:
        try:
            job_id = client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env,
                                       entrypoint_num_cpus=driver_cpus,
                                       entrypoint_num_gpus=driver_gpus,
                                       metadata={"tunefleet_spec": spec.name})
            return SubmittedJob(job_id, address, entrypoint, study)
        except RuntimeError as exc:
            # A head node that has just started answers before its job agent is up.
            if "No available agent" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(2)


def follow_job(job: SubmittedJob, echo: Callable[[str], None]) -> str:
    """Stream the job's logs until it ends; return its final status (``SUCCEEDED``, ...)."""
    client = _client(job.address)

    async def tail() -> None:
        async for lines in client.tail_job_logs(job.job_id):
            echo(lines.rstrip("\n"))

    asyncio.run(tail())
    return str(client.get_job_status(job.job_id).value)
