"""Scoring services on a cluster compute target, with Ray Serve: the SDK's side.

A service deployed with ``compute_target=`` (``AksWebservice`` or ``AciWebservice``
deployment configurations) is a Serve application on the cluster, named after the service,
at the route ``/<name>`` of Serve's proxy on the cluster's head. This module checks the
cluster can hold it, and runs each step in a process of its own
(``python -m modelyard.compute.ray.serve_control``, with the cluster's token in its
environment: Ray reads its authentication settings once, at import, so this process never
imports Ray).

Example::

    cluster = ServeCluster.find(ws.folder, ws._backend, "cpucluster")
    cluster.call("status", {"app": "svc"})      # {'application': {'status': 'RUNNING', ...}}
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from modelyard.backend.base import Backend
from modelyard.compute.ray.cluster import (
    LOCAL_HOST,
    ClusterState,
    client_environment,
    cluster_running,
)
from modelyard.compute.ray.provisioning import ProvisioningConfiguration, split_address
from modelyard.compute.ray.targets import (
    AML_COMPUTE,
    RAY_AUTH_NAMES,
    SUCCEEDED_STATE,
    cluster_folder,
)
from modelyard.errors import ConfigError
from modelyard.hosts import free_port
from modelyard.runner.checks import missing_packages
from modelyard.runner.run_environment import agent_environment
from modelyard.serving.settings import ServiceSettings

CONTROL_MODULE = "modelyard.compute.ray.serve_control"
# A step connects to the cluster (seconds); a deployment also packs and uploads the service's
# folder.
CONTROL_TIMEOUT_S = 300.0
# Serve's own default port, for an attached cluster (a cluster on this machine gets a free
# one, as a local service does).
ATTACHED_SERVE_PORT = 8000
# Ray refuses a working_dir package over 512 MiB (its GCS_STORAGE_MAX_SIZE); a little less
# leaves room for the package's own overhead.
MAX_FOLDER_BYTES = 500 * 1024 * 1024
DEFAULT_CPU_CORES = 0.1  # v1's default for ACI and AKS
DEFAULT_MEMORY_GB = 0.5


class ServeControlError(ConfigError):
    """A step on the cluster failed; its message has the step's output."""


