"""A node's host on a Ray cluster: the Ray actor, one per node, that runs the runs' supervisors
there and reports how each run's part on the node ended.

The admission (``admission.py``) starts a host on each node as soon as the node joins the
cluster, so a run placed there starts at once: no Ray worker to start and no interpreter to
import modelyard into on the run's path. For each run it asks the hosts of the nodes its
placement group got where they are (:meth:`NodeHost.where`: the node's address and free ports,
from which it lays the run out over the nodes), has each run its part (:meth:`NodeHost.run`,
which blocks until the part ends: the node's supervisor runs in this process, in a thread of
its own) and, when another node failed or was lost, stops the rest (:meth:`NodeHost.stop`).
For MPI, mpirun's remote shell starts its daemon on the node through :meth:`NodeHost.execute`.

Each node works in a folder of its own: ``<nodes root>/<cluster>-<node id>``, private to the
account (the runs' folders, the environments it built). The processes a supervisor starts die
with the supervisor's thread (``processes.die_with_parent``): when Ray kills the host (its node
lost, the cluster deleted), nothing of the run goes on unsupervised.

Example (what the admission does, through Ray)::

    host = ray.remote(NodeHost).options(scheduling_strategy=...).remote("gpu", None)
    ray.get(host.where.remote(3))   # {'node_id': 'ff…01', 'address': '10.0.0.5', 'ports': [...]}
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import ray

from modelyard.backend.base import Backend
from modelyard.backend.records import FAILED
from modelyard.backend.workspace_folder import WorkspaceFile
from modelyard.runner.cluster_node import ServedWorkspace, open_node_backend, supervisor_for
from modelyard.runner.launchers import reserve_ports
from modelyard.runner.local_compute import user_temp_folder
from modelyard.runner.processes import die_with_parent
from modelyard.runner.run_environment import run_process_environment
from modelyard.store.private import make_private_folder, write_private_file

RESULT_FILE = "result.json"
EXECUTE_TAIL_BYTES = 4000


def node_folder(nodes_root: str | None, cluster: str, node_id: str) -> Path:
    """Where node ``node_id`` of ``cluster`` works (see the module docstring)."""
    root = Path(nodes_root) if nodes_root else user_temp_folder() / "nodes"
    return root / f"{cluster}-{node_id[-12:]}"


class _Supervisor(Protocol):
    """What a host does with a node's supervisor (``cluster_node.supervisor_for``)."""

    def run(self) -> int: ...

    def note_signal(self, signum: int, frame: FrameType | None) -> None: ...


@dataclass
class _Part:
    """One run's part on this node."""

    supervisor: _Supervisor | None = None
    executed: list[subprocess.Popen[bytes]] = field(default_factory=list)  # MPI daemons
    stops: int = 0
    outcome: dict[str, Any] | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    rsh_file: Path | None = None


