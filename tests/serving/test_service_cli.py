"""``modelyard service ...`` on a deployed service, as a user's shell runs it."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np

from modelyard import Workspace
from modelyard.model import Model
from modelyard.webservice import Webservice
from tests.helpers import run_cli, wait_for
from tests.serving.conftest import inference_config, port_free, processes_of_group


def test_list_show_logs_start_and_delete(
    workspace: Workspace, linear: tuple[Model, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    workspace.write_config(cwd)
    service = Model.deploy(
        workspace, "cli-svc", [linear[0]], inference_config(tmp_path, "echo_score.py")
    )
    service.wait_for_deployment()

    listed = run_cli(cwd, "service", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)
    assert entry["name"] == "cli-svc" and entry["state"] == "Healthy"
    assert entry["models"] == ["linear:1"] and entry["scoringUri"] == service.scoring_uri
    shown = run_cli(cwd, "service", "show", "cli-svc")
    assert shown.returncode == 0 and service.scoring_uri in shown.stdout
    logs = run_cli(cwd, "service", "logs", "cli-svc")
    assert "Application startup complete" in logs.stdout

    # After a reboot the process is gone: the record says so, and `start` brings it back.
    pid = json.loads((workspace.folder / "services" / "cli-svc.json").read_text())["pid"]
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: processes_of_group(pid) == [])
    assert "Unhealthy" in run_cli(cwd, "service", "list").stdout
    started = run_cli(cwd, "service", "start", "cli-svc")
    assert started.returncode == 0, started.stderr
    assert "Healthy" in started.stdout
    assert Webservice(workspace, "cli-svc").run({"n": 1})["echo"] == {"n": 1}

    new_pid = json.loads((workspace.folder / "services" / "cli-svc.json").read_text())["pid"]
    deleted = run_cli(cwd, "service", "delete", "cli-svc")
    assert deleted.returncode == 0, deleted.stderr
    assert processes_of_group(new_pid) == [] and port_free(service.port)
    missing = run_cli(cwd, "service", "show", "cli-svc")
    assert missing.returncode != 0 and "no service 'cli-svc'" in missing.stderr