@dataclass(frozen=True)
class ServeCluster:
    """A cluster compute target, as the services deployed onto it reach it."""

    name: str
    address: str
    host: str  # where Serve's proxy is reached from this machine
    local: bool  # provider "local": a cluster on this machine
    config: ProvisioningConfiguration
    environment: dict[str, str]

    @classmethod
    def find(cls, location: Path, backend: Backend, name: str) -> ServeCluster:
        """Compute target ``name`` of the workspace at ``location``; ConfigError when it is
        not there, not a cluster, not provisioned or (a cluster on this machine) not
        running."""
        record = backend.find_compute(name)
        if record is None:
            raise ConfigError(
                f"compute target {name!r} does not exist (it was deleted?): create it again "
                "with ComputeTarget.create, or deploy onto another one"
            )
        if record.compute_type != AML_COMPUTE:
            raise ConfigError(
                f"compute target {name!r} is a {record.compute_type}, not a Ray cluster "
                "(AmlCompute): deploy onto an AmlCompute cluster"
            )
        if record.state != SUCCEEDED_STATE or record.address is None:
            raise ConfigError(
                f"compute target {name!r} is {record.state}, not Succeeded: wait for it "
                "(compute_target.wait_for_completion()) before deploying onto it"
            )
        config = ProvisioningConfiguration.from_dict(record.provisioning)
        environment = agent_environment(os.environ)
        if config.address is None:
            state = ClusterState.load(cluster_folder(location, name))
            if state is None or not cluster_running(state):
                raise ConfigError(
                    f"the Ray cluster of compute target {name!r} does not run (the machine "
                    "restarted?): a run submitted to it starts it again"
                )
            environment.update(client_environment(state.token_file))
            host = LOCAL_HOST
        else:
            environment.update(
                {key: os.environ[key] for key in RAY_AUTH_NAMES if key in os.environ}
            )
            host = split_address(config.address)[0]
        return cls(name, record.address, host, config.address is None, config, environment)

    def call(
        self,
        command: str,
        request: dict[str, Any],
        on_line: Callable[[dict[str, Any]], None] | None = None,
        timeout: float = CONTROL_TIMEOUT_S,
    ) -> dict[str, Any]:
        """Run ``command`` of ``serve_control`` on the cluster; its result. ``on_line`` gets
        each line it writes before its result. ServeControlError with its output when it
        fails."""
        # Ray may write much to stderr: a file, so that it never blocks the step while this
        # reads its stdout.
        with tempfile.TemporaryFile("w+") as errors:
            process = subprocess.Popen(
                [sys.executable, "-m", CONTROL_MODULE, command],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=self.environment,
                text=True,
            )
            timer = threading.Timer(timeout, process.kill)
            timer.start()
            try:
                result = _read(process, json.dumps({"address": self.address, **request}), on_line)
            finally:
                timer.cancel()
            errors.seek(0)
            output = errors.read()
        if process.returncode != 0 or result is None:
            ended = (
                f"took over {timeout:.0f} s"
                if process.returncode == -signal.SIGKILL
                else f"failed (exit code {process.returncode})"
            )
            raise ServeControlError(
                f"Ray Serve's {command} on compute target {self.name!r} ({self.address}) "
                f"{ended}; its output ends with:\n{output[-3000:]}"
            )
        return result

    def check_fits(self, cpu_cores: float, memory_gb: float, replicas: int) -> None:
        """ConfigError when a cluster on this machine cannot hold ``replicas`` replicas of
        this size, even at ``max_nodes`` nodes (an attached cluster's own Ray says so in the
        service's state)."""
        if not self.local:
            return
        vm = self.config.vm()
        where = f"a node of compute target {self.name!r} ({self.config.vm_size})"
        if cpu_cores > vm.cores:
            raise ConfigError(
                f"cpu_cores={cpu_cores}, but {where} has {vm.cores} cores: ask for at most "
                f"{vm.cores}, or deploy onto a cluster with bigger nodes"
            )
        if memory_gb > vm.memory_gb:
            raise ConfigError(
                f"memory_gb={memory_gb}, but {where} has {vm.memory_gb} GB: ask for at most "
                f"{vm.memory_gb}, or deploy onto a cluster with bigger nodes"
            )
        per_node = min(
            math.floor(vm.cores / cpu_cores) if cpu_cores else replicas,
            math.floor(vm.memory_gb / memory_gb) if memory_gb else replicas,
        )
        capacity = per_node * self.config.max_nodes
        if replicas > capacity:
            raise ConfigError(
                f"{replicas} replicas of {cpu_cores} cores and {memory_gb} GB do not fit on "
                f"compute target {self.name!r}: {self.config.max_nodes} nodes of "
                f"{vm.cores} cores and {vm.memory_gb} GB hold {capacity}; ask for fewer or "
                "smaller replicas"
            )

    def actor_options(self, cpu_cores: float, memory_gb: float) -> dict[str, Any]:
        """Each replica's Ray resources. A cluster on this machine is asked for CPUs only:
        its nodes (Ray's fake multi-node provider) declare no memory, so Ray's autoscaler
        could never start a node for a replica asking for some (its size was checked by
        :meth:`check_fits`)."""
        options: dict[str, Any] = {"num_cpus": cpu_cores}
        if not self.local:
            options["memory"] = int(memory_gb * 1024**3)
        return options


def _read(
    process: subprocess.Popen[str],
    request: str,
    on_line: Callable[[dict[str, Any]], None] | None,
) -> dict[str, Any] | None:
    """Send ``request``, pass the step's lines to ``on_line`` as they come; its result."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(request)
    process.stdin.close()
    result = None
    for line in process.stdout:
        try:
            said = json.loads(line)
        except ValueError:
            continue  # Ray's own output
        if isinstance(said, dict) and "result" in said:
            result = said["result"]
        elif isinstance(said, dict) and on_line is not None:
            on_line(said)
    process.wait()
    return result


def folder_size(folders: list[Path]) -> int:
    return sum(
        path.stat().st_size for folder in folders for path in folder.rglob("*") if path.is_file()
    )


def check_folder_size(folders: list[Path]) -> None:
    """ConfigError when the service's files are more than Ray carries to its nodes."""
    size = folder_size(folders)
    if size > MAX_FOLDER_BYTES:
        raise ConfigError(
            f"the service's models and source folder are {size / 1024**2:.0f} MiB; Ray "
            f"carries at most {MAX_FOLDER_BYTES // 1024**2} MiB to a cluster's nodes: make "
            "the source folder smaller, or serve the model on this machine (no compute_target)"
        )