class NodeHost:
    """See the module docstring (a Ray actor with max_concurrency above the runs a node holds
    at once: stop() and execute() come while run() blocks)."""

    def __init__(self, cluster: str, nodes_root: str | None) -> None:
        self.node_id: str = ray.get_runtime_context().get_node_id()
        self.address: str = ray.util.get_node_ip_address()
        self.cluster = cluster
        self.dir = node_folder(nodes_root, cluster, self.node_id)
        self.parts: dict[str, _Part] = {}
        self.backends: dict[str, Backend] = {}  # by workspace id: opened once per node
        self.lock = threading.Lock()

    def where(self, port_count: int) -> dict[str, Any]:
        """This node's id and address, and ``port_count`` ports free on it now."""
        ports = reserve_ports(port_count)
        return {"node_id": self.node_id, "address": self.address, "ports": ports}

    def run(self, run_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """Run this node's part of run ``run_id``; returns its outcome: ``status`` and
        ``error`` as the node's supervisor recorded them, with ``node_id`` and ``address``.
        Once only: a caller that lost the reply (Ray's RPC to the host broke for a moment)
        asks :meth:`result` for it."""
        part = self._part(run_id)
        try:
            part.outcome = self._run(run_id, part, request)
        except Exception as error:
            part.outcome = self._outcome(
                part, FAILED, {"message": f"the run's host on node {self.node_id} failed: {error}"}
            )
        finally:
            part.finished.set()
            if part.rsh_file is not None:
                part.rsh_file.unlink(missing_ok=True)
        return part.outcome

    def result(self, run_id: str) -> dict[str, Any]:
        """The outcome of :meth:`run` for ``run_id``, once it has returned (blocks until then)."""
        part = self._part(run_id)
        part.finished.wait()
        assert part.outcome is not None
        return part.outcome

    def forget(self, run_id: str) -> None:
        """The run has ended: drop what this host kept of it."""
        with self.lock:
            self.parts.pop(run_id, None)

    def stop(self, run_id: str) -> None:
        """Ask this node's supervisor of the run to stop its part (the first call: cleanly, as
        SIGTERM does; a second: at once), and stop the MPI daemons it runs."""
        part = self._part(run_id)
        with self.lock:
            part.stops += 1
            if part.supervisor is not None:
                part.supervisor.note_signal(signal.SIGTERM, None)
            for process in part.executed:
                if process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGTERM)

    def execute(self, run_id: str, command: str) -> tuple[int, str]:
        """Run an MPI daemon's command line on this node, as ssh would run it (a shell),
        with the run's reduced environment; returns its exit code and the tail of its
        output once it ends (``rsh.py`` waits for it, as mpirun waits for ssh)."""
        part = self._part(run_id)
        with self.lock:
            if part.stops:
                return 255, "the run's part on this node was stopped\n"
            process = subprocess.Popen(
                ["/bin/sh", "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                env=run_process_environment(os.environ, {}),
                process_group=0,
                preexec_fn=die_with_parent,
            )
            part.executed.append(process)
        output, _ = process.communicate()
        return process.returncode, output[-EXECUTE_TAIL_BYTES:].decode(errors="replace")

    # -- inside ----------------------------------------------------------------------------

    def _part(self, run_id: str) -> _Part:
        with self.lock:
            return self.parts.setdefault(run_id, _Part())

    def _run(self, run_id: str, part: _Part, request: dict[str, Any]) -> dict[str, Any]:
        make_private_folder(self.dir)
        run_dir = self.dir / "runs" / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        result_file = run_dir / RESULT_FILE
        result_file.unlink(missing_ok=True)
        rsh_agent = None
        if request.get("rsh") is not None:
            # MPI across nodes: mpirun's remote shell reads the cluster's address here (rsh.py);
            # its words may hold no space or colon, so the address cannot be one of them.
            part.rsh_file = user_temp_folder() / f"rsh-{run_id}-{self.node_id[-12:]}.json"
            write_private_file(part.rsh_file, json.dumps(request["rsh"]).encode())
            rsh_agent = [sys.executable, "-m", "modelyard.compute.ray.rsh", str(part.rsh_file)]
        backend = self._backend(request)
        with self.lock:
            if part.stops:
                return self._outcome(part, FAILED, {"message": "stopped before it started"})
            part.supervisor = supervisor_for(
                backend, run_id, self.dir, request["layout"], result_file, rsh_agent
            )
        part.supervisor.run()
        try:
            written = json.loads(result_file.read_text())
        except (OSError, ValueError):
            return self._outcome(
                part,
                FAILED,
                {
                    "message": f"the run's supervisor on node {self.node_id} ({self.address}) "
                    "ended without recording how its part ended; see its "
                    "system_logs/supervisor.txt"
                },
            )
        return self._outcome(part, written["status"], written.get("error"))

    def _backend(self, request: dict[str, Any]) -> Backend:
        """The backend of the run's workspace: one for this run alone when the workspace is
        a server's (it holds the run's token), else the workspace's, opened once per node."""
        location = Path(request["location"])
        described = request["workspace"]
        if "token" in described:
            return open_node_backend(location, ServedWorkspace.model_validate(described), self.dir)
        info = WorkspaceFile.model_validate(described)
        if info.id not in self.backends:
            self.backends[info.id] = open_node_backend(location, info, self.dir)
        return self.backends[info.id]

    def _outcome(self, part: _Part, status: str, error: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "status": status,
            "error": error,
            "node_id": self.node_id,
            "address": self.address,
            "stopped": part.stops > 0,
        }
