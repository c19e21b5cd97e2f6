"""The admission of a cluster compute target's runs: one Ray actor per cluster, on its head.

Ray has no job queue (mass submission overloads its control service), so modelyard admits
runs itself. The admission actor looks at the workspace's queue for its compute target every
``POLL_INTERVAL_S`` and, first in, first out:

1. **claims** the oldest Queued run into Provisioning (``claim_run``: exactly one claimer);
   the actor holds the run's lease from then on and renews it until the run ends, so a run
   outlives any one node, and a dead cluster's runs are failed by whoever finds the lease
   expired;
2. asks Ray for the run's nodes: a **placement group** with one bundle per node (the compute's
   VM size in CPUs and GPUs), spread over distinct nodes. Ray's autoscaler scales the cluster
   to hold it; meanwhile the run stays Provisioning, and the runs behind it stay Queued (no run
   overtakes another). A run is admitted only once the one before it has its nodes;
3. once the nodes are there, places a :class:`~modelyard.compute.ray.node.NodeHost` in each
   bundle, asks each where it is, lays the run out over the nodes (``launchers.NodeLayout``:
   addresses and ports) and has every host run its part;
4. **watches** the parts: when one fails, or its node is lost (Ray reports the host dead), the
   others are stopped and the run fails naming the node; when every part has ended well, the
   first node's outcome is the run's (Completed, or what the script chose). Then the placement
   group is removed, and the autoscaler takes idle nodes away after the idle time.

A cancel request is seen by every node's supervisor (it stops its processes); a run canceled
while Queued or Provisioning is ended here, its placement group removed.

A server's cluster (``served``), on the server's machine or attached on another, gets no
``workspace.json`` (whose database URL and storage keys neither it nor any node gets): the
admission makes its calls through the server with its compute target's token, and hands
each run's nodes the run's own token, which it asks the server for (``run_access.py``).

What it does goes to the actor's log (Ray's ``logs/worker-*.out`` on the head) and, per run, to
the run's ``system_logs/admission.txt``.

Example (what provisioning does once the cluster is up)::

    actor = start_admission(location, workspace_file, "gpucluster", {"CPU": 6, "GPU": 1})
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.autoscaler.v2.sdk import get_cluster_status
from ray.util.placement_group import (
    PlacementGroup,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from modelyard.backend.base import Backend
from modelyard.backend.records import (
    CANCEL_REQUESTED,
    CANCELED,
    COMPLETED,
    FAILED,
    PROVISIONING,
    QUEUED,
    TERMINAL_STATES,
)
from modelyard.backend.remote.backend import RemoteBackend
from modelyard.backend.workspace_folder import WorkspaceFile
from modelyard.compute.ray.actor_names import NAMESPACE, admission_name, host_name
from modelyard.compute.ray.node import NodeHost
from modelyard.compute.ray.run_access import ClusterAccess, fetch_run_access
from modelyard.compute.ray.targets import ADMISSION_LOG, DELETED_STATE, DELETING_STATE
from modelyard.errors import ConflictError, ModelyardError, NotFoundError
from modelyard.runner.cluster_node import open_node_backend
from modelyard.runner.job import JOB_FILE, MPI, JobSpec
from modelyard.runner.launchers import NodeLayout
from modelyard.runner.local_compute import COMPUTE_PROPERTY, user_temp_folder
from modelyard.store.private import make_private_folder

POLL_INTERVAL_S = 0.2
LEASE_SECONDS = 30.0
RENEW_INTERVAL_S = 5.0
SWEEP_INTERVAL_S = 2.0
HOST_START_TIMEOUT_S = 120.0
# How long a node's host stays after its last run (a node with a host is never idle to Ray,
# so the node goes this much later than the compute's idle_seconds_before_scaledown).
HOST_LINGER_S = 10.0
NODES_INTERVAL_S = 1.0
# How long a host whose replies Ray loses may stay unreachable before its node counts as lost
# (Ray's own health check declares a dead node within about this).
UNAVAILABLE_GRACE_S = 30.0
DELETE_GRACE_S = 30.0
HEAD_RESOURCE = "node:__internal_head__"
# How long a served run waits for the server to give its access (a server restarting, say).
ACCESS_WAIT_S = 60.0


@dataclass
class _Admitted:
    """A run the admission holds: waiting for its nodes, or running on them."""

    run_id: str
    spec: JobSpec
    group: PlacementGroup
    log_offset: int = 0
    hosts: list[Any] = field(default_factory=list)  # by node rank
    node_ids: list[str] = field(default_factory=list)
    where: list[dict[str, Any]] = field(default_factory=list)
    pending: dict[Any, int] = field(default_factory=dict)  # ObjectRef of run() -> node rank
    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    failure: dict[str, Any] | None = None
    # Since when each host's replies have been lost (ActorUnavailableError), by node rank.
    unavailable_since: dict[int, float] = field(default_factory=dict)
    claimed_at: float = field(default_factory=time.monotonic)

    @property
    def running(self) -> bool:
        return bool(self.hosts)


class Admission:
    """See the module docstring (a Ray actor: ``ray.remote(Admission)``)."""

    def __init__(
        self,
        location: str,
        workspace: dict[str, Any],
        compute_name: str,
        bundle: dict[str, float],
        nodes_root: str | None,
        warm_hosts: int = 0,
        served: bool = False,
    ) -> None:
        # A server's cluster: the server's URL and the compute target's token (ClusterAccess).
        self.access = ClusterAccess.model_validate(workspace) if served else None
        self.workspace_id = _workspace_id(workspace, served)
        self.served = served
        # How many idle nodes keep their host (the cluster's min_nodes: those stay anyway).
        self.warm_hosts = warm_hosts
        self.location = location
        self.workspace = workspace
        self.compute_name = compute_name
        self.bundle = bundle
        self.nodes_root = nodes_root
        # Where a PostgreSQL + S3 workspace's backend keeps what it keeps in a folder.
        self.own = user_temp_folder() / "admission" / f"{self.workspace_id}-{compute_name}"
        make_private_folder(self.own)
        self.backend: Backend = (
            self.access.backend()
            if self.access is not None
            else open_node_backend(
                Path(location), WorkspaceFile.model_validate(workspace), self.own
            )
        )
        self.worker_id = f"{compute_name}-admission-{uuid.uuid4().hex[:12]}"
        self.runs: dict[str, _Admitted] = {}
        self.hosts: dict[str, Any] = {}  # a NodeHost on each node, by node id
        self.host_used: dict[str, float] = {}  # when each host last had a run (monotonic)
        self.seen_nodes: set[str] = set()
        self.killed: set[str] = set()  # nodes whose host this admission killed (keep_hosts)
        self.next_renew = self.next_sweep = self.next_nodes = 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="admission", daemon=True)
        self.thread.start()

    # -- what clients call ---------------------------------------------------------------

    def ping(self) -> str:
        """This admission's lease holder name (a client's check that it is up)."""
        return self.worker_id

    def held_runs(self) -> list[str]:
        """The runs this admission holds now."""
        return list(self.runs)

    def stop_runs(self, grace_s: float = DELETE_GRACE_S) -> None:
        """Stop the runs this admission holds (each node's supervisor stops its processes
        and reports), record them Failed, and return once they have ended or ``grace_s``
        passed."""
        for run in list(self.runs.values()):
            if run.failure is None:
                run.failure = {
                    "status": FAILED,
                    "error": {"message": f"the compute target {self.compute_name!r} was deleted"},
                }
            for host in run.hosts:
                host.stop.remote(run.run_id)
        deadline = time.monotonic() + grace_s
        while any(run.pending for run in self.runs.values()) and time.monotonic() < deadline:
            for run in list(self.runs.values()):
                if run.running:
                    self.watch(run)
            time.sleep(POLL_INTERVAL_S)
        for run in list(self.runs.values()):
            self._conclude(run)

    def delete(self) -> None:
        """The compute target is being deleted: stop its runs, record Deleted, and end this
        actor for good (no restart)."""
        print(f"{self.compute_name!r} is being deleted: stopping its runs", flush=True)
        self.done.set()
        self.stop_runs()
        with contextlib.suppress(ModelyardError):
            self.backend.update_compute(self.compute_name, state=DELETED_STATE)
        shutil.rmtree(self.own, ignore_errors=True)
        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)

    def record_nodes(self) -> None:
        """Record the cluster's node counts with the compute target (what get_status
        shows), and notice a deletion."""
        try:
            record = self.backend.get_compute(self.compute_name)
        except NotFoundError:
            self.delete()  # deleted while this actor was away: nothing is left to admit
            return
        if record.state == DELETING_STATE:
            self.delete()
            return
        status = get_cluster_status(ray.get_runtime_context().gcs_address, timeout=10)
        idle = _workers(status.idle_nodes)
        running = _workers(status.active_nodes)
        preparing = sum(launch.count for launch in status.pending_launches)
        preparing += _workers(status.pending_nodes)
        nodes = {
            "current": idle + running,
            "target": idle + running + preparing,
            "idle": idle,
            "running": running,
            "preparing": preparing,
        }
        if nodes != record.nodes:
            self.backend.update_compute(self.compute_name, nodes=nodes)

    # -- the loop ------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self.done.wait(POLL_INTERVAL_S):
            with contextlib.suppress(Exception):
                if time.monotonic() >= self.next_nodes:
                    self.next_nodes = time.monotonic() + NODES_INTERVAL_S
                    self.record_nodes()
            if self.done.is_set():
                return
            try:
                self.step()
            except Exception:
                print(f"admission step failed:\n{traceback.format_exc()}", flush=True)

    def step(self) -> None:
        now = time.monotonic()
        if now >= self.next_sweep:
            with contextlib.suppress(ModelyardError):
                self.backend.expire_leases()
            self.next_sweep = now + SWEEP_INTERVAL_S
        if now >= self.next_renew:
            self.renew()
            self.next_renew = now + RENEW_INTERVAL_S
        self.keep_hosts()
        self.cancel_queued()
        self.admit()
        for run in list(self.runs.values()):
            if run.running:
                self.watch(run)
            else:
                self.provision(run)

    def say(self, run: _Admitted, message: str) -> None:
        now = time.time()
        stamp = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}"
        )
        line = f"{stamp}Z {message}\n".encode()
        print(f"{run.run_id}: {message}", flush=True)
        with contextlib.suppress(ModelyardError):
            self.backend.append_run_file(run.run_id, ADMISSION_LOG, run.log_offset, line)
            run.log_offset += len(line)

    def renew(self) -> None:
        for run in list(self.runs.values()):
            try:
                status = self.backend.renew_lease(run.run_id, self.worker_id, LEASE_SECONDS)
            except ConflictError as taken:
                print(f"{run.run_id}: lease lost: {taken}", flush=True)
                self._drop(run)
                continue
            except ModelyardError:
                continue  # the database is away: the lease outlasts several missed renewals
            if status == CANCEL_REQUESTED and not run.running:
                self.say(run, "canceled while waiting for its nodes")
                self._end(run, CANCELED, {"message": "canceled by the user"})
            elif status in TERMINAL_STATES and not run.running:
                self._drop(run)

    # -- the nodes' hosts ----------------------------------------------------------------

    def host_name(self, node_id: str) -> str:
        return host_name(self.workspace_id, self.compute_name, node_id)

    def host_for(self, node_id: str) -> Any:
        """The host on node ``node_id``, started when there is none yet."""
        if node_id not in self.hosts:
            self._name_released(node_id)
            self.host_used[node_id] = time.monotonic()
            self.hosts[node_id] = (
                ray.remote(NodeHost)
                .options(
                    name=self.host_name(node_id),
                    namespace=NAMESPACE,
                    get_if_exists=True,
                    num_cpus=0,
                    max_concurrency=16,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
                )
                .remote(self.compute_name, self.nodes_root)
            )
        return self.hosts[node_id]

    def keep_hosts(self) -> None:
        """A host on every node as soon as it joins (a run placed there then starts at
        once: a scale-up brings the host up with the node), none for a node that left, and
        none left on a node without runs for HOST_LINGER_S beyond the ``warm_hosts`` most
        recently used: Ray counts a node with an actor on it as busy, and would never take
        it away when idle."""
        alive = {
            node["NodeID"]
            for node in ray.nodes()
            if node["Alive"] and node.get("Resources", {}).get("CPU", 0) > 0
        }
        for node_id in alive - self.seen_nodes:
            self.seen_nodes.add(node_id)
            self.host_for(node_id)
        now = time.monotonic()
        for run in self.runs.values():
            for node_id in run.node_ids:
                self.host_used[node_id] = now
        for node_id in set(self.hosts) - alive:
            del self.hosts[node_id]
            self.host_used.pop(node_id, None)
        if any(not run.running for run in self.runs.values()):
            return  # a run waits for nodes: it may get one of these, host and all
        by_use = sorted(self.hosts, key=lambda node_id: self.host_used[node_id], reverse=True)
        for node_id in by_use[self.warm_hosts :]:
            if now - self.host_used[node_id] > HOST_LINGER_S:
                with contextlib.suppress(Exception):
                    ray.kill(self.hosts.pop(node_id))
                self.host_used.pop(node_id, None)
                self.killed.add(node_id)

    def _name_released(self, node_id: str) -> None:
        """Wait until the host this admission killed on ``node_id`` is gone: ray.kill returns
        before the actor has died, and meanwhile its name still finds it, so a new host of
        that name (get_if_exists) would be the dying one, and a run given it would fail with
        "the actor died unexpectedly"."""
        if node_id not in self.killed:
            return
        deadline = time.monotonic() + HOST_START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                ray.get_actor(self.host_name(node_id), namespace=NAMESPACE)
            except ValueError:
                break  # no actor holds the name any more
            time.sleep(0.05)
        self.killed.discard(node_id)

    def cancel_queued(self) -> None:
        for record in self.backend.list_runs_in_states(
            [CANCEL_REQUESTED], properties={COMPUTE_PROPERTY: self.compute_name}
        ):
            if record.lease_holder is None:
                with contextlib.suppress(ModelyardError):
                    self.backend.update_run_status(
                        record.id, CANCELED, error={"message": "canceled while queued"}
                    )
            elif record.id in self.runs and not self.runs[record.id].running:
                run = self.runs[record.id]
                self.say(run, "canceled while waiting for its nodes")
                self._end(run, CANCELED, {"message": "canceled by the user"})

    def admit(self) -> None:
        """Claim the oldest queued run, unless a run claimed earlier still waits for nodes."""
        if any(not run.running for run in self.runs.values()):
            return
        queued = self.backend.list_runs_in_states(
            [QUEUED], properties={COMPUTE_PROPERTY: self.compute_name}
        )
        for record in queued:
            claimed = self.backend.claim_run(
                record.id, self.worker_id, LEASE_SECONDS, status=PROVISIONING
            )
            if claimed is None:
                continue  # canceled meanwhile
            with self.backend.open_run_file(record.id, JOB_FILE) as job:
                spec = JobSpec.from_json(job.read().decode())
            bundles = [dict(self.bundle) for _ in range(spec.node_count)]
            group = placement_group(
                bundles,
                strategy="STRICT_SPREAD" if spec.node_count > 1 else "PACK",
                name=f"modelyard-{record.id}",
            )
            run = self.runs[record.id] = _Admitted(record.id, spec, group)
            self.say(
                run,
                f"waiting for {spec.node_count} node(s) of {self.bundle} on {self.compute_name!r}",
            )
            return

    def provision(self, run: _Admitted) -> None:
        """Start the run's hosts once its placement group is ready."""
        # The group's state in Ray's control service, not pg.ready(): that one schedules a task
        # in the group, which waits for a new Ray worker process on the node (seconds).
        if placement_group_table(run.group).get("state") != "CREATED":
            return
        workspace = self._workspace_for(run)
        if workspace is None:
            return
        count = run.spec.node_count
        per_node = max(1, run.spec.process_count_per_node)
        # The node each bundle got, by rank; its host runs the run's part there.
        placed = placement_group_table(run.group)["bundles_to_node_id"]
        run.node_ids = [placed[rank] for rank in range(count)]
        run.hosts = [self.host_for(node_id) for node_id in run.node_ids]
        try:
            run.where = ray.get(
                [
                    host.where.remote(_ports_per_node(run.spec, count, per_node))
                    for host in run.hosts
                ],
                timeout=HOST_START_TIMEOUT_S,
            )
        except Exception as error:
            self.say(run, f"the run's hosts did not start: {error}")
            self._end(run, FAILED, {"message": f"the run's nodes did not start: {error}"})
            return
        nodes = ", ".join(f"{w['node_id'][-12:]} ({w['address']})" for w in run.where)
        self.say(run, f"running on {nodes}")
        for rank, host in enumerate(run.hosts):
            layout = NodeLayout(
                rank=rank,
                addresses=[w["address"] for w in run.where],
                ports=[w["ports"] for w in run.where],
                processes_per_node=per_node,
            )
            request = {
                "location": self.location,
                "workspace": workspace,
                "run_id": run.run_id,
                "layout": layout.to_dict(),
                "rsh": self._rsh(run) if _mpi(run.spec) and count > 1 else None,
            }
            run.pending[host.run.remote(run.run_id, request)] = rank

    def _workspace_for(self, run: _Admitted) -> dict[str, Any] | None:
        """What the run's nodes open its workspace with: the workspace's file, or for a
        served workspace the run's access, from the server (None while the server cannot
        give it; past ACCESS_WAIT_S the run fails)."""
        if self.access is None:
            return self.workspace
        assert isinstance(self.backend, RemoteBackend)
        try:
            return fetch_run_access(self.backend, self.compute_name, run.run_id).model_dump()
        except ModelyardError as error:
            refusal = error
        if time.monotonic() - run.claimed_at > ACCESS_WAIT_S:
            message = (
                f"the server gave no access for this run in {ACCESS_WAIT_S:.0f} s "
                f"({refusal}), so its nodes cannot reach the workspace; see the server's "
                "log, and submit the run again"
            )
            self.say(run, message)
            self._end(run, FAILED, {"message": message})
        return None

    def watch(self, run: _Admitted) -> None:
        if run.pending:
            ready, _ = ray.wait(list(run.pending), num_returns=len(run.pending), timeout=0)
            for ref in ready:
                rank = run.pending.pop(ref)
                outcome = self._result(run, rank, ref)
                if outcome is None:
                    # The reply was lost on the way, not the host: ask it again for it.
                    run.pending[run.hosts[rank].result.remote(run.run_id)] = rank
                    continue
                run.results[rank] = outcome
                if outcome["status"] != COMPLETED and run.failure is None:
                    run.failure = outcome
                    if run.pending:
                        self.say(run, f"stopping the other nodes: {_describe(outcome)}")
                        for other in run.pending.values():
                            run.hosts[other].stop.remote(run.run_id)
        if not run.pending:
            self._conclude(run)

    def _rsh(self, run: _Admitted) -> dict[str, Any]:
        """How mpirun's remote shell (rsh.py) reaches the run's hosts: this cluster's address
        and token, as this actor (a process of the cluster) has them."""
        return {
            "address": ray.get_runtime_context().gcs_address,
            "token_file": os.environ.get("RAY_AUTH_TOKEN_PATH"),
            "run_id": run.run_id,
            "hosts": [self.host_name(node_id) for node_id in run.node_ids],
        }

    def _result(self, run: _Admitted, rank: int, ref: Any) -> dict[str, Any] | None:
        """Node ``rank``'s outcome; None when Ray lost the reply but the host may live (its
        RPC broke for a moment: ``ActorUnavailableError``), for UNAVAILABLE_GRACE_S at most."""
        where = run.where[rank]
        try:
            outcome: dict[str, Any] = ray.get(ref)
            return outcome
        except ray.exceptions.ActorUnavailableError as error:
            first = run.unavailable_since.setdefault(rank, time.monotonic())
            if time.monotonic() - first < UNAVAILABLE_GRACE_S:
                print(f"{run.run_id}: node {rank}'s host is unavailable ({error}); asking again")
                return None
            return self._lost(where, error)
        except Exception as error:
            return self._lost(where, error)

    def _lost(self, where: dict[str, Any], error: Exception) -> dict[str, Any]:
        """The outcome of a host that died: its node was lost (Ray says so), or the host
        itself crashed."""
        # Ray's whole message: past its first line it says how the host's worker ended (its
        # exit type and detail, a signal), which is what tells a crash from a kill.
        text = " ".join(str(error).split())
        reason = text[:800] if text else type(error).__name__
        return {
            "status": FAILED,
            "error": {
                "message": f"node {where['node_id']} ({where['address']}) of the run was "
                f"lost: {reason}",
                "node": where["node_id"],
            },
            "node_id": where["node_id"],
            "address": where["address"],
            "lost": True,
        }

    def _conclude(self, run: _Admitted) -> None:
        error: dict[str, Any] | None
        if run.failure is not None:
            status, error = run.failure["status"], dict(run.failure.get("error") or {})
            if "node_id" in run.failure:
                error.setdefault("node", run.failure["node_id"])
            # Which node's reply comes first is chance: when a process dies, its peers on
            # other nodes fail too ("connection closed by peer"), and the cause may be in
            # another node's outcome. Name every node that failed.
            others = [
                f"node {rank}: {_describe(outcome)}"
                for rank, outcome in sorted(run.results.items())
                if outcome is not run.failure and outcome["status"] != COMPLETED
            ]
            if others and "message" in error:
                error["message"] += " (also " + "; ".join(others) + ")"
        else:
            first = run.results.get(0, {"status": FAILED, "error": {"message": "no outcome"}})
            status, error = first["status"], first.get("error")
        self._end(run, status, error)

    def _end(self, run: _Admitted, status: str, error: dict[str, Any] | None) -> None:
        self.say(run, f"status: {status}" + (f" ({error['message']})" if error else ""))
        with contextlib.suppress(ConflictError):
            self.backend.update_run_status(run.run_id, status, error=error)
        self._drop(run)

    def _drop(self, run: _Admitted) -> None:
        for host in run.hosts:
            with contextlib.suppress(Exception):
                host.forget.remote(run.run_id)
        with contextlib.suppress(Exception):
            remove_placement_group(run.group)
        self.runs.pop(run.run_id, None)


