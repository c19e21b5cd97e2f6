"""Faults on the local compute, with real processes: the supervisor or the agent killed with
SIGKILL mid-run, or told to stop with SIGTERM (once: cleanly; twice: now).

Each test waits with a deadline (the 60 s a lost run is allowed, or a deadline far below
a grace period that must be skipped), never on wall-clock time.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from modelyard import Experiment, Run, Workspace
from modelyard.errors import NotFoundError
from modelyard.runner import local_compute
from modelyard.script_run_config import ScriptRunConfig
from tests.helpers import wait_for

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="process states come from Linux's /proc"
)

SCRIPTS = Path(__file__).parent / "scripts"
LOST_RUN_S = 60  # how soon a run whose supervisor is gone must have ended


def run_file(run: Run, name: str) -> str:
    try:
        return run._backend.read_run_file(run.id, name, 0, 1 << 30).decode()
    except NotFoundError:
        return ""


def run_dir(workspace: Workspace, run: Run) -> Path:
    return local_compute.compute_dir(workspace.folder) / "runs" / run.id


def processes(workspace: Workspace, run: Run) -> dict[str, Any]:
    """What the run's supervisor recorded: its pid and the run's process groups."""
    info: dict[str, Any] = json.loads((run_dir(workspace, run) / "processes.json").read_text())
    return info


def _stat(pid: int | str) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet collected by its parent, does not)."""
    try:
        return _stat(pid)[0] != "Z"
    except (OSError, IndexError):
        return False


