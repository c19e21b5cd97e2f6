"""Launchers: which processes a run starts, and what each one sees, per framework.

:func:`plan_launch` turns a job into a :class:`LaunchPlan`; the supervisor starts it
(``processes.py``). Every process of a distributed run also sees ``MODELYARD_PROCESS_INDEX``
(its number: the ``NN`` of ``user_logs/std_log_process_NN.txt``, and the process its metrics
are kept with) and ``MODELYARD_PROCESS_COUNT``.

- **No distribution**: one process, the script.
- **MPI** (:class:`~modelyard.distributed.MpiConfiguration`): OpenMPI's ``mpirun`` with a
  hostfile of ``localhost slots=N``, ``-np N``, ``--map-by slot --bind-to none`` (TensorFlow
  and PyTorch ranks use many threads; binding each to one core would starve them),
  ``--oversubscribe`` with more ranks than cores, ``--allow-run-as-root`` as root, and ``-x``
  for each variable the run sets. Ranks see ``OMPI_COMM_WORLD_RANK``, ``_SIZE`` and
  ``_LOCAL_RANK`` from mpirun. Each rank starts through ``mpi_rank.py``, which gives the
  supervisor its output and exit status.
- **TensorFlow** (:class:`~modelyard.distributed.TensorflowConfiguration`): one process per
  chief, worker and parameter server (in that order of process numbers), each with
  ``TF_CONFIG`` naming free ports on 127.0.0.1.
- **PyTorch** (:class:`~modelyard.distributed.PyTorchConfiguration`): one process per rank with
  the variables ``torchrun`` sets (``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``, ``RANK``,
  ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``NODE_RANK``, ``GROUP_RANK``, ``GROUP_WORLD_SIZE``,
  ``ROLE_RANK``, ``ROLE_WORLD_SIZE``, ``ROLE_NAME``) and, like torchrun, ``OMP_NUM_THREADS=1``
  for several processes unless the run sets it.

Example::

    config = {"type": "tensorflow", "chief_count": 1, "worker_count": 2,
              "parameter_server_count": 1, "process_count": 4}
    plan = plan_launch(config, [sys.executable, "train.py"], os.environ, run_dir / "ranks", [])
    [p.role for p in plan.processes]     # ['chief 0', 'worker 0', 'worker 1', 'ps 0']
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard.backend.channel_wire import PROCESS_INDEX_ENV
from modelyard.runner.job import MPI, PYTORCH, TENSORFLOW

# Run properties of a distributed run (set at submit): its kind and its number of processes.
DISTRIBUTED_PROPERTY = "modelyard.distributed"
PROCESS_COUNT_PROPERTY = "modelyard.process_count"
PROCESS_COUNT_ENV = "MODELYARD_PROCESS_COUNT"
RANK_WRAPPER = Path(__file__).with_name("mpi_rank.py")
MPIRUN = "mpirun"
LOCALHOST = "127.0.0.1"
INSTALL_MPI = (
    "install OpenMPI and mpi4py where the run executes: `apt-get install openmpi-bin "
    "libopenmpi-dev` (Debian, Ubuntu; `make system-deps` in a modelyard checkout), then "
    "`pip install mpi4py` (and Horovod if the script uses it)"
)


def process_log_name(index: int) -> str:
    """The run file of process ``index``'s output in a distributed run."""
    return f"user_logs/std_log_process_{index:02d}.txt"


@dataclass(frozen=True)
class ProcessPlan:
    """One process to start: its number, its role, and the variables it alone gets."""

    index: int
    role: str
    environment: dict[str, str] = field(default_factory=dict)
    waited: bool = True  # False: a server, stopped once the processes the run waits for end


@dataclass(frozen=True)
class LaunchPlan:
    """The processes of a run, and for MPI the one mpirun command that starts them all."""

    kind: str | None  # None: one process, not distributed
    processes: list[ProcessPlan]
    mpirun: list[str] | None = None
    summary: str = "1 process"

    @property
    def distributed(self) -> bool:
        return self.kind is not None


def find_mpirun(environment: Mapping[str, str]) -> str | None:
    """The mpirun a run with ``environment`` would start, or None."""
    return shutil.which(MPIRUN, path=environment.get("PATH", os.defpath))