def _workspace_id(workspace: dict[str, Any], served: bool) -> str:
    """The id that names the cluster's actors: the workspace's (a ClusterAccess, served, holds
    it as ``workspace_id``)."""
    if served:
        return ClusterAccess.model_validate(workspace).workspace_id
    return WorkspaceFile.model_validate(workspace).id


def _workers(nodes: list[Any]) -> int:
    """How many of ``nodes`` (the autoscaler's) are worker nodes, not the head (which has
    Ray's head resource)."""
    return sum(1 for node in nodes if HEAD_RESOURCE not in node.total_resources())


def _mpi(spec: JobSpec) -> bool:
    return bool(spec.distributed) and (spec.distributed or {}).get("type") == MPI


def _ports_per_node(spec: JobSpec, count: int, per_node: int) -> int:
    """Ports each node offers for the run's layout: one per process and one for a master."""
    total = max(per_node * count, int((spec.distributed or {}).get("process_count", 1)))
    return math.ceil(total / count) + 1


def _describe(outcome: dict[str, Any]) -> str:
    error = outcome.get("error") or {}
    return str(error.get("message", outcome["status"]))


def start_admission(
    location: str,
    workspace: dict[str, Any],
    compute_name: str,
    bundle: dict[str, float],
    nodes_root: str | None,
    warm_hosts: int = 0,
    served: bool = False,
) -> Any:
    """Start the compute target's admission actor on the head (or find the running one),
    from a process connected to the cluster (``ray.init``); returns its handle."""
    head = next(
        node["NodeID"]
        for node in ray.nodes()
        if node["Alive"] and HEAD_RESOURCE in node.get("Resources", {})
    )
    actor = (
        ray.remote(Admission)
        .options(
            name=admission_name(_workspace_id(workspace, served), compute_name),
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            num_cpus=0,
            max_concurrency=4,
            max_restarts=-1,
            scheduling_strategy=NodeAffinitySchedulingStrategy(head, soft=True),
        )
        .remote(location, workspace, compute_name, bundle, nodes_root, warm_hosts, served)
    )
    ray.get(actor.ping.remote(), timeout=HOST_START_TIMEOUT_S)
    return actor