def check_cluster_environment(
    cluster: str,
    pip_packages: list[str],
    conda_packages: list[str],
    python_version: str | None,
    python_path: str | None,
) -> None:
    """ConfigError unless an environment of these packages is modelyard's own Python: a
    cluster's replicas run in the cluster's Python, which builds no environment."""
    missing = missing_packages(pip_packages)
    asks = [
        *(["conda packages " + ", ".join(conda_packages)] if conda_packages else []),
        *([f"python_version {python_version}"] if python_version else []),
        *([f"python_path {python_path}"] if python_path else []),
        *(["pip packages " + ", ".join(missing)] if missing else []),
    ]
    if asks:
        raise ConfigError(
            f"the environment asks for {'; '.join(asks)}: the replicas on compute target "
            f"{cluster!r} run in the cluster's Python, which builds no environment; install "
            "them there (and here), or serve the model on this machine (no compute_target)"
        )


def replicas_of(config: dict[str, Any]) -> int:
    """How many replicas a service's recorded configuration starts with."""
    return int(
        config["autoscale_min_replicas"] if config["autoscale_enabled"] else config["num_replicas"]
    )


def check_cluster_fits(cluster: ServeCluster, config: dict[str, Any]) -> tuple[float, float]:
    """ConfigError when the cluster cannot hold the recorded configuration's replicas; the
    size of one (cores, GB)."""
    cpu_cores = config["cpu_cores"] or DEFAULT_CPU_CORES
    memory_gb = config["memory_gb"] or DEFAULT_MEMORY_GB
    cluster.check_fits(cpu_cores, memory_gb, replicas_of(config))
    return cpu_cores, memory_gb


def deploy_request(
    cluster: ServeCluster, name: str, folder: Path, record: dict[str, Any], keys: list[str]
) -> dict[str, Any]:
    """``serve_control deploy``'s request for service ``name`` of ``record`` (its
    ``services/<name>.json``), whose files are in ``folder``; ConfigError when the cluster
    cannot hold it."""
    config = record["config"]
    cpu_cores, memory_gb = check_cluster_fits(cluster, config)
    check_folder_size([folder / "source", folder / "models"])
    models = record["models"]
    settings = ServiceSettings(
        entry_script=f"source/{record['entry_script']}",
        source_directory="source",
        model_dir="models/" + models[0].replace(":", "/") if len(models) == 1 else "models",
        host=cluster.host,
        port=0,  # Serve's proxy listens; the replica does not
        max_request_bytes=int(config["max_request_bytes"]),
    )
    concurrent = int(config["replica_max_concurrent_requests"])
    autoscaling = {
        "min_replicas": config["autoscale_min_replicas"],
        "initial_replicas": config["autoscale_min_replicas"],
        "max_replicas": config["autoscale_max_replicas"],
        # v1 scales to keep each replica at this share of its concurrent requests.
        "target_ongoing_requests": concurrent * config["autoscale_target_utilization"] / 100,
    }
    return {
        "app": name,
        "folder": str(folder),
        # Only the models and the source go to the nodes; the keys go as user_config.
        "excludes": ["/keys.json", "/*.log", "/runtime.json", "/init_failed.txt"],
        "env_vars": {**record["environment_variables"], "PYTHONUNBUFFERED": "1"},
        "settings": asdict(settings),
        "auth_enabled": bool(config["auth_enabled"]),
        "keys": keys,
        "ray_actor_options": cluster.actor_options(cpu_cores, memory_gb),
        "num_replicas": replicas_of(config),
        "autoscaling": autoscaling if config["autoscale_enabled"] else None,
        "max_ongoing_requests": concurrent,
        # A cluster on this machine's proxy only for this machine, as a local service's.
        "host": LOCAL_HOST if cluster.local else "0.0.0.0",
        "port": record.get("port")
        or (free_port(LOCAL_HOST) if cluster.local else ATTACHED_SERVE_PORT),
    }
