"""A recorded process number reused by an unrelated process: the agent neither takes it for
the run's supervisor nor signals its group (runner/process_identity.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from modelyard import Workspace
from modelyard.backend.records import FAILED, RUNNING
from modelyard.compute import local
from modelyard.runner import local_compute
from modelyard.runner.process_identity import is_reused, is_running, start_time
from tests.helpers import wait_for

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="start times come from Linux's /proc"
)


def test_start_times_tell_a_process_from_a_later_one() -> None:
    me = os.getpid()
    started = start_time(me)
    assert started is not None
    assert is_running(me, started) and not is_reused(me, started)
    assert is_reused(me, started - 1) and not is_running(me, started - 1)
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert start_time(gone.pid) is None and not is_running(gone.pid, None)


def test_a_reused_supervisor_number_fails_the_run_and_spares_the_bystander(
    workspace: Workspace,
) -> None:
    backend = workspace._backend
    run = backend.create_run(
        "orphan_1_0000abcd",
        "exp",
        run_type="script",
        status=RUNNING,
        properties={local_compute.COMPUTE_PROPERTY: local_compute.LOCAL},
    )
    # An unrelated process that now holds the numbers the run's dead supervisor recorded: its
    # pid was the supervisor's, its group the run's process group.
    bystander = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        now = start_time(bystander.pid)
        assert now is not None
        earlier = now - 1  # what the dead supervisor's process had
        folder = local_compute.compute_dir(workspace.folder) / "runs" / run.id
        folder.mkdir(parents=True)
        (folder / "processes.json").write_text(
            json.dumps(
                {
                    "supervisor_pid": bystander.pid,
                    "supervisor_start": earlier,
                    "pgid": bystander.pid,
                    "pgids": [bystander.pid],
                    "starts": {str(bystander.pid): earlier},
                }
            )
        )
        local.ensure_agent(workspace.folder, workspace.name)
        failed = wait_for(lambda: backend.get_run(run.id).status == FAILED, timeout=60)
        assert failed
        assert "supervisor" in (backend.get_run(run.id).error or {}).get("message", "")
        assert bystander.poll() is None  # never signalled
        log = (local_compute.compute_dir(workspace.folder) / "agent.log").read_text()
        assert f"process groups [{bystander.pid}] belong to other processes now" in log
    finally:
        bystander.kill()
        bystander.wait()
        local.stop_agent(workspace.folder)
