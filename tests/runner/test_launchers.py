"""Launch plans: the processes each framework gets and what each one sees (no process runs)."""

from __future__ import annotations

import json
import os
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
