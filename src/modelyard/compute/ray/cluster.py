"""A Ray cluster on this machine (a compute target's ``provider="local"``), and how modelyard's
own processes reach any Ray cluster.

:func:`start_local_cluster` starts a Ray head in a session of its own, with Ray's autoscaler
and its fake multi-node provider (``provisioning.local_autoscaler_config``): the autoscaler
starts and stops worker nodes as local processes, each with the compute's VM size in CPUs and
GPUs, between ``min_nodes`` and ``max_nodes``. Everything Ray starts for the cluster stays in
that session, so :func:`stop_local_cluster` stops exactly this cluster's processes (``ray
stop`` would stop every Ray cluster of the machine, other workspaces' included).

Ray's token authentication stays on: each cluster gets a token of its own, in a file only its
owner may read, and modelyard's processes that talk to the cluster get it through
:func:`client_environment` (``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN_PATH``).

What the cluster's processes print goes to ``head.log`` in the cluster's folder; Ray's own logs
are in ``<temp dir>/session_latest/logs``.

Example::

    state = start_local_cluster(folder, autoscaler_config, ports)
    state.address                 # '127.0.0.1:41235'
    stop_local_cluster(state)     # nothing of the cluster runs any more
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from modelyard.errors import ConfigError
from modelyard.runner.launchers import free_ports
from modelyard.runner.local_compute import user_temp_folder
from modelyard.store.private import make_private_folder, write_private_file

STATE_FILE = "cluster.json"
TOKEN_FILE = "ray_token"
AUTOSCALER_FILE = "autoscaler.json"
HEAD_LOG = "head.log"
# The id the fake multi-node provider gives the head (its node ids are 56 hex digits).
FAKE_HEAD_NODE_ID = "f" * 51 + "00000"
START_TIMEOUT_S = 120.0
STOP_GRACE_S = 10.0
LOCAL_HOST = "127.0.0.1"


@dataclass(frozen=True)
class ClusterState:
    """What modelyard knows of a Ray cluster it started (``cluster.json`` in its folder)."""

    address: str  # the GCS, host:port: what ray.init(address=...) takes
    dashboard_url: str
    client_port: int  # Ray Client's server (ray://host:port)
    session_id: int  # the Unix session every process of the cluster is in
    temp_dir: str
    token_file: str

    def save(self, folder: Path) -> None:
        write_private_file(folder / STATE_FILE, json.dumps(asdict(self), indent=2).encode())

    @classmethod
    def load(cls, folder: Path) -> ClusterState | None:
        """The cluster started from ``folder``, or None when none was."""
        try:
            data = json.loads((folder / STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        return cls(**data)


def client_environment(token_file: str | None) -> dict[str, str]:
    """The variables a Ray client of a cluster with token authentication needs. Ray reads
    them once, when it is imported: a process gets them in its environment from its start."""
    if token_file is None:
        return {}
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": token_file}


def ray_executable() -> str:
    """The ``ray`` command installed beside this interpreter."""
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.exists() else shutil.which("ray")
    if found is None:
        raise ConfigError(
            "Ray is not installed: compute clusters need it; install modelyard's cluster "
            "extra (pip install 'modelyard[cluster]')"
        )
    return found


def start_local_cluster(folder: Path, autoscaler_config: dict[str, Any]) -> ClusterState:
    """Start a Ray head with the given autoscaler config; returns once it accepts clients.

    ``autoscaler_config``'s provider must name the GCS address this function picks: it
    fills in ``provider.gcs_address`` itself. Raises ConfigError with the head's log when Ray
    does not start.
    """
    make_private_folder(folder)
    token_file = folder / TOKEN_FILE
    if not token_file.exists():
        write_private_file(token_file, secrets.token_hex(32).encode())
    # Unix socket paths below Ray's temp dir must stay under ~100 bytes: a short folder.
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir=user_temp_folder()))
    gcs, dashboard, client, agent, agent_grpc, runtime_env, metrics = free_ports(7)
    address = f"{LOCAL_HOST}:{gcs}"
    config = json.loads(json.dumps(autoscaler_config))
    config["provider"]["gcs_address"] = address
    write_private_file(folder / AUTOSCALER_FILE, json.dumps(config, indent=2).encode())
    command = [
        ray_executable(),
        "start",
        "--head",
        f"--node-ip-address={LOCAL_HOST}",
        f"--port={gcs}",
        "--num-cpus=0",  # runs go to the worker nodes, which have the VM size's resources
        "--num-gpus=0",
        f"--autoscaling-config={folder / AUTOSCALER_FILE}",
        f"--temp-dir={temp_dir}",
        f"--dashboard-port={dashboard}",
        "--dashboard-host=127.0.0.1",
        f"--ray-client-server-port={client}",
        f"--dashboard-agent-listen-port={agent}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--runtime-env-agent-port={runtime_env}",
        f"--metrics-export-port={metrics}",
        "--disable-usage-stats",
    ]
    environment = {
        **os.environ,
        **client_environment(str(token_file)),
        # Ray's fake multi-node provider, with autoscaler v2, which matches the nodes it
        # starts by their instance id (v1 matches by IP, and every node here has the same).
        "RAY_FAKE_CLUSTER": "1",
        "RAY_enable_autoscaler_v2": "1",
        "RAY_CLOUD_INSTANCE_ID": FAKE_HEAD_NODE_ID,
        "RAY_OVERRIDE_NODE_ID_FOR_TESTING": FAKE_HEAD_NODE_ID,
        "AUTOSCALER_UPDATE_INTERVAL_S": "1",
        "RAY_gcs_create_placement_group_retry_max_interval_ms": "200",
        "RAY_USAGE_STATS_ENABLED": "0",
        # Every node of a local cluster shares this machine's memory with whatever else runs
        # on it. Ray's memory monitor, past 95 % of it, kills Ray workers, and the workers
        # here are the nodes' hosts: killing one stops its runs' processes (they die with
        # it). The kernel's OOM killer, which picks the process using the memory, stays.
        "RAY_memory_monitor_refresh_ms": "0",
    }
    with open(folder / HEAD_LOG, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=folder,
            # Its own session: what Ray starts stays in it, and nothing of the caller's
            # (a notebook's Ctrl-C, a test run's process group) reaches it.
            start_new_session=True,
        )
    state = ClusterState(
        address=address,
        dashboard_url=f"http://127.0.0.1:{dashboard}",
        client_port=client,
        session_id=process.pid,
        temp_dir=str(temp_dir),
        token_file=str(token_file),
    )
    state.save(folder)
    try:
        code = process.wait(timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        code = None
    if code != 0:
        stop_local_cluster(state)
        tail = (folder / HEAD_LOG).read_bytes()[-3000:].decode(errors="replace")
        raise ConfigError(
            "the Ray head did not start (ray start "
            + ("took too long" if code is None else f"exited with code {code}")
            + f"); its output ends with:\n{tail}"
        )
    return state


def session_processes(session_id: int) -> list[int]:
    """The processes of the Unix session ``session_id`` (this account's), by pid."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        # After the command's name: state, ppid, pgrp, session. Zombies are dead already.
        if int(fields[3]) == session_id and fields[0] != b"Z" and int(entry) != os.getpid():
            found.append(int(entry))
    return found


def cluster_running(state: ClusterState) -> bool:
    """Whether any process of the cluster's session is alive."""
    return bool(session_processes(state.session_id))


def stop_local_cluster(state: ClusterState, grace: float = STOP_GRACE_S) -> None:
    """Stop every process of the cluster (SIGTERM, then SIGKILL after ``grace``) and remove
    its temporary folder. Idempotent."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        pids = session_processes(state.session_id)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
        deadline = time.monotonic() + (grace if signum == signal.SIGTERM else 5.0)
        while session_processes(state.session_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not session_processes(state.session_id):
            break
    shutil.rmtree(state.temp_dir, ignore_errors=True)
