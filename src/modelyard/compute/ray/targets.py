"""A cluster compute target's client side: what the SDK and the CLI do with a cluster.

The workspace records each cluster (``Backend.create_compute``: its provisioning
configuration, its state, its address). This module starts its provisioning
(``provision.py``, in a process of its own), checks a run before it is queued
(:class:`RayCompute`), reads the cluster's node counts (:class:`NodeCounts`, recorded by the
cluster's admission) and deletes the cluster (:func:`delete_cluster`). It never imports Ray:
only processes started for the cluster talk to it (Ray reads its token settings once, at
import).

A server's workspace has its clusters on the server's machine: the server provisions,
restarts and stops them with these same functions (``server/workspaces.py``), and its
clients only record and read (a :class:`RayCompute` without a location).

Example::

    start_provisioning(ws.folder, ws.name, "gpucluster", config)
    NodeCounts.of(backend.get_compute("gpucluster"))   # NodeCounts(current=0, target=2, ...)
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from modelyard.backend.base import Backend
from modelyard.backend.records import ComputeRecord
from modelyard.compute.base import Compute
from modelyard.compute.ray.cluster import (
    STATE_FILE,
    TOKEN_FILE,
    ClusterState,
    client_environment,
    cluster_running,
    stop_local_cluster,
)
from modelyard.compute.ray.provisioning import ProvisioningConfiguration
from modelyard.errors import ComputeTargetException
from modelyard.runner.job import JobSpec
from modelyard.runner.processes import stop_process_groups
from modelyard.runner.run_environment import agent_environment
from modelyard.store.private import make_private_folder

AML_COMPUTE = "AmlCompute"
CREATING_STATE = "Creating"
SUCCEEDED_STATE = "Succeeded"
FAILED_STATE = "Failed"
DELETING_STATE = "Deleting"  # asked: the admission stops the cluster's runs
DELETED_STATE = "Deleted"  # the admission has stopped them and ended
DELETE_TIMEOUT_S = 90.0
PROVISION_LOG = "provision.log"
# A cluster run's file: what its admission did (waited for nodes, placed it, ended it).
ADMISSION_LOG = "system_logs/admission.txt"
# Ray's variables for reaching a cluster with token authentication: an attached cluster's
# token comes from the user's environment (the local provider's from its own file).
RAY_AUTH_NAMES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def cluster_folder(location: Path, name: str) -> Path:
    """Where this machine keeps cluster ``name``'s state (its head's files, its nodes'
    folders for ``provider="local"``)."""
    return location / "compute" / "clusters" / name


def bundle_for(config: ProvisioningConfiguration) -> dict[str, float]:
    """What one node of a run asks Ray for: the whole node of the VM size (v1 gives a run
    whole nodes)."""
    vm = config.vm()
    bundle: dict[str, float] = {"CPU": float(vm.cores)}
    if vm.gpus:
        bundle["GPU"] = float(vm.gpus)
    return bundle


def start_provisioning(
    location: Path,
    workspace_name: str,
    name: str,
    config: ProvisioningConfiguration,
    *,
    served: bool = False,
) -> subprocess.Popen[bytes]:
    """Bring the cluster up in a process of its own (``provision.py``, the leader of a
    session of its own); returns it at once. ``served``: the workspace is a server's, whose
    runs' nodes reach it through the server (``run_access.py``).

    Ray reads its authentication mode once, when it is imported, so the process gets the
    cluster's token in its environment from the start: the local cluster's own token file
    (made before its head starts), or an attached cluster's from the user's environment.
    """
    folder = cluster_folder(location, name)
    make_private_folder(folder)
    environment = agent_environment(os.environ)
    if config.address is None:
        environment.update(client_environment(str(folder / TOKEN_FILE)))
    else:
        environment.update({key: os.environ[key] for key in RAY_AUTH_NAMES if key in os.environ})
    with open(folder / PROVISION_LOG, "ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelyard.compute.ray.provision",
                str(location),
                workspace_name,
                name,
                *(["--served"] if served else []),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )


def provision_log_tail(location: Path, name: str, size: int = 3000) -> str:
    path = cluster_folder(location, name) / PROVISION_LOG
    with contextlib.suppress(OSError):
        return path.read_bytes()[-size:].decode(errors="replace")
    return ""


@dataclass(frozen=True)
class NodeCounts:
    """A cluster's worker nodes, as its admission last saw them in Ray's autoscaler (it
    records them with the compute target, so clients need no connection to the cluster)."""

    current: int = 0  # up: idle or running
    target: int = 0  # up or being started
    idle: int = 0
    running: int = 0
    preparing: int = 0  # being started

    @classmethod
    def of(cls, record: ComputeRecord) -> NodeCounts:
        known = {
            name: record.nodes[name] for name in cls.__dataclass_fields__ if name in record.nodes
        }
        return cls(**known)


def cluster_down(location: Path, record: ComputeRecord) -> bool:
    """Whether ``record`` is a local cluster that came up once and whose head no longer runs
    (the machine restarted): a queued run needs it started again."""
    config = ProvisioningConfiguration.from_dict(record.provisioning)
    if record.state != SUCCEEDED_STATE or config.address is not None:
        return False
    state = _local_state(location, record.name, config)
    return state is None or not cluster_running(state)


def _local_state(
    location: Path, name: str, config: ProvisioningConfiguration
) -> ClusterState | None:
    """The local cluster's head as started from ``location`` (None: none, or attached)."""
    return ClusterState.load(cluster_folder(location, name)) if config.address is None else None


