"""A workspace deleted (rm -rf, its agent still running) and created again at the same path:
the old agent serves a database that no longer exists, so it must not take the new
workspace's wake-ups. The new workspace's runs complete and the old agent exits."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from modelyard import Experiment, Workspace
from modelyard.compute import local
from modelyard.runner import local_compute
from modelyard.script_run_config import ScriptRunConfig
from tests.helpers import wait_for

SCRIPTS = Path(__file__).parent / "scripts"


def agent_pid(ws: Workspace) -> int:
    log = (local_compute.compute_dir(ws.folder) / "agent.log").read_text()
    return int(re.findall(r"agent \(pid (\d+)\)", log)[-1])


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (an agent the test started and that exited stays a zombie until
    it is reaped: that counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.parametrize(
    "where", ["socket inside the folder", "socket outside the folder (long path)"]
)
def test_a_recreated_workspace_gets_a_new_agent_and_the_old_one_exits(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The old agent must still be there when the folder is created again.
    monkeypatch.setenv("MODELYARD_AGENT_IDLE_SECONDS", "120")
    # A path too long for a Unix socket puts the socket under the temporary folder, named by
    # the path alone: the old agent keeps listening where the new workspace's clients call.
    folder = tmp_path / ("w" * 90 if "long" in where else "ws")
    ws = Workspace.create("ws", folder=folder)
    Experiment(ws, "exp").submit(ScriptRunConfig(SCRIPTS, "dump_env.py")).wait_for_completion()
    old_agent = agent_pid(ws)
    assert alive(old_agent)

    shutil.rmtree(folder)
    again = Workspace.create("ws", folder=folder)
    run = Experiment(again, "exp").submit(ScriptRunConfig(SCRIPTS, "dump_env.py"))

    # Polled with a deadline: before the fix the run stayed Queued and waiting hung.
    wait_for(lambda: run.get_status() not in ("NotStarted", "Queued"), timeout=60)
    assert run.wait_for_completion()["status"] == "Completed"
    assert agent_pid(again) != old_agent
    wait_for(lambda: not alive(old_agent), timeout=30)
    # The old agent, exiting, left the new agent's socket in place: it still answers.
    assert local_compute.wake(again.folder)
    assert local.stop_agent(again.folder)
