"""``modelyard tensorboard RUN_ID...`` as a user's shell runs it: a process of its own that prints
TensorBoard's URL, serves the run's scalars, and stops everything at Ctrl-C."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from modelyard import Run
from tests.helpers import interrupt, run_cli
from tests.tensorboard.board import (
    expected_loss,
    needs_tensorboard,
    port_is_free,
    processes_naming,
    runs,
    scalars,
)

# Each test starts TensorBoard, which imports TensorFlow: 5-12 s here.
pytestmark = [needs_tensorboard, pytest.mark.slow]

URL_LINE = re.compile(r"TensorBoard at (http://127\.0\.0\.1:(\d+)/) on 1 run\(s\)")


def _start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELYARD_CONFIG"}
    env["PYTHONFAULTHANDLER"] = "1"  # stacks on stderr if it hangs (see tests.helpers.interrupt)
    return subprocess.Popen(
        [sys.executable, "-m", "modelyard.cli.main", "tensorboard", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first line the command prints (its URL), read with a deadline."""
    stdout = process.stdout
    assert stdout is not None
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not got or not got[0]:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"no URL printed within {timeout} s; stderr:\n{err}")
    return got[0]


def test_the_command_prints_the_url_serves_the_scalars_and_stops_at_ctrl_c(
    finished_run: Run, tmp_path: Path
) -> None:
    cwd = finished_run.experiment.workspace.folder.parent  # holds .modelyard/config.json
    local_root = tmp_path / "copied"
    process = _start(cwd, finished_run.id, "--port", "0", "--local-root", str(local_root))
    line = _first_line(process, timeout=180)
    match = URL_LINE.search(line)
    assert match, line
    url, port = match.group(1), int(match.group(2))
    assert runs(url) == [finished_run.id]
    assert scalars(url, finished_run.id, "loss") == expected_loss(5)
    assert processes_naming(str(local_root))
    interrupt(process, timeout=60)
    out, err = process.communicate()
    assert process.returncode == 0, err
    assert "TensorBoard stopped" in out
    assert processes_naming(str(local_root)) == []  # TensorBoard and its data server too
    assert port_is_free(port)
    assert (local_root / finished_run.id).is_dir()  # a given --local-root is kept


def test_an_unknown_run_a_repeated_one_and_a_port_in_use_are_named(finished_run: Run) -> None:
    cwd = finished_run.experiment.workspace.folder.parent
    unknown = run_cli(cwd, "tensorboard", "tb_1_deadbeef", "--port", "0")
    assert unknown.returncode == 3, unknown.stderr
    assert "tb_1_deadbeef" in unknown.stderr
    twice = run_cli(cwd, "tensorboard", finished_run.id, finished_run.id, "--port", "0")
    assert twice.returncode == 2, twice.stderr
    assert "RUN_ID: runs" in twice.stderr and "would share the folder" in twice.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_cli(cwd, "tensorboard", finished_run.id, "--port", str(port))
    assert busy.returncode == 4, busy.stderr
    assert f"port {port} on 127.0.0.1 is in use" in busy.stderr
    assert "Traceback" not in busy.stderr


@pytest.mark.parametrize("args", [[], ["--port", "70000"]])
def test_usage_errors(finished_run: Run, args: list[str]) -> None:
    cwd = finished_run.experiment.workspace.folder.parent
    result = run_cli(cwd, "tensorboard", *args)
    assert result.returncode == 2
    assert ("RUN_ID" if not args else "--port") in result.stderr
