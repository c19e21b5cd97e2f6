"""A run's host on one node of a Ray cluster: the Ray actor that starts the run's supervisor
for that node (``python -m modelyard.runner.cluster_node``) and reports how its part ended.

The admission (``admission.py``) places one host in each bundle of the run's placement group,
so each lands on its own node; it asks each where it is (:meth:`NodeHost.where`: the node's
address and free ports, from which it lays out the run across the nodes), then has each run its
part (:meth:`NodeHost.run`, which blocks until the part ends) and, when another node failed or
was lost, stops the rest (:meth:`NodeHost.stop`).

Each node works in a folder of its own: ``<nodes root>/<cluster>-<node id>``, private to the
account (the runs' folders, the environments it built). The supervisor dies with its host:
when Ray kills the host (its node lost, the cluster deleted) the supervisor gets SIGTERM and
stops the run's processes on this node.

Example (what the admission does, through Ray)::

    host = ray.remote(NodeHost).options(scheduling_strategy=...).remote("gpu", None, run_id)
    ray.get(host.where.remote(3))   # {'node_id': 'ff…01', 'address': '10.0.0.5', 'ports': [...]}
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import ray

from modelyard.backend.records import FAILED
from modelyard.runner.launchers import reserve_ports
from modelyard.runner.local_compute import user_temp_folder
from modelyard.runner.run_environment import run_process_environment
from modelyard.store.private import make_private_folder, write_private_file

NODE_LOG = "node.txt"
REQUEST_FILE = "request.json"
RESULT_FILE = "result.json"
RSH_FILE = "rsh.json"
EXECUTE_TAIL_BYTES = 4000
_PR_SET_PDEATHSIG = 1


def node_folder(nodes_root: str | None, cluster: str, node_id: str) -> Path:
    """Where node ``node_id`` of ``cluster`` works (see the module docstring)."""
    root = Path(nodes_root) if nodes_root else user_temp_folder() / "nodes"
    return root / f"{cluster}-{node_id[-12:]}"


def _die_with_parent() -> None:
    """In the supervisor's process, before it runs: SIGTERM when its host's thread ends
    (Linux; elsewhere the host's stop() is the only way)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class NodeHost:
    """See the module docstring (a Ray actor with max_concurrency >= 2: stop() comes while
    run() blocks)."""

    def __init__(self, cluster: str, nodes_root: str | None, run_id: str) -> None:
        self.node_id: str = ray.get_runtime_context().get_node_id()
        self.address: str = ray.util.get_node_ip_address()
        self.run_id = run_id
        self.dir = node_folder(nodes_root, cluster, self.node_id)
        self.run_dir = self.dir / "runs" / run_id
        self.process: subprocess.Popen[bytes] | None = None
        self.executed: list[subprocess.Popen[bytes]] = []  # MPI daemons (execute)
        self.stops = 0
        self.lock = threading.Lock()

    def where(self, port_count: int) -> dict[str, Any]:
        """This node's id and address, and ``port_count`` ports free on it now."""
        return {
            "node_id": self.node_id,
            "address": self.address,
            "ports": reserve_ports(port_count),
        }

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run this node's part of the run; returns its outcome: ``status`` and ``error`` as
        the node's supervisor wrote them, with ``node_id`` and ``address``."""
        make_private_folder(self.dir.parent)
        make_private_folder(self.dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        result_file = self.run_dir / RESULT_FILE
        result_file.unlink(missing_ok=True)
        request = {
            **request,
            "node_dir": str(self.dir),
            "result_file": str(result_file),
        }
        if request.get("rsh") is not None:
            # MPI across nodes: mpirun's remote shell reads the cluster's address here (rsh.py).
            rsh_file = user_temp_folder() / f"rsh-{self.run_id}.json"
            write_private_file(rsh_file, json.dumps(request["rsh"]).encode())
            request["rsh_agent"] = [
                sys.executable,
                "-m",
                "modelyard.compute.ray.rsh",
                str(rsh_file),
            ]
        request_file = self.run_dir / REQUEST_FILE
        write_private_file(request_file, json.dumps(request).encode())
        with self.lock:
            if self.stops:
                return self._outcome(FAILED, {"message": "stopped before it started"})
            with open(self.run_dir / NODE_LOG, "ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "modelyard.runner.cluster_node", str(request_file)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.dir,
                    process_group=0,
                    preexec_fn=_die_with_parent,
                )
        code = self.process.wait()
        try:
            written = json.loads(result_file.read_text())
        except (OSError, ValueError):
            tail = (self.run_dir / NODE_LOG).read_bytes()[-2000:].decode(errors="replace")
            return self._outcome(
                FAILED,
                {
                    "message": f"the run's supervisor on node {self.node_id} ({self.address}) "
                    f"exited with code {code} before it ended its part",
                    "stderr_tail": tail,
                },
            )
        return self._outcome(written["status"], written.get("error"))

    def execute(self, command: str) -> tuple[int, str]:
        """Run an MPI daemon's command line on this node, as ssh would run it (a shell),
        with the run's reduced environment; returns its exit code and the tail of its
        output once it ends (``rsh.py`` waits for it, as mpirun waits for ssh)."""
        with self.lock:
            if self.stops:
                return 255, "the run's part on this node was stopped\n"
            process = subprocess.Popen(
                ["/bin/sh", "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                env=run_process_environment(os.environ, {}),
                process_group=0,
                preexec_fn=_die_with_parent,
            )
            self.executed.append(process)
        output, _ = process.communicate()
        return process.returncode, output[-EXECUTE_TAIL_BYTES:].decode(errors="replace")

    def stop(self) -> None:
        """Ask this node's supervisor to stop its part (SIGTERM: cleanly; a second call:
        at once), and stop the MPI daemons it runs."""
        with self.lock:
            self.stops += 1
            for process in [self.process, *self.executed]:
                if process is not None and process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGTERM)

    def _outcome(self, status: str, error: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "status": status,
            "error": error,
            "node_id": self.node_id,
            "address": self.address,
            "stopped": self.stops > 0,
        }
