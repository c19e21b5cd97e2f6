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

**Across nodes** (a :class:`NodeLayout`: this node's rank, every node's address and the ports
each node reserved with :func:`reserve_ports`): each node's plan holds that node's processes
only, numbered as in the whole run, so logs and metrics stay apart.

- PyTorch: node ``r`` runs ranks ``r*P`` to ``r*P + P - 1``; ``MASTER_ADDR`` is node 0's
  address and ``MASTER_PORT`` node 0's first port, the same on every node.
- TensorFlow: the processes go to the nodes in turn, in process order (v1's layout: with 2
  nodes, 2 workers and 1 parameter server, node 0 runs worker 0 and the parameter server and
  node 1 worker 1); each gets its node's address and the next of its node's ports, and every
  process sees the same ``cluster``.
- MPI: node 0 runs the one mpirun of the run, with a hostfile of ``modelyard-node-<rank>
  slots=P`` lines; mpirun starts each node's ``orted`` through the ``rsh_agent`` command (no
  alias looks local, so node 0's daemon comes through it too). Other nodes start nothing.

Example::

    config = {"type": "tensorflow", "chief_count": 1, "worker_count": 2,
              "parameter_server_count": 1, "process_count": 4}
    plan = plan_launch(config, [sys.executable, "train.py"], os.environ, run_dir / "ranks", [])
    [p.role for p in plan.processes]     # ['chief 0', 'worker 0', 'worker 1', 'ps 0']

    nodes = NodeLayout(rank=1, addresses=["10.0.0.5", "10.0.0.6"],
                       ports=[[29500, 29501, 29502], [29600, 29601, 29602]], processes_per_node=2)
    plan = plan_launch({"type": "pytorch", "process_count": 4}, command, os.environ,
                       run_dir / "ranks", [], nodes=nodes)
    [p.index for p in plan.processes]    # [2, 3]
    plan.summary                         # 'PyTorch: 2 nodes x 2 processes, master 10.0.0.5:29500'
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
from modelyard.errors import ValidationError
from modelyard.runner.job import MPI, PYTORCH, TENSORFLOW
from modelyard.store.private import write_private_file

# Run properties of a distributed run (set at submit): its kind and its number of processes.
DISTRIBUTED_PROPERTY = "modelyard.distributed"
PROCESS_COUNT_PROPERTY = "modelyard.process_count"
PROCESS_COUNT_ENV = "MODELYARD_PROCESS_COUNT"
# DISTRIBUTED_PROPERTY of a run of several nodes without distribution: the script on each.
PER_NODE = "per-node"
RANK_WRAPPER = Path(__file__).with_name("mpi_rank.py")
MPIRUN = "mpirun"
LOCALHOST = "127.0.0.1"
NODE_ALIAS_PREFIX = "modelyard-node-"  # hostfile names of an MPI run across nodes
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


