"""Launch plans: the processes each framework gets and what each one sees.

Most tests only look at the plans; two start a plan's processes for real across two "nodes" on
this machine (PyTorch over gloo, and mpirun with an rsh agent that runs the daemon here).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard.runner import launchers


def _config(kind: str, **counts: int) -> dict[str, object]:
    return {"type": kind, **counts}


def test_a_run_without_distribution_is_one_process(tmp_path: Path) -> None:
    plan = launchers.plan_launch(None, ["python", "train.py"], {}, tmp_path, [])
    assert not plan.distributed and [p.role for p in plan.processes] == ["script"]
    assert plan.processes[0].environment == {}


def test_tensorflow_processes_chief_first_then_workers_then_parameter_servers(
    tmp_path: Path,
) -> None:
    config = _config(
        "tensorflow", chief_count=1, worker_count=2, parameter_server_count=2, process_count=5
    )
    plan = launchers.plan_launch(config, ["python", "t.py"], {}, tmp_path, [])
    assert [p.role for p in plan.processes] == ["chief 0", "worker 0", "worker 1", "ps 0", "ps 1"]
    assert [p.waited for p in plan.processes] == [True, False, False, False, False]
    assert plan.summary == "TensorFlow: 1 chief, 2 workers, 2 parameter servers"
    worker = json.loads(plan.processes[2].environment["TF_CONFIG"])
    assert worker["task"] == {"type": "worker", "index": 1}
    assert worker["environment"] == "cloud"
    assert list(worker["cluster"]) == ["chief", "worker", "ps"]
    assert plan.processes[2].environment["MODELYARD_PROCESS_INDEX"] == "2"


def test_without_a_chief_the_run_waits_for_the_workers(tmp_path: Path) -> None:
    config = _config("tensorflow", worker_count=2, parameter_server_count=1, process_count=3)
    plan = launchers.plan_launch(config, ["python", "t.py"], {}, tmp_path, [])
    assert [(p.role, p.waited) for p in plan.processes] == [
        ("worker 0", True),
        ("worker 1", True),
        ("ps 0", False),
    ]
    assert "chief" not in json.loads(plan.processes[0].environment["TF_CONFIG"])["cluster"]


def test_pytorch_processes_get_what_torchrun_sets(tmp_path: Path) -> None:
    plan = launchers.plan_launch(
        _config("pytorch", process_count=2), ["python", "t.py"], {}, tmp_path, []
    )
    first, second = (p.environment for p in plan.processes)
    assert first["MASTER_PORT"] == second["MASTER_PORT"] and first["MASTER_ADDR"] == "127.0.0.1"
    assert {k: second[k] for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")} == {
        "RANK": "1",
        "LOCAL_RANK": "1",
        "WORLD_SIZE": "2",
        "LOCAL_WORLD_SIZE": "2",
    }
    assert (second["NODE_RANK"], second["GROUP_RANK"], second["OMP_NUM_THREADS"]) == ("0", "0", "1")
    # A run that sets OMP_NUM_THREADS keeps its own.
    mine = launchers.plan_launch(
        _config("pytorch", process_count=2), ["p"], {"OMP_NUM_THREADS": "4"}, tmp_path, []
    )
    assert "OMP_NUM_THREADS" not in mine.processes[0].environment


def test_mpirun_command(tmp_path: Path) -> None:
    count = (os.cpu_count() or 1) + 1
    env = {"PATH": os.environ["PATH"], "MY_SETTING": "1"}
    plan = launchers.plan_launch(
        _config("mpi", process_count=count),
        ["/usr/bin/python3", "train.py", "--lr", "0.1"],
        env,
        tmp_path,
        ["MY_SETTING", "NOT_SET"],
    )
    assert plan.mpirun is not None
    command = plan.mpirun
    assert command[command.index("-np") + 1] == str(count)
    assert (tmp_path / "hostfile").read_text() == f"localhost slots={count}\n"
    assert "--oversubscribe" in command  # more ranks than cores
    assert ("--allow-run-as-root" in command) == (os.geteuid() == 0)
    assert command[command.index("-x") + 1] == "MY_SETTING" and "NOT_SET" not in command
    assert command[-6:] == [
        str(launchers.RANK_WRAPPER),
        str(tmp_path),
        "/usr/bin/python3",
        "train.py",
        "--lr",
        "0.1",
    ]


def test_a_missing_mpirun_says_how_to_install_it() -> None:
    assert launchers.missing_launcher(None, {"PATH": "/nonexistent"}) == ""
    problem = launchers.missing_launcher(_config("mpi"), {"PATH": "/nonexistent"})
    assert "apt-get install openmpi-bin libopenmpi-dev" in problem
    assert "pip install mpi4py" in problem


@pytest.mark.parametrize("count", [1, 5])
def test_free_ports_are_distinct(count: int) -> None:
    ports = launchers.free_ports(count)
    assert len(set(ports)) == count and all(1024 <= p < 65536 for p in ports)


def test_process_log_names() -> None:
    assert launchers.process_log_name(3) == "user_logs/std_log_process_03.txt"
    assert launchers.process_log_name(120) == "user_logs/std_log_process_120.txt"


# -- across nodes ----------------------------------------------------------------------------

ADDRESSES = ["10.0.0.5", "10.0.0.6"]
PORTS = [[29500, 29501, 29502], [29600, 29601, 29602]]


def _layout(rank: int, per_node: int = 2) -> launchers.NodeLayout:
    return launchers.NodeLayout(rank, ADDRESSES, PORTS, per_node)


def _tf_config(process: launchers.ProcessPlan) -> dict[str, object]:
    config: dict[str, object] = json.loads(process.environment["TF_CONFIG"])
    return config


def test_pytorch_on_two_nodes_each_node_runs_its_own_ranks(tmp_path: Path) -> None:
    config = _config("pytorch", process_count=4)
    plans = [
        launchers.plan_launch(config, ["python", "t.py"], {}, tmp_path, [], nodes=_layout(rank))
        for rank in (0, 1)
    ]
    seen = {
        rank: [
            {k: p.environment[k] for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE")}
            for p in plan.processes
        ]
        for rank, plan in enumerate(plans)
    }
    assert seen == {
        0: [
            {"RANK": "0", "LOCAL_RANK": "0", "NODE_RANK": "0", "WORLD_SIZE": "4"},
            {"RANK": "1", "LOCAL_RANK": "1", "NODE_RANK": "0", "WORLD_SIZE": "4"},
        ],
        1: [
            {"RANK": "2", "LOCAL_RANK": "0", "NODE_RANK": "1", "WORLD_SIZE": "4"},
            {"RANK": "3", "LOCAL_RANK": "1", "NODE_RANK": "1", "WORLD_SIZE": "4"},
        ],
    }
    # Logs and metrics stay apart across the run: global numbers, the whole run's count.
    assert [[p.index for p in plan.processes] for plan in plans] == [[0, 1], [2, 3]]
    last = plans[1].processes[1].environment
    assert (last["MODELYARD_PROCESS_INDEX"], last["MODELYARD_PROCESS_COUNT"]) == ("3", "4")
    assert {k: last[k] for k in ("LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE")} == {
        "LOCAL_WORLD_SIZE": "2",
        "GROUP_RANK": "1",
        "GROUP_WORLD_SIZE": "2",
    }
    assert (last["ROLE_RANK"], last["ROLE_WORLD_SIZE"], last["OMP_NUM_THREADS"]) == ("3", "4", "1")
    masters = {
        (p.environment["MASTER_ADDR"], p.environment["MASTER_PORT"])
        for plan in plans
        for p in plan.processes
    }
    assert masters == {("10.0.0.5", "29500")}
    assert plans[1].summary == "PyTorch: 2 nodes x 2 processes, master 10.0.0.5:29500"


def test_pytorch_with_one_process_per_node_leaves_omp_threads_alone(tmp_path: Path) -> None:
    plan = launchers.plan_launch(
        _config("pytorch", process_count=2), ["p"], {}, tmp_path, [], nodes=_layout(1, 1)
    )
    (only,) = plan.processes
    assert (only.index, only.environment["RANK"], only.environment["LOCAL_RANK"]) == (1, "1", "0")
    assert "OMP_NUM_THREADS" not in only.environment


def test_tensorflow_two_workers_on_two_nodes(tmp_path: Path) -> None:
    config = _config("tensorflow", worker_count=2, parameter_server_count=0, process_count=2)
    plans = [
        launchers.plan_launch(config, ["p"], {}, tmp_path, [], nodes=_layout(rank, 1))
        for rank in (0, 1)
    ]
    assert [[(p.index, p.role, p.waited) for p in plan.processes] for plan in plans] == [
        [(0, "worker 0", True)],
        [(1, "worker 1", True)],
    ]
    first, second = (_tf_config(plan.processes[0]) for plan in plans)
    assert first["cluster"] == second["cluster"] == {"worker": ["10.0.0.5:29500", "10.0.0.6:29600"]}
    assert second["task"] == {"type": "worker", "index": 1}
    assert plans[1].processes[0].environment["MODELYARD_PROCESS_COUNT"] == "2"


def test_tensorflow_chief_workers_and_ps_on_two_nodes(tmp_path: Path) -> None:
    config = _config(
        "tensorflow", chief_count=1, worker_count=2, parameter_server_count=1, process_count=4
    )
    plans = [
        launchers.plan_launch(config, ["p"], {}, tmp_path, [], nodes=_layout(rank))
        for rank in (0, 1)
    ]
    # The nodes in turn, in process order: chief and worker 1 on node 0, the rest on node 1.
    assert [[(p.index, p.role, p.waited) for p in plan.processes] for plan in plans] == [
        [(0, "chief 0", True), (2, "worker 1", False)],
        [(1, "worker 0", False), (3, "ps 0", False)],
    ]
    clusters = [_tf_config(p)["cluster"] for plan in plans for p in plan.processes]
    assert all(cluster == clusters[0] for cluster in clusters)
    assert clusters[0] == {
        "chief": ["10.0.0.5:29500"],
        "worker": ["10.0.0.6:29600", "10.0.0.5:29501"],
        "ps": ["10.0.0.6:29601"],
    }
    assert plans[1].summary == (
        "TensorFlow: 1 chief, 2 workers, 1 parameter server on 2 nodes; node 1 runs worker 0, ps 0"
    )


def test_tensorflow_v1_parameter_server_layout_puts_a_worker_on_each_node(tmp_path: Path) -> None:
    """v1's TensorFlow(node_count=2, ParameterServer(worker_count=2)): 2 workers and 1
    parameter server over 2 nodes, a worker on each, the parameter server beside worker 0."""
    config = _config("tensorflow", worker_count=2, parameter_server_count=1, process_count=3)
    plans = [
        launchers.plan_launch(config, ["p"], {}, tmp_path, [], nodes=_layout(rank))
        for rank in (0, 1)
    ]
    assert [[p.role for p in plan.processes] for plan in plans] == [
        ["worker 0", "ps 0"],
        ["worker 1"],
    ]
    cluster = _tf_config(plans[1].processes[0])["cluster"]
    assert cluster == {"worker": ["10.0.0.5:29500", "10.0.0.6:29600"], "ps": ["10.0.0.5:29501"]}


def test_tensorflow_refuses_a_node_with_fewer_ports_than_processes(tmp_path: Path) -> None:
    config = _config("tensorflow", worker_count=4, parameter_server_count=0, process_count=4)
    # 4 workers on 2 nodes with 1 process per node announced: 2 on each, 2 ports each.
    tight = launchers.NodeLayout(0, ADDRESSES, [[1001, 1002], [1003, 1004]], 1)
    assert len(launchers.plan_launch(config, ["p"], {}, tmp_path, [], nodes=tight).processes) == 2
    three = launchers.NodeLayout(0, ["10.0.0.5"], [[1001, 1002]], 1)
    with pytest.raises(ValueError, match="node 0 runs more TensorFlow processes than the 2 ports"):
        launchers.plan_launch(config, ["p"], {}, tmp_path, [], nodes=three)


def test_mpi_on_two_nodes_node_zero_runs_one_mpirun_over_every_node(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "MY_SETTING": "1"}
    agent = ["/opt/modelyard/bin/python", "-m", "ray_rsh", "--run", "r1"]
    plan = launchers.plan_launch(
        _config("mpi", process_count=4),
        ["/usr/bin/python3", "train.py"],
        env,
        tmp_path,
        ["MY_SETTING"],
        nodes=_layout(0),
        rsh_agent=agent,
    )
    assert plan.mpirun is not None and plan.kind == "mpi"
    command = plan.mpirun
    hostfile = tmp_path / "hostfile"
    assert command[command.index("--hostfile") + 1] == str(hostfile)
    assert hostfile.read_text() == "modelyard-node-0 slots=2\nmodelyard-node-1 slots=2\n"
    assert command[command.index("-np") + 1] == "4"
    assert command[command.index("--map-by") + 1] == "ppr:2:node"
    mca = {command[i + 1]: command[i + 2] for i, word in enumerate(command) if word == "--mca"}
    # One string, words at single spaces: how OpenMPI 4.1 splits plm_rsh_agent.
    assert mca == {
        "plm_rsh_agent": "/opt/modelyard/bin/python -m ray_rsh --run r1",
        "plm_rsh_no_tree_spawn": "1",
        "routed": "direct",
    }
    assert command[command.index("-x") + 1] == "MY_SETTING"
    assert ("--allow-run-as-root" in command) == (os.geteuid() == 0)
    assert command[-4:] == [
        str(launchers.RANK_WRAPPER),
        str(tmp_path),
        "/usr/bin/python3",
        "train.py",
    ]
    # Every rank of the run is node 0's to follow: their logs come through its wrapper pipes.
    assert [(p.index, p.role) for p in plan.processes] == [(i, f"rank {i}") for i in range(4)]
    assert plan.summary == "MPI: 2 nodes x 2 ranks"


def test_mpi_on_two_nodes_the_other_node_starts_nothing(tmp_path: Path) -> None:
    plan = launchers.plan_launch(
        _config("mpi", process_count=4),
        ["python", "train.py"],
        {"PATH": os.environ["PATH"]},
        tmp_path / "ranks",
        [],
        nodes=_layout(1),
        rsh_agent=["/usr/bin/agent"],
    )
    assert (plan.kind, plan.processes, plan.mpirun) == ("mpi", [], None)
    assert "node 0's mpirun" in plan.summary
    assert not (tmp_path / "ranks").exists()  # no hostfile on a node that starts nothing


@pytest.mark.parametrize(
    ("agent", "message"),
    [
        (None, "needs the command that starts mpirun's daemon"),
        ([], "the command is empty"),
        (["/my agents/rsh"], "no word of the command may be empty or hold a space or a colon"),
        (["/usr/bin/agent", "--node=a:b"], "hold a space or a colon"),
    ],
)
def test_mpi_on_two_nodes_needs_an_agent_openmpi_can_split(
    tmp_path: Path, agent: list[str] | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        launchers.plan_launch(
            _config("mpi", process_count=4),
            ["python", "t.py"],
            {"PATH": os.environ["PATH"]},
            tmp_path,
            [],
            nodes=_layout(0),
            rsh_agent=agent,
        )


def test_mpi_on_one_node_of_a_layout_without_an_agent_runs_locally(tmp_path: Path) -> None:
    one = launchers.NodeLayout(0, ["10.0.0.5"], [[29500, 29501, 29502]], 2)
    plan = launchers.plan_launch(
        _config("mpi", process_count=2), ["p", "t.py"], os.environ, tmp_path, [], nodes=one
    )
    assert plan.mpirun is not None and "plm_rsh_agent" not in plan.mpirun
    assert (tmp_path / "hostfile").read_text() == "localhost slots=2\n"


@pytest.mark.parametrize("kind", ["pytorch", "mpi"])
def test_a_layout_that_does_not_fit_the_run_is_refused(tmp_path: Path, kind: str) -> None:
    with pytest.raises(ValueError, match="the run has 3 processes, but the layout has 2 nodes x 2"):
        launchers.plan_launch(
            _config(kind, process_count=3),
            ["p"],
            {"PATH": os.environ["PATH"]},
            tmp_path,
            [],
            nodes=_layout(0),
            rsh_agent=["/usr/bin/agent"],
        )


def test_without_nodes_plans_stay_on_this_machine(tmp_path: Path) -> None:
    pytorch = _config("pytorch", process_count=2)
    for plan in (
        launchers.plan_launch(pytorch, ["p"], {}, tmp_path, []),
        launchers.plan_launch(pytorch, ["p"], {}, tmp_path, [], nodes=None),
    ):
        assert [p.index for p in plan.processes] == [0, 1]
        assert {p.environment["MASTER_ADDR"] for p in plan.processes} == {"127.0.0.1"}
        assert plan.summary.startswith("PyTorch: 2 processes, 127.0.0.1:")
    mpi = launchers.plan_launch(
        _config("mpi", process_count=2), ["p"], os.environ, tmp_path, [], rsh_agent=["/x"]
    )
    assert mpi.mpirun is not None and "plm_rsh_agent" not in mpi.mpirun
    assert (tmp_path / "hostfile").read_text() == "localhost slots=2\n"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rank": 2}, "rank: 2 is not a node rank of 2 nodes"),
        ({"rank": -1}, "rank: -1 is not a node rank"),
        ({"rank": True}, "rank: True is not a node rank"),
        ({"addresses": []}, "addresses: \\[\\]: give every node's IP"),
        ({"addresses": ["10.0.0.5", ""]}, "addresses:"),
        ({"ports": PORTS[:1]}, "ports: 1 lists of ports for 2 nodes"),
        (
            {"ports": [PORTS[0], [29600, 29601]]},
            "node 1 has \\[29600, 29601\\]; each node reserves",
        ),
        ({"ports": [PORTS[0], [29600, 29601, 70000]]}, "node 1 has"),
        ({"ports": [PORTS[0], [29600, 29600, 29601]]}, "node 1 has a port twice"),
        ({"processes_per_node": 0}, "processes_per_node: 0 is not a count of 1 or more"),
    ],
)
def test_node_layout_validation(fields: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "rank": 0,
        "addresses": ADDRESSES,
        "ports": PORTS,
        "processes_per_node": 2,
        **fields,
    }
    with pytest.raises(ValueError, match=message):
        launchers.NodeLayout(**values)  # type: ignore[arg-type]


def test_node_layout_goes_through_a_json_file_unchanged(tmp_path: Path) -> None:
    layout = _layout(1)
    assert layout.count == 2
    path = tmp_path / "nodes.json"
    path.write_text(json.dumps(layout.to_dict()))
    assert launchers.NodeLayout.from_dict(json.loads(path.read_text())) == layout
    with pytest.raises(ValueError, match="nodes: the layout has no ports, processes_per_node"):
        launchers.NodeLayout.from_dict({"rank": 0, "addresses": ADDRESSES})
    with pytest.raises(ValueError, match="each node's ports must be a list"):
        launchers.NodeLayout.from_dict({**layout.to_dict(), "ports": [1, 2]})


def test_reserve_ports_gives_a_node_distinct_free_ports() -> None:
    ports = launchers.reserve_ports(3)
    assert len(set(ports)) == 3
    # Free means bindable right now.
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("", port))
    assert launchers.free_ports is launchers.reserve_ports


# -- across nodes, for real: two "nodes" on this machine -------------------------------------

ALL_REDUCE = """
import os
import torch
import torch.distributed as dist

