"""`modelyard run submit|logs|cancel`, as a shell script uses them (real subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from modelyard import Workspace


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_submit_wait_logs_and_cancel(tmp_path: Path) -> None:
    Workspace.create("cli", folder=tmp_path / ".modelyard" / "cli").write_config(tmp_path)
    source = tmp_path / "src"
    source.mkdir()
    (source / "ok.py").write_text("import sys; print('got', sys.argv[1:])")
    (source / "bad.py").write_text("import sys; print('bad'); sys.exit(4)")
    (source / "slow.py").write_text("import time; print('slow', flush=True); time.sleep(600)")

    done = cli(
        tmp_path,
        "run",
        "submit",
        "-e",
        "shell",
        "--tag",
        "k=v",
        "--wait",
        "src",
        "ok.py",
        "--lr",
        "0.1",
    )
    assert done.returncode == 0, done.stderr
    assert "got ['--lr', '0.1']" in done.stdout and "Status: Completed" in done.stdout
    run_id = done.stdout.split("Submitted run ")[1].split()[0]
    logs = cli(tmp_path, "run", "logs", run_id)
    assert logs.returncode == 0 and logs.stdout == "got ['--lr', '0.1']\n"

    failed = cli(tmp_path, "run", "submit", "-e", "shell", "--wait", "src", "bad.py")
    assert failed.returncode == 6  # RunFailedError
    assert "exited with code 4" in failed.stderr

    started = cli(tmp_path, "run", "submit", "-e", "shell", "--json", "src", "slow.py")
    slow_id = json.loads(started.stdout)["runId"]
    followed = subprocess.Popen(
        [sys.executable, "-m", "modelyard.cli.main", "run", "logs", "--follow", slow_id],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while "slow" not in cli(tmp_path, "run", "logs", slow_id).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    canceled = cli(tmp_path, "run", "cancel", slow_id)
    assert canceled.returncode == 0, canceled.stderr
    out, _ = followed.communicate(timeout=60)  # --follow ends when the run does
    assert out == "slow\n"
    shown = json.loads(cli(tmp_path, "run", "show", slow_id, "--json").stdout)
    assert shown["status"] == "Canceled"
    assert cli(tmp_path, "run", "logs", "nope_1_2").returncode == 3