def group_alive(pgid: int) -> bool:
    """Whether some live process is in process group ``pgid``."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat(entry.name)
            except (OSError, IndexError):
                continue
            if fields[2] == str(pgid) and fields[0] != "Z":
                return True
    return False


def agent_pid(supervisor_pid: int) -> int:
    """The agent that forked this supervisor (its parent)."""
    pid = int(_stat(supervisor_pid)[1])
    assert b"modelyard.runner.agent" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return pid


def submit_steady(experiment: Experiment, *arguments: str) -> Run:
    """A run that logs and flushes metric points, writes an output, then waits; returned once
    it has said so (its points are stored by then)."""
    run = experiment.submit(ScriptRunConfig(SCRIPTS, "steady.py", arguments=list(arguments)))
    wait_for(lambda: "flushed" in run_file(run, "user_logs/std_log.txt"))
    return run


def nothing_of_the_run_lives_on(workspace: Workspace, run: Run, info: dict[str, Any]) -> bool:
    grandchild = int((run_dir(workspace, run) / "wd" / "child.pid").read_text())
    return not any(group_alive(pgid) for pgid in info["pgids"]) and not alive(grandchild)


def test_a_supervisor_killed_mid_run_fails_the_run_and_keeps_what_was_flushed(
    workspace: Workspace, experiment: Experiment
) -> None:
    run = submit_steady(experiment, "--points", "500")
    info = processes(workspace, run)
    assert info["pgids"]
    os.kill(info["supervisor_pid"], signal.SIGKILL)
    wait_for(lambda: run.get_status() == "Failed", timeout=LOST_RUN_S)
    message = run.get_details()["error"]["message"]
    assert f"supervisor (pid {info['supervisor_pid']})" in message
    wait_for(lambda: nothing_of_the_run_lives_on(workspace, run, info), timeout=LOST_RUN_S)
    assert run.get_metrics("value")["value"] == list(range(500))  # every flushed point


def test_an_agent_killed_mid_run_leaves_the_run_to_finish_and_a_new_agent_takes_the_queue(
    workspace: Workspace, experiment: Experiment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_LOCAL_MAX_RUNS", "1")
    release = tmp_path / "release"
    first = submit_steady(experiment, "--until", str(release))
    queued = experiment.submit(ScriptRunConfig(SCRIPTS, "report.py"))
    info = processes(workspace, first)
    agent = agent_pid(info["supervisor_pid"])
    os.kill(agent, signal.SIGKILL)
    wait_for(lambda: not alive(agent))
    release.touch()
    # The supervisor does not need its agent: the run ends as it would have.
    assert first.wait_for_completion()["status"] == "Completed"
    assert "done" in run_file(first, "user_logs/std_log.txt")
    assert "outputs/partial.txt" in first.get_file_names()
    assert first.get_metrics("value")["value"] == list(range(100))
    wait_for(lambda: nothing_of_the_run_lives_on(workspace, first, info))
    assert queued.get_status() == "Queued"  # nobody took it: the agent is gone
    # The next submit starts a new agent, which runs what waits, first in, first out.
    later = experiment.submit(ScriptRunConfig(SCRIPTS, "report.py"))
    assert queued.wait_for_completion()["status"] == "Completed"
    assert later.wait_for_completion()["status"] == "Completed"
    assert "started" in run_file(queued, "user_logs/std_log.txt")


def test_sigterm_to_the_supervisor_stops_the_run_uploads_what_it_has_and_records_failed(
    workspace: Workspace, experiment: Experiment
) -> None:
    run = submit_steady(experiment, "--points", "50")
    info = processes(workspace, run)
    os.kill(info["supervisor_pid"], signal.SIGTERM)
    wait_for(lambda: run.get_status() == "Failed", timeout=LOST_RUN_S)
    error = run.get_details()["error"]
    assert "supervisor was asked to stop (SIGTERM)" in error["message"]
    assert error["signal"] == "SIGTERM"
    wait_for(lambda: nothing_of_the_run_lives_on(workspace, run, info))
    wait_for(lambda: not alive(info["supervisor_pid"]))  # it ended, having recorded that
    names = run.get_file_names()
    assert "outputs/partial.txt" in names and "logs/progress.txt" in names
    assert "flushed 50" in run_file(run, "user_logs/std_log.txt")
    assert run.get_metrics("value")["value"] == list(range(50))
    log = run_file(run, "system_logs/supervisor.txt")
    assert "asked to stop (SIGTERM)" in log and "SIGTERM, SIGKILL after" in log
    assert log.rstrip().endswith("status: Failed")


def test_sigterm_to_the_supervisor_with_a_cancel_pending_ends_the_run_canceled(
    workspace: Workspace, experiment: Experiment
) -> None:
    run = submit_steady(experiment)
    info = processes(workspace, run)
    run.cancel()
    os.kill(info["supervisor_pid"], signal.SIGTERM)
    wait_for(lambda: run.get_status() == "Canceled", timeout=LOST_RUN_S)
    assert run.get_details()["error"]["message"] == "canceled by the user"
    wait_for(lambda: nothing_of_the_run_lives_on(workspace, run, info))


def test_a_second_signal_to_the_supervisor_skips_the_grace_and_still_records_the_end(
    workspace: Workspace, experiment: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    grace = 600  # far longer than the deadline below: only skipping it ends the run in time
    monkeypatch.setenv("MODELYARD_KILL_GRACE_SECONDS", str(grace))
    run = submit_steady(experiment, "--ignore-term")
    info = processes(workspace, run)
    os.kill(info["supervisor_pid"], signal.SIGTERM)
    wait_for(lambda: f"SIGKILL after {grace} s" in run_file(run, "system_logs/supervisor.txt"))
    assert run.get_status() == "Running"  # the script ignores SIGTERM: the grace runs
    os.kill(info["supervisor_pid"], signal.SIGINT)
    wait_for(lambda: run.get_status() == "Failed", timeout=LOST_RUN_S)
    assert "asked to stop (SIGTERM)" in run.get_details()["error"]["message"]
    wait_for(lambda: nothing_of_the_run_lives_on(workspace, run, info))
    log = run_file(run, "system_logs/supervisor.txt")
    assert "asked again (SIGINT): the grace was skipped (SIGKILL)" in log
    assert "./logs and ./outputs are not uploaded" in log
    assert "outputs/partial.txt" not in run.get_file_names()


def test_sigterm_to_the_agent_stops_its_runs_cleanly_and_leaves_the_queue(
    workspace: Workspace, experiment: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_LOCAL_MAX_RUNS", "1")
    run = submit_steady(experiment)
    queued = experiment.submit(ScriptRunConfig(SCRIPTS, "report.py"))
    info = processes(workspace, run)
    agent = agent_pid(info["supervisor_pid"])
    os.kill(agent, signal.SIGTERM)
    wait_for(lambda: not alive(agent), timeout=LOST_RUN_S)
    # It waited for its supervisor, which stopped the run and recorded it.
    assert run.get_status() == "Failed"
    assert "supervisor was asked to stop (SIGTERM)" in run.get_details()["error"]["message"]
    assert "outputs/partial.txt" in run.get_file_names()
    wait_for(lambda: nothing_of_the_run_lives_on(workspace, run, info))
    assert queued.get_status() == "Queued"
    log = (local_compute.compute_dir(workspace.folder) / "agent.log").read_text()
    assert (
        f"asked to stop (SIGTERM): taking no new runs; SIGTERM to the supervisors of {run.id}"
        in log
    )
    assert "the supervisors have ended; exiting" in log


def test_a_second_signal_to_the_agent_is_forwarded_and_the_agent_exits_at_once(
    workspace: Workspace, experiment: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    grace = 600
    monkeypatch.setenv("MODELYARD_KILL_GRACE_SECONDS", str(grace))
    run = submit_steady(experiment, "--ignore-term")
    info = processes(workspace, run)
    agent = agent_pid(info["supervisor_pid"])
    os.kill(agent, signal.SIGTERM)
    wait_for(lambda: f"SIGKILL after {grace} s" in run_file(run, "system_logs/supervisor.txt"))
    assert alive(agent)  # waiting for its supervisor, which waits for the script
    os.kill(agent, signal.SIGTERM)
    wait_for(lambda: not alive(agent), timeout=LOST_RUN_S)
    wait_for(lambda: run.get_status() == "Failed", timeout=LOST_RUN_S)
    wait_for(lambda: nothing_of_the_run_lives_on(workspace, run, info))
    log = (local_compute.compute_dir(workspace.folder) / "agent.log").read_text()
    assert "asked again (SIGTERM): SIGTERM again to the supervisors of" in log
    assert "the grace was skipped" in run_file(run, "system_logs/supervisor.txt")