def missing_launcher(distributed: dict[str, Any] | None, environment: Mapping[str, str]) -> str:
    """Why a run with this configuration cannot start here, or "" when it can."""
    if distributed is None or distributed.get("type") != MPI:
        return ""
    if find_mpirun(environment) is None:
        return f"this MPI run needs `{MPIRUN}`, which is not on the PATH; " + INSTALL_MPI
    return ""


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free right now on every interface (the kernel picks them;
    all sockets stay open until every port is known, so no port comes twice)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def plan_launch(
    distributed: dict[str, Any] | None,
    command: list[str],
    environment: Mapping[str, str],
    rank_dir: Path,
    exported: list[str],
) -> LaunchPlan:
    """The plan for a run of ``command`` (the interpreter, the script and its arguments).

    ``environment`` is every process's environment; ``exported`` names the variables the run
    sets on top of the supervisor's own (what mpirun must pass on with ``-x``). ``rank_dir``
    is where MPI's hostfile and the ranks' pipes and status files go.
    """
    if distributed is None:
        return LaunchPlan(None, [ProcessPlan(0, "script")])
    kind = distributed["type"]
    count = int(distributed["process_count"])
    if kind == MPI:
        return _plan_mpi(count, command, environment, rank_dir, exported)
    if kind == TENSORFLOW:
        return _plan_tensorflow(
            int(distributed.get("chief_count", 0)),
            int(distributed["worker_count"]),
            int(distributed["parameter_server_count"]),
        )
    if kind == PYTORCH:
        return _plan_pytorch(count, environment)
    raise ValueError(f"unknown distributed kind {kind!r}")


def _indexed(index: int, count: int, environment: dict[str, str]) -> dict[str, str]:
    return {PROCESS_INDEX_ENV: str(index), PROCESS_COUNT_ENV: str(count), **environment}


def _plan_mpi(
    count: int,
    command: list[str],
    environment: Mapping[str, str],
    rank_dir: Path,
    exported: list[str],
) -> LaunchPlan:
    mpirun = find_mpirun(environment)
    if mpirun is None:
        raise FileNotFoundError(f"`{MPIRUN}` is not on the PATH; " + INSTALL_MPI)
    rank_dir.mkdir(parents=True, exist_ok=True)
    hostfile = rank_dir / "hostfile"
    hostfile.write_text(f"localhost slots={count}\n")
    arguments = [mpirun, "--hostfile", str(hostfile), "-np", str(count)]
    arguments += ["--map-by", "slot", "--bind-to", "none"]
    if count > (os.cpu_count() or 1):
        arguments.append("--oversubscribe")
    if os.geteuid() == 0:
        arguments.append("--allow-run-as-root")
    for name in sorted(set(exported)):
        if name in environment:
            arguments += ["-x", name]
    # The wrapper is plain Python (standard library only): any interpreter of the run runs it.
    arguments += [command[0], "-S", str(RANK_WRAPPER), str(rank_dir), *command]
    processes = [ProcessPlan(rank, f"rank {rank}") for rank in range(count)]
    return LaunchPlan(MPI, processes, mpirun=arguments, summary=f"MPI: {count} ranks")


def _plan_tensorflow(chiefs: int, workers: int, servers: int) -> LaunchPlan:
    roles = [("chief", i) for i in range(chiefs)]
    roles += [("worker", i) for i in range(workers)]
    roles += [("ps", i) for i in range(servers)]
    ports = iter(free_ports(len(roles)))
    cluster: dict[str, list[str]] = {}
    for task_type, _ in roles:
        cluster.setdefault(task_type, []).append(f"{LOCALHOST}:{next(ports)}")
    # With a chief, the run follows it (TF2's ParameterServerStrategy coordinator; workers and
    # parameter servers serve it and never return); without, it follows the workers.
    waited_type = "chief" if chiefs else "worker"
    processes = []
    for index, (task_type, task_index) in enumerate(roles):
        tf_config = {
            "cluster": cluster,
            "task": {"type": task_type, "index": task_index},
            "environment": "cloud",
        }
        processes.append(
            ProcessPlan(
                index,
                f"{task_type} {task_index}",
                _indexed(index, len(roles), {"TF_CONFIG": json.dumps(tf_config)}),
                waited=task_type == waited_type,
            )
        )
    names = {"chief": "chief", "worker": "worker", "ps": "parameter server"}
    layout = ", ".join(
        f"{len(addresses)} {names[task_type]}" + ("s" * (len(addresses) > 1))
        for task_type, addresses in cluster.items()
    )
    return LaunchPlan(TENSORFLOW, processes, summary=f"TensorFlow: {layout}")


def _plan_pytorch(count: int, environment: Mapping[str, str]) -> LaunchPlan:
    (port,) = free_ports(1)
    shared = {
        "MASTER_ADDR": LOCALHOST,
        "MASTER_PORT": str(port),
        "WORLD_SIZE": str(count),
        "LOCAL_WORLD_SIZE": str(count),
        "NODE_RANK": "0",
        "GROUP_RANK": "0",
        "GROUP_WORLD_SIZE": "1",
        "ROLE_NAME": "default",
        "ROLE_WORLD_SIZE": str(count),
    }
    if count > 1 and "OMP_NUM_THREADS" not in environment:
        shared["OMP_NUM_THREADS"] = "1"  # as torchrun does, so N processes do not fight
    processes = [
        ProcessPlan(
            rank,
            f"rank {rank}",
            _indexed(
                rank,
                count,
                {**shared, "RANK": str(rank), "LOCAL_RANK": str(rank), "ROLE_RANK": str(rank)},
            ),
        )
        for rank in range(count)
    ]
    return LaunchPlan(PYTORCH, processes, summary=f"PyTorch: {count} processes, {LOCALHOST}:{port}")