dist.init_process_group("gloo")  # MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE from the plan
total = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(total)
print(os.environ["MODELYARD_PROCESS_INDEX"], dist.get_world_size(), int(total.item()), flush=True)
dist.destroy_process_group()
"""


@pytest.mark.slow  # two interpreters importing torch: about 4 s here
def test_pytorch_processes_of_two_nodes_all_reduce_together(tmp_path: Path) -> None:
    script = tmp_path / "all_reduce.py"
    script.write_text(ALL_REDUCE)
    config = _config("pytorch", process_count=2)
    addresses, ports = ["127.0.0.1", "127.0.0.1"], [launchers.reserve_ports(2) for _ in "ab"]
    started = []
    for rank in (0, 1):
        plan = launchers.plan_launch(
            config,
            [sys.executable, str(script)],
            os.environ,
            tmp_path,
            [],
            nodes=launchers.NodeLayout(rank, addresses, ports, 1),
        )
        (process,) = plan.processes
        started.append(
            subprocess.Popen(
                [sys.executable, str(script)],
                env={**os.environ, **process.environment},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    # A deadline, not a timing: two interpreters importing torch on a loaded 2-core machine.
    results = [process.communicate(timeout=180) for process in started]
    assert [process.returncode for process in started] == [0, 0], results
    # Each node's process under its own number, both in a world of 2, both with 1 + 2.
    assert [out.split() for out, _ in results] == [["0", "2", "3"], ["1", "2", "3"]]


RSH_AGENT = """
import os
import sys