@dataclass(frozen=True)
class NodeLayout:
    """Where a run across nodes runs: this node's rank, and every node's address and ports.

    Computed once for the run (each node offers ports with :func:`reserve_ports`) and given to
    every node, so all agree on the master's port and on TensorFlow's ``cluster``; the node
    supervisor reads it from a JSON file (:meth:`to_dict`, :meth:`from_dict`).

    - ``addresses``: the IP or host name of every node, by node rank;
    - ``ports``: the ports each node reserved, by node rank, at least ``processes_per_node + 1``;
    - ``processes_per_node``: ``P``; node ``r`` runs processes ``r*P`` to ``r*P + P - 1``.

    Example::

        layout = NodeLayout(0, ["10.0.0.5", "10.0.0.6"], [[29500, 29501, 29502]] * 2, 2)
        layout.count                                        # 2
        NodeLayout.from_dict(layout.to_dict()) == layout    # True
    """

    rank: int
    addresses: list[str]
    ports: list[list[int]]
    processes_per_node: int

    def __post_init__(self) -> None:
        if not _is_count(self.processes_per_node) or self.processes_per_node < 1:
            raise ValidationError(
                "processes_per_node", f"{self.processes_per_node!r} is not a count of 1 or more"
            )
        if not self.addresses or not all(isinstance(a, str) and a for a in self.addresses):
            raise ValidationError(
                "addresses", f"{self.addresses!r}: give every node's IP or host name, by rank"
            )
        if not _is_count(self.rank) or not 0 <= self.rank < self.count:
            raise ValidationError(
                "rank",
                f"{self.rank!r} is not a node rank of {self.count} nodes (0 to {self.count - 1})",
            )
        if len(self.ports) != self.count:
            raise ValidationError(
                "ports",
                f"{len(self.ports)} lists of ports for {self.count} nodes; give one per node",
            )
        needed = self.processes_per_node + 1
        for node, ports in enumerate(self.ports):
            if len(ports) < needed or not all(_is_count(p) and 0 < p < 65536 for p in ports):
                raise ValidationError(
                    "ports",
                    f"node {node} has {ports!r}; each node reserves at least {needed} TCP ports "
                    "(processes_per_node + 1, with reserve_ports)",
                )
            if len(set(ports)) != len(ports):
                raise ValidationError("ports", f"node {node} has a port twice in {ports!r}")

    @property
    def count(self) -> int:
        """How many nodes the run has."""
        return len(self.addresses)

    def to_dict(self) -> dict[str, Any]:
        """The layout as JSON-ready values."""
        return {
            "rank": self.rank,
            "addresses": list(self.addresses),
            "ports": [list(ports) for ports in self.ports],
            "processes_per_node": self.processes_per_node,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeLayout:
        """The layout :meth:`to_dict` gave, read back; ValidationError if it is not one."""
        missing = sorted({"rank", "addresses", "ports", "processes_per_node"} - set(data))
        if missing:
            raise ValidationError("nodes", f"the layout has no {', '.join(missing)}")
        addresses, ports = data["addresses"], data["ports"]
        if not isinstance(addresses, list) or not isinstance(ports, list):
            raise ValidationError("nodes", "addresses and ports must be lists")
        if not all(isinstance(p, list) for p in ports):
            raise ValidationError("ports", "each node's ports must be a list")
        return cls(
            data["rank"], list(addresses), [list(p) for p in ports], data["processes_per_node"]
        )


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON's true is no rank


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


def reserve_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free right now on every interface of this machine: what a
    node offers in its :class:`NodeLayout` entry. The kernel picks them, and every socket stays
    open until all are known, so no port comes twice; they are closed on return, so the run must
    bind them soon (another program could take one in between, as with torchrun's own choice).

    Example::

        NodeLayout(0, ["10.0.0.5"], [reserve_ports(3)], processes_per_node=2)
    """
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


free_ports = reserve_ports  # the name callers on one machine knew first


def plan_launch(
    distributed: dict[str, Any] | None,
    command: list[str],
    environment: Mapping[str, str],
    rank_dir: Path,
    exported: list[str],
    nodes: NodeLayout | None = None,
    rsh_agent: list[str] | None = None,
) -> LaunchPlan:
    """The plan for a run of ``command`` (the interpreter, the script and its arguments).

    ``environment`` is every process's environment; ``exported`` names the variables the run
    sets on top of the supervisor's own (what mpirun must pass on with ``-x``). ``rank_dir``
    is where MPI's hostfile and the ranks' pipes and status files go.

    With ``nodes`` (a run across nodes), the plan is the one of node ``nodes.rank``: its own
    processes, each with its number in the whole run. ``rsh_agent`` is the command through which
    mpirun starts a daemon on another node (it gets the node's alias, then the daemon's command
    line, as ``ssh`` would); an MPI run on more than one node needs it. Raises ValidationError
    (a ValueError) when the layout does not fit the run.
    """
    if distributed is None:
        if nodes is None or nodes.count == 1:
            return LaunchPlan(None, [ProcessPlan(0, "script")])
        # The script on each node, as v1 runs a run of several nodes without distribution:
        # one process per node, numbered by node (each its own log and metrics).
        index = nodes.rank
        process = ProcessPlan(index, f"node {index}", _indexed(index, nodes.count, {}))
        return LaunchPlan(None, [process], summary=f"the script on each of {nodes.count} nodes")
    kind = distributed["type"]
    count = int(distributed["process_count"])
    if (
        nodes is not None
        and kind in (MPI, PYTORCH)
        and count != nodes.count * nodes.processes_per_node
    ):
        raise ValidationError(
            "process_count",
            f"the run has {count} processes, but the layout has {nodes.count} nodes x "
            f"{nodes.processes_per_node} processes; lay out node_count x process_count_per_node",
        )
    if kind == MPI:
        if nodes is None or (nodes.count == 1 and rsh_agent is None):
            return _plan_mpi(count, command, environment, rank_dir, exported)
        return _plan_mpi_nodes(nodes, command, environment, rank_dir, exported, rsh_agent)
    if kind == TENSORFLOW:
        return _plan_tensorflow(
            int(distributed.get("chief_count", 0)),
            int(distributed["worker_count"]),
            int(distributed["parameter_server_count"]),
            nodes,
        )
    if kind == PYTORCH:
        if nodes is None:
            return _plan_pytorch(count, environment)
        return _plan_pytorch_nodes(nodes, environment)
    raise ValueError(f"unknown distributed kind {kind!r}")


def _indexed(index: int, count: int, environment: dict[str, str]) -> dict[str, str]:
    return {PROCESS_INDEX_ENV: str(index), PROCESS_COUNT_ENV: str(count), **environment}


def _mpirun_options(
    per_node: int, environment: Mapping[str, str], exported: list[str]
) -> list[str]:
    # TensorFlow and PyTorch ranks use many threads; binding each to one core would starve them.
    options = ["--bind-to", "none"]
    if per_node > (os.cpu_count() or 1):  # across nodes, node 0's cores stand for each node's
        options.append("--oversubscribe")
    if os.geteuid() == 0:
        options.append("--allow-run-as-root")
    for name in sorted(set(exported)):
        if name in environment:
            options += ["-x", name]
    return options


def _ranks(command: list[str], rank_dir: Path) -> list[str]:
    # The wrapper is plain Python (standard library only): any interpreter of the run runs it.
    return [command[0], "-S", str(RANK_WRAPPER), str(rank_dir), *command]


def _mpirun(environment: Mapping[str, str]) -> str:
    mpirun = find_mpirun(environment)
    if mpirun is None:
        raise FileNotFoundError(f"`{MPIRUN}` is not on the PATH; " + INSTALL_MPI)
    return mpirun


def _write_hostfile(rank_dir: Path, lines: list[str]) -> Path:
    rank_dir.mkdir(parents=True, exist_ok=True)
    hostfile = rank_dir / "hostfile"
    write_private_file(hostfile, "".join(f"{line}\n" for line in lines).encode())
    return hostfile


def _plan_mpi(
    count: int,
    command: list[str],
    environment: Mapping[str, str],
    rank_dir: Path,
    exported: list[str],
) -> LaunchPlan:
    mpirun = _mpirun(environment)
    hostfile = _write_hostfile(rank_dir, [f"localhost slots={count}"])
    arguments = [mpirun, "--hostfile", str(hostfile), "-np", str(count), "--map-by", "slot"]
    arguments += _mpirun_options(count, environment, exported)
    arguments += _ranks(command, rank_dir)
    processes = [ProcessPlan(rank, f"rank {rank}") for rank in range(count)]
    return LaunchPlan(MPI, processes, mpirun=arguments, summary=f"MPI: {count} ranks")


def node_alias(rank: int) -> str:
    """The name node ``rank`` has in an MPI run's hostfile, which mpirun hands to the rsh agent.

    Not a real host name on purpose: OpenMPI starts processes itself on any host it takes for
    this one (``localhost``, its own name or address), and every node's daemon must come
    through the agent.
    """
    return f"{NODE_ALIAS_PREFIX}{rank}"


def rsh_agent_value(agent: list[str]) -> str:
    """``agent`` as the value of OpenMPI's ``plm_rsh_agent``.

    OpenMPI 4.1 (``orte_plm_rsh_search`` in ``orte/mca/plm/rsh/plm_rsh_component.c``) splits
    the value at ``:`` into alternatives, and the first one whose first word is on the PATH at
    single spaces into the command's arguments, with no quoting; so the words are joined with
    spaces, and a word with a space, a colon or nothing in it cannot be passed.

    Example::

        rsh_agent_value(["/usr/bin/python3", "-m", "agent"])   # '/usr/bin/python3 -m agent'
    """
    if not agent:
        raise ValidationError(
            "rsh_agent", "the command is empty; give the program and its arguments"
        )
    for word in agent:
        if not word or ":" in word or any(c.isspace() for c in word):
            raise ValidationError(
                "rsh_agent",
                f"{word!r}: OpenMPI splits its rsh agent at spaces and colons and knows no "
                "quoting, so no word of the command may be empty or hold a space or a colon; "
                "install the agent at a path without them",
            )
    return " ".join(agent)


def _plan_mpi_nodes(
    nodes: NodeLayout,
    command: list[str],
    environment: Mapping[str, str],
    rank_dir: Path,
    exported: list[str],
    rsh_agent: list[str] | None,
) -> LaunchPlan:
    per_node, count = nodes.processes_per_node, nodes.count * nodes.processes_per_node
    layout = f"{nodes.count} nodes x {per_node} ranks"
    if rsh_agent is None:
        raise ValidationError(
            "rsh_agent",
            f"an MPI run on {nodes.count} nodes needs the command that starts mpirun's daemon "
            "on another node (OpenMPI's plm_rsh_agent)",
        )
    agent = rsh_agent_value(rsh_agent)
    if nodes.rank != 0:
        # mpirun on node 0 starts this node's daemon, and the daemon its ranks.
        summary = f"MPI: {layout}; this node's ranks come through node 0's mpirun"
        return LaunchPlan(MPI, [], mpirun=None, summary=summary)
    mpirun = _mpirun(environment)
    hosts = [f"{node_alias(rank)} slots={per_node}" for rank in range(nodes.count)]
    hostfile = _write_hostfile(rank_dir, hosts)
    arguments = [mpirun, "--hostfile", str(hostfile), "-np", str(count)]
    arguments += ["--map-by", f"ppr:{per_node}:node"]
    # Every daemon straight from mpirun: with tree spawn, daemons start other nodes' daemons,
    # which would need the agent on their own nodes too.
    arguments += ["--mca", "plm_rsh_agent", agent, "--mca", "plm_rsh_no_tree_spawn", "1"]
    # Each daemon talks to mpirun directly. With the default routing (a tree), a daemon
    # sometimes could not route to another whose node reports the same host name (several
    # nodes on one machine): "ORTE does not know how to route a message to the daemon".
    arguments += ["--mca", "routed", "direct"]
    arguments += _mpirun_options(per_node, environment, exported)
    arguments += _ranks(command, rank_dir)
    processes = [ProcessPlan(rank, f"rank {rank}") for rank in range(count)]
    return LaunchPlan(MPI, processes, mpirun=arguments, summary=f"MPI: {layout}")


def _plan_tensorflow(
    chiefs: int, workers: int, servers: int, nodes: NodeLayout | None = None
) -> LaunchPlan:
    roles = [("chief", i) for i in range(chiefs)]
    roles += [("worker", i) for i in range(workers)]
    roles += [("ps", i) for i in range(servers)]
    addresses = _tensorflow_addresses(len(roles), nodes)
    cluster: dict[str, list[str]] = {}
    for (task_type, _), address in zip(roles, addresses, strict=True):
        cluster.setdefault(task_type, []).append(address)
    # With a chief, the run follows it (TF2's ParameterServerStrategy coordinator; workers and
    # parameter servers serve it and never return); without, it follows the workers.
    waited_type = "chief" if chiefs else "worker"
    processes = []
    for index, (task_type, task_index) in enumerate(roles):
        if nodes is not None and _tensorflow_node(index, nodes.count) != nodes.rank:
            continue
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
        f"{len(members)} {names[task_type]}" + ("s" * (len(members) > 1))
        for task_type, members in cluster.items()
    )
    if nodes is not None:
        mine = ", ".join(p.role for p in processes) or "no process"
        layout += f" on {nodes.count} nodes; node {nodes.rank} runs {mine}"
    return LaunchPlan(TENSORFLOW, processes, summary=f"TensorFlow: {layout}")


def _tensorflow_node(index: int, node_count: int) -> int:
    """The node of process ``index``: the nodes in turn, so the workers spread over every node
    before a node runs a second one, and the parameter servers after them (a node runs at
    most ``ceil(total / node_count)`` processes)."""
    return index % node_count


def _tensorflow_addresses(total: int, nodes: NodeLayout | None) -> list[str]:
    """Each process's ``host:port``, by process number."""
    if nodes is None:
        return [f"{LOCALHOST}:{port}" for port in reserve_ports(total)]
    addresses = []
    used = [0] * nodes.count  # how many of each node's ports are taken
    for index in range(total):
        node = _tensorflow_node(index, nodes.count)
        if used[node] == len(nodes.ports[node]):
            raise ValidationError(
                "ports",
                f"node {node} runs more TensorFlow processes than the "
                f"{len(nodes.ports[node])} ports it reserved; reserve one per process",
            )
        addresses.append(f"{nodes.addresses[node]}:{nodes.ports[node][used[node]]}")
        used[node] += 1
    return addresses


def _torchrun_variables(
    world: int, per_node: int, node: int, node_count: int, address: str, port: int
) -> dict[str, str]:
    return {
        "MASTER_ADDR": address,
        "MASTER_PORT": str(port),
        "WORLD_SIZE": str(world),
        "LOCAL_WORLD_SIZE": str(per_node),
        "NODE_RANK": str(node),
        "GROUP_RANK": str(node),
        "GROUP_WORLD_SIZE": str(node_count),
        "ROLE_NAME": "default",
        "ROLE_WORLD_SIZE": str(world),
    }


def _pytorch_processes(
    shared: dict[str, str], node: int, per_node: int, environment: Mapping[str, str]
) -> list[ProcessPlan]:
    if per_node > 1 and "OMP_NUM_THREADS" not in environment:
        shared = {**shared, "OMP_NUM_THREADS": "1"}  # as torchrun does, so N processes do not fight
    world = int(shared["WORLD_SIZE"])
    processes = []
    for local in range(per_node):
        rank = node * per_node + local
        own = {"RANK": str(rank), "LOCAL_RANK": str(local), "ROLE_RANK": str(rank)}
        processes.append(
            ProcessPlan(rank, f"rank {rank}", _indexed(rank, world, {**shared, **own}))
        )
    return processes


def _plan_pytorch(count: int, environment: Mapping[str, str]) -> LaunchPlan:
    (port,) = reserve_ports(1)
    shared = _torchrun_variables(count, count, 0, 1, LOCALHOST, port)
    processes = _pytorch_processes(shared, 0, count, environment)
    return LaunchPlan(PYTORCH, processes, summary=f"PyTorch: {count} processes, {LOCALHOST}:{port}")


def _plan_pytorch_nodes(nodes: NodeLayout, environment: Mapping[str, str]) -> LaunchPlan:
    per_node, master, port = nodes.processes_per_node, nodes.addresses[0], nodes.ports[0][0]
    shared = _torchrun_variables(
        nodes.count * per_node, per_node, nodes.rank, nodes.count, master, port
    )
    processes = _pytorch_processes(shared, nodes.rank, per_node, environment)
    summary = f"PyTorch: {nodes.count} nodes x {per_node} processes, master {master}:{port}"
    return LaunchPlan(PYTORCH, processes, summary=summary)
