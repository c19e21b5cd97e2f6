"""A run's processes get the run's environment, never the one of the client that started the
agent; the agent itself holds none of a client's other variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard import Experiment, Run, Workspace
from modelyard.compute import local
from modelyard.runner.run_environment import agent_environment, run_process_environment
from modelyard.train import Estimator

SCRIPTS = Path(__file__).parent / "scripts"
TOKEN = "secret-a-5c1e9b"


def run_env(run: Run) -> dict[str, str]:
    seen: dict[str, str] = json.loads(run._backend.read_run_file(run.id, "outputs/env.json"))
    return seen


def agent_pids(workspace: Workspace) -> list[int]:
    """The process ids of the workspace's agent, found as `ps` would find them (its forked
    supervisors share its command line: they are the ones whose parent is the agent)."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if b"modelyard.runner.agent" in argv and str(workspace.folder).encode() in argv:
                found[int(entry.name)] = parent
    return sorted(pid for pid, parent in found.items() if parent not in found)


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


@pytest.fixture
def long_lived_agent(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The agent stays between the submits of a test (and is stopped after it)."""
    monkeypatch.setenv("MODELYARD_AGENT_IDLE_SECONDS", "60")
    yield
    local.stop_agent(workspace.folder)


def submit_from_another_client(workspace: Workspace, env: dict[str, str]) -> dict[str, Any]:
    """Client B: another Python process, with its own environment, submits and waits."""
    code = (
        "import json, sys\n"
        "from modelyard import Experiment, Workspace\n"
        "from modelyard.train import Estimator\n"
        "ws = Workspace.get(sys.argv[1], folder=sys.argv[2])\n"
        "run = Experiment(ws, 'exp').submit(Estimator(sys.argv[3], 'dump_env.py'))\n"
        "run.wait_for_completion()\n"
        "print(run._backend.read_run_file(run.id, 'outputs/env.json').decode())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, workspace.name, str(workspace.folder), str(SCRIPTS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout)
    return seen


@pytest.mark.usefixtures("long_lived_agent")
def test_a_clients_variables_reach_neither_the_agent_nor_any_run(
    workspace: Workspace, experiment: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_API_TOKEN", TOKEN)
    monkeypatch.setenv("TZ", "Europe/Paris")  # allowlisted: the runs keep it

    first = experiment.submit(Estimator(SCRIPTS, "dump_env.py"))  # client A starts the agent
    first.wait_for_completion()
    (pid,) = agent_pids(experiment.workspace)
    other = {k: v for k, v in os.environ.items() if k not in ("MY_API_TOKEN", "TZ")}
    second = submit_from_another_client(experiment.workspace, other)
    given = experiment.submit(
        Estimator(SCRIPTS, "dump_env.py", environment_variables={"MY_API_TOKEN": TOKEN})
    )
    given.wait_for_completion()

    assert agent_pids(experiment.workspace) == [pid]  # one agent served all three runs
    assert "MY_API_TOKEN" not in environ_of(pid)
    assert "MY_API_TOKEN" not in run_env(first)
    assert "MY_API_TOKEN" not in second
    assert run_env(given)["MY_API_TOKEN"] == TOKEN  # put there by the run itself
    for seen in (run_env(first), second):
        assert seen["PATH"] == os.environ["PATH"]
        assert seen["TZ"] == "Europe/Paris"
        assert seen["PYTHONUNBUFFERED"] == "1" and "MODELYARD_RUN_CONTEXT" in seen
        # Settings of the agent are not the run's either.
        assert "MODELYARD_AGENT_IDLE_SECONDS" not in seen


def test_the_allowlist_keeps_what_runs_need_and_nothing_else() -> None:
    client = {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "LC_ALL": "C.UTF-8",
        "CUDA_VISIBLE_DEVICES": "0,1",
        "NCCL_SOCKET_IFNAME": "eth0",
        "OMPI_MCA_btl": "self,tcp",
        "OPENBLAS_CORETYPE": "Haswell",
        "MODELYARD_LOCAL_MAX_RUNS": "2",
        "PIP_INDEX_URL": "https://pypi.example/simple",
        "AWS_SECRET_ACCESS_KEY": "nope",
        "MY_API_TOKEN": "nope",
        "PYTHONPATH": "/src",
    }
    in_run = run_process_environment(client, {"EPOCHS": "3", "PATH": "/venv/bin:/usr/bin"})
    assert in_run == {
        "PATH": "/venv/bin:/usr/bin",
        "HOME": "/home/me",
        "LC_ALL": "C.UTF-8",
        "CUDA_VISIBLE_DEVICES": "0,1",
        "NCCL_SOCKET_IFNAME": "eth0",
        "OMPI_MCA_btl": "self,tcp",
        "OPENBLAS_CORETYPE": "Haswell",
        "PYTHONPATH": "/src",
        "EPOCHS": "3",
    }
    started_with = agent_environment(client)
    assert "AWS_SECRET_ACCESS_KEY" not in started_with and "MY_API_TOKEN" not in started_with
    assert started_with["MODELYARD_LOCAL_MAX_RUNS"] == "2"
    assert started_with["PIP_INDEX_URL"] == "https://pypi.example/simple"
    assert started_with["PYTHONPATH"] == "/src"