# As ssh would: the node's name, then the daemon's command line for a shell to run; "here".
with open(sys.argv[0] + ".log", "a") as log:
    log.write(sys.argv[1] + "\\n")
os.execvp("sh", ["sh", "-c", " ".join(sys.argv[2:])])
"""

MPI_ALL_REDUCE = """
import os

from mpi4py import MPI

world = MPI.COMM_WORLD
line = f"{world.Get_rank()} {world.Get_size()} {world.allreduce(world.Get_rank() + 1)}\\n"
os.write(1, line.encode())  # one write: the ranks' lines never interleave
"""


def test_mpirun_of_two_nodes_starts_every_daemon_through_the_agent(tmp_path: Path) -> None:
    agent, script = tmp_path / "agent.py", tmp_path / "all_reduce.py"
    agent.write_text(RSH_AGENT)
    script.write_text(MPI_ALL_REDUCE)
    layout = launchers.NodeLayout(0, ["127.0.0.1"] * 2, [launchers.reserve_ports(2)] * 2, 1)
    plan = launchers.plan_launch(
        _config("mpi", process_count=2),
        [sys.executable, str(script)],
        os.environ,
        tmp_path / "ranks",
        [],
        nodes=layout,
        rsh_agent=[sys.executable, str(agent)],
    )
    assert plan.mpirun is not None
    # mpirun as planned, with the script in place of the rank wrapper (whose pipes the
    # supervisor makes; processes.py and its tests cover it).
    wrapper = plan.mpirun.index(str(launchers.RANK_WRAPPER))
    command = [*plan.mpirun[: wrapper - 2], sys.executable, str(script)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split("\n")[:2]) == ["0 2 3", "1 2 3"]
    # Both daemons came through the agent, node 0's too: neither alias looked local.
    assert sorted((tmp_path / "agent.py.log").read_text().split()) == [
        "modelyard-node-0",
        "modelyard-node-1",
    ]