def delete_cluster(location: Path, backend: Backend, record: ComputeRecord) -> None:
    """Stop what runs on the cluster and, for ``provider="local"``, every process of it; then
    forget it. Its active runs end Failed ("the compute target was deleted").

    The cluster's admission sees the state Deleting, stops its runs (each node's supervisor
    stops its processes and uploads what there is) and records Deleted; then a local
    cluster's processes are stopped, all of them.
    """
    config = ProvisioningConfiguration.from_dict(record.provisioning)
    state = _local_state(location, record.name, config)
    running = state is not None and cluster_running(state)
    if record.state == SUCCEEDED_STATE and (running or config.address is not None):
        backend.update_compute(record.name, state=DELETING_STATE)
        _wait_until_deleted(backend, record.name)
    _stop_and_forget(location, backend, record)


def stop_deleted_cluster(location: Path, backend: Backend, name: str) -> None:
    """What :func:`delete_cluster` does once the state Deleting is recorded (a server's
    client asked for it): wait for the admission to stop the runs, when it may be there (the
    cluster came up once, and runs or is attached), then stop the cluster and forget it."""
    record = backend.find_compute(name)
    if record is None:
        return
    if record.state not in (DELETING_STATE, DELETED_STATE):
        # A provisioning that ended as the deletion was asked recorded its outcome over it.
        record = backend.update_compute(name, state=DELETING_STATE)
    config = ProvisioningConfiguration.from_dict(record.provisioning)
    state = _local_state(location, name, config)
    running = state is not None and cluster_running(state)
    if record.address is not None and (running or config.address is not None):
        _wait_until_deleted(backend, name)
    _stop_and_forget(location, backend, record)


def _wait_until_deleted(backend: Backend, name: str) -> None:
    deadline = time.monotonic() + DELETE_TIMEOUT_S
    while time.monotonic() < deadline:
        if backend.get_compute(name).state == DELETED_STATE:
            break
        time.sleep(0.2)


def _stop_and_forget(location: Path, backend: Backend, record: ComputeRecord) -> None:
    folder = cluster_folder(location, record.name)
    state = _local_state(
        location, record.name, ProvisioningConfiguration.from_dict(record.provisioning)
    )
    if state is not None:
        stop_local_cluster(state)
        # What the runs started lives in sessions of its own: stop what is left of it.
        for processes in (folder / "nodes").glob("*/runs/*/processes.json"):
            _stop_recorded(processes)
        (folder / STATE_FILE).unlink(missing_ok=True)
    backend.delete_compute(record.name)


def _stop_recorded(processes_file: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        record = json.loads(processes_file.read_text())
        stop_process_groups(record.get("pgids") or [], 2.0)


class RayCompute(Compute):
    """The client side of a cluster compute target; ``location`` None: a server's
    workspace, whose server starts and wakes the cluster (``server/workspaces.py``)."""

    def __init__(
        self, location: Path | None, workspace_name: str, record: ComputeRecord, embedded: bool
    ) -> None:
        self.location = location
        self.workspace_name = workspace_name
        self.name = record.name
        self.record = record
        self.config = ProvisioningConfiguration.from_dict(record.provisioning)
        self.embedded = embedded  # the workspace lives in its folder (SQLite, local files)

    def check(self, spec: JobSpec) -> None:
        where = f"compute target {self.name!r}"
        if self.config.address is not None and self.embedded:
            raise ComputeTargetException(
                f"{where} is attached at {self.config.address}: its nodes cannot reach this "
                "embedded workspace's folder; use a PostgreSQL + S3 workspace "
                "(Workspace.create(..., database_url=..., storage_url=...)) with clusters on "
                "other machines"
            )
        if self.record.state == FAILED_STATE:
            errors = "; ".join(e.get("message", "") for e in self.record.errors)
            raise ComputeTargetException(
                f"{where} failed to provision ({errors}); delete it and create it again"
            )
        if spec.node_count > self.config.max_nodes:
            raise ComputeTargetException(
                f"node_count={spec.node_count}, but {where} has max_nodes="
                f"{self.config.max_nodes}: ask for at most {self.config.max_nodes} nodes, or "
                "create a cluster with more"
            )
        if spec.use_gpu and not self.config.vm().gpus:
            raise ComputeTargetException(
                f"use_gpu=True, but {where}'s vm_size {self.config.vm_size!r} has no GPU; "
                "submit with use_gpu=False or to a cluster with a GPU size (STANDARD_NC6, ...)"
            )

    def queued(self) -> None:
        """The admission actor polls the queue; a local cluster whose head stopped (a
        reboot) is started again."""
        if self.location is not None and cluster_down(self.location, self.record):
            start_provisioning(self.location, self.workspace_name, self.name, self.config)

    def cancel_requested(self) -> None:
        """Nothing to do: the admission and each node's supervisor look for it."""

    def max_concurrent_runs(self) -> int:
        return self.config.max_nodes
