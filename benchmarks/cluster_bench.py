"""What the three cluster benchmarks share (``bench_cluster_*.py``): a local Ray cluster made by
modelyard for the run of a benchmark and deleted after it, a connection of the benchmark's own
process to that cluster's Ray (for the side of the comparison that uses Ray directly), and the
figures' arithmetic.

Example::

    with local_cluster("bench-submit", min_nodes=1) as cluster:
        ray = connect_ray(cluster)       # after the cluster exists: Ray needs its token
        ...
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.helpers

from modelyard import Workspace
from modelyard.compute import AmlCompute, ComputeTarget, ComputeTargetException
from modelyard.compute.ray.cluster import ClusterState, client_environment, session_processes
from modelyard.compute.ray.targets import cluster_folder
from tests.helpers import wait_for

# Two nodes of two CPUs: the most this two-core machine holds without starving the head.
VM_SIZE = "cpu=2,memory=4GB,gpu=0"
MAX_NODES = 2
PROVISION_MINUTES = 10
NODES_TIMEOUT_S = 300.0


@dataclass
class Cluster:
    """A cluster compute target on this machine and what the benchmarks need of it."""

    workspace: Workspace
    target: AmlCompute
    state: ClusterState  # the Ray head's address, dashboard and token file
    folder: Path  # a temporary folder for the benchmark's own files, removed at the end

    def wait_for_nodes(self, count: int, timeout: float = NODES_TIMEOUT_S) -> None:
        """Until exactly ``count`` worker nodes are up and none is coming or going."""
        wait_for(
            lambda: (
                (status := self.target.get_status()).current_node_count == count
                and status.target_node_count == count
            ),
            timeout=timeout,
            interval=0.2,
        )


@contextlib.contextmanager
def local_cluster(name: str, min_nodes: int, idle_seconds: int = 5) -> Iterator[Cluster]:
    """A workspace in a temporary folder with a local cluster ``name`` (``VM_SIZE`` nodes,
    ``min_nodes`` to ``MAX_NODES``), up with its ``min_nodes`` nodes. On the way out, the
    benchmark's Ray connection is closed, the cluster deleted and checked to have left no
    process, and the folder removed."""
    # The process id in the name: a cluster of the same name elsewhere on this machine
    # shares the admission's scratch folder (see leave_nothing_behind).
    name = f"{name}-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        ws = Workspace.create("bench", folder=Path(tmp) / "ws")
        config = AmlCompute.provisioning_configuration(
            vm_size=VM_SIZE,
            min_nodes=min_nodes,
            max_nodes=MAX_NODES,
            idle_seconds_before_scaledown=idle_seconds,
        )
        started = time.perf_counter()
        target = ComputeTarget.create(ws, name, config)
        assert isinstance(target, AmlCompute)
        state: ClusterState | None = None
        try:
            try:
                target.wait_for_completion(
                    min_node_count=min_nodes or None, timeout_in_minutes=PROVISION_MINUTES
                )
            except ComputeTargetException as error:
                # On a loaded machine `ray start` sometimes gives up waiting for its own
                # raylet ("timed out during startup"); one more try, as a user would.
                print(f"the cluster did not come up, trying once more: {error}", flush=True)
                ComputeTarget.create(ws, name, config)
                target.wait_for_completion(
                    min_node_count=min_nodes or None, timeout_in_minutes=PROVISION_MINUTES
                )
            state = ClusterState.load(cluster_folder(ws.folder, name))
            assert state is not None, f"cluster {name!r} is up but has no cluster.json"
            print(
                f"cluster {name!r} up with {min_nodes} node(s) of {VM_SIZE} in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
            yield Cluster(ws, target, state, Path(tmp))
        finally:
            disconnect_ray()
            target.delete()
            leave_nothing_behind(name, state, Path(tmp))


def leave_nothing_behind(name: str, state: ClusterState | None, folder: Path) -> None:
    """Check that the deleted cluster left no process behind."""
    if state is not None:
        left = session_processes(state.session_id)
        if left:
            raise SystemExit(f"cluster {name!r} left processes behind after delete(): {left}")


def connect_ray(cluster: Cluster) -> ModuleType:
    """This process as a driver of the cluster's Ray; returns the ``ray`` module.

    Ray reads its token settings (``RAY_AUTH_MODE``, ``RAY_AUTH_TOKEN_PATH``) once, when it is
    imported, and the token exists only once modelyard has made the cluster: so Ray is
    imported here, after the variables are set, and nowhere at the top of a benchmark.
    """
    os.environ.update(client_environment(cluster.state.token_file))
    import ray

    if not ray.is_initialized():
        ray.init(address=cluster.state.address, logging_level="error", log_to_driver=False)
    return ray


def disconnect_ray() -> None:
    """Close this process's Ray connection, if it has one (before the cluster goes away)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def group_latency(ray: ModuleType, name: str) -> float | None:
    """Ray's own figure for placement group ``name`` (any job's, even removed): from its
    creation request to its bundles reserved, in seconds; None when Ray has no such group."""
    from ray.util.placement_group import placement_group_table

    for group in placement_group_table().values():
        if group.get("name") == name:
            return float(group["stats"]["end_to_end_creation_latency_ms"]) / 1000
    return None


def run_group_latency(ray: ModuleType, run_id: str) -> float | None:
    """``group_latency`` of the placement group the admission made for run ``run_id`` (it
    names each after its run: compute/ray/admission.py)."""
    return group_latency(ray, f"modelyard-{run_id}")


class Phases:
    """When a run was first seen in each status, in seconds from ``started`` (a
    ``time.perf_counter()``): where modelyard's time goes, polled by the benchmark."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.seen: dict[str, float] = {}

    def note(self, status: str) -> None:
        self.seen.setdefault(status, time.perf_counter() - self.started)

    def __str__(self) -> str:
        return ", ".join(f"{status} {at:.2f}" for status, at in self.seen.items())

    @staticmethod
    def medians(all_phases: list[Phases]) -> str:
        """Each status's median first-seen time over the runs that showed it, in order."""
        statuses = {status for phases in all_phases for status in phases.seen}
        typical = {
            status: median([p.seen[status] for p in all_phases if status in p.seen])
            for status in statuses
        }
        return ", ".join(
            f"{status} {at:.2f}" for status, at in sorted(typical.items(), key=lambda x: x[1])
        )


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value at or above ``share`` of them."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def median(values: list[float]) -> float:
    return statistics.median(values)


def seconds(values: list[float]) -> str:
    """Each of ``values``, in seconds, for a line of the figures."""
    return ", ".join(f"{value:.2f}" for value in values)
