"""The command line gives its advice in its own words (`--overwrite`, `modelyard run ...`), where
the SDK gives the same advice in its words (`overwrite=True`, `run.get_file_names()`).

One mechanism does it (modelyard/hints.py): SDK messages say their advice through ``say``, and
each command names its own words around its SDK calls with ``spoken_as``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelyard import Experiment, Model, Run, Workspace
from modelyard.compute import ComputeTarget
from modelyard.errors import ComputeTargetException, ConfigError, ConflictError, NotFoundError
from modelyard.hints import say, spoken_as
from tests.helpers import interrupt, run_cli, wait_for

TIMEOUT_S = 120
# Advice in the SDK's words: an argument set to a value, or a call.
SDK_WORDS = re.compile(r"\b[a-z_]+=(True|False)\b|\b[a-z_]+\.[a-z_]+\([a-z_]*\)")


@dataclass
class Project:
    cwd: Path
    ws: Workspace
    shown: list[str]  # everything the command line printed in these tests

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = run_cli(self.cwd, *args, timeout=TIMEOUT_S)
        self.shown += [done.stdout, done.stderr]
        return done


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    cwd = tmp_path_factory.mktemp("wording")
    ws = Workspace.create("wording", folder=cwd / ".modelyard" / "wording")
    ws.write_config(cwd)
    (cwd / "model.bin").write_bytes(b"weights")
    (cwd / "data").mkdir()
    (cwd / "data" / "a.txt").write_text("a\n")
    (cwd / "src").mkdir()
    (cwd / "src" / "ok.py").write_text("print('done')")
    (cwd / "src" / "slow.py").write_text(
        "import time\nprint('slow', flush=True)\ntime.sleep(600)\n"
    )
    project = Project(cwd, ws, [])
    yield project
    for text in project.shown:
        assert not SDK_WORDS.search(text), text


def test_datastore_transfers_name_the_overwrite_flag(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert project.cli("datastore", "upload", "data", "--target", "mnist").returncode == 0
    again = project.cli("datastore", "upload", "data", "--target", "mnist")
    assert again.returncode == 0
    assert "skipped 1 that exist: mnist/a.txt (pass --overwrite to replace them)" in again.stdout
    assert project.cli("datastore", "download", "back").returncode == 0
    back = project.cli("datastore", "download", "back")
    assert "(pass --overwrite to replace them)" in back.stdout
    # The SDK's own transfer says the SDK's words.
    project.ws.get_default_datastore().upload(str(project.cwd / "data"), target_path="mnist")
    assert "(pass overwrite=True to replace them)" in capsys.readouterr().out


def test_model_download_conflict_names_the_commands_options(project: Project) -> None:
    assert project.cli("model", "register", "model.bin", "--name", "m").returncode == 0
    assert project.cli("model", "download", "m", "--output", "out").returncode == 0
    again = project.cli("model", "download", "m", "--output", "out")
    assert again.returncode == ConflictError.exit_code
    assert "exists already; pass --exist-ok to replace it, or choose another --output" in (
        again.stderr
    )
    assert project.cli("model", "download", "m", "--output", "out", "--exist-ok").returncode == 0
    # The same refusal from the SDK names its arguments.
    with pytest.raises(
        ConflictError, match=r"pass exist_ok=True to replace it, or choose another target_dir"
    ):
        Model(project.ws, "m").download(project.cwd / "out")


def test_model_register_from_a_run_names_the_runs_files(project: Project) -> None:
    with Experiment(project.ws, "files").start_logging() as run:
        run.upload_file("outputs/model/w.bin", project.cwd / "model.bin")
    wrong = project.cli("model", "register", "outputs/mdl", "--name", "m2", "--from-run", run.id)
    assert wrong.returncode == 3
    assert (
        f"run {run.id!r} has no file or folder 'outputs/mdl'; its files: outputs/model/w.bin"
        in wrong.stderr
    )


def test_the_run_summary_after_wait_names_a_command(project: Project) -> None:
    done = project.cli("run", "submit", "-e", "words", "--wait", "src", "ok.py")
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split("Submitted run ")[1].split()[0]
    assert f"Files: `modelyard run download {run_id}`" in done.stdout
    # From the SDK, the summary names the SDK's call.
    printed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from modelyard import Run, Workspace\n"
            f"Run.get(Workspace.from_config(), {run_id!r}).wait_for_completion(show_output=True)",
        ],
        cwd=project.cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert "Files: run.get_file_names()\n" in printed.stdout, printed.stderr


def test_ctrl_c_while_waiting_names_the_cancel_command(project: Project) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MODELYARD_CONFIG"}
    command = ["run", "submit", "-e", "words", "--wait", "src", "slow.py"]
    waiter = subprocess.Popen(
        [sys.executable, "-m", "modelyard.cli.main", *command],
        cwd=project.cwd,
        env={**env, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout = waiter.stdout
    assert stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(stdout), daemon=True)
    reader.start()
    # The script's first line, streamed by the command: it is waiting now.
    wait_for(lambda: "slow\n" in lines, timeout=TIMEOUT_S)
    interrupt(waiter, TIMEOUT_S)
    reader.join(TIMEOUT_S)  # the rest of stdout, to its end
    assert waiter.stderr is not None
    err = waiter.stderr.read()
    out = "".join(lines)
    project.shown += [out, err]
    assert waiter.returncode == 130, err
    run_id = out.split("Submitted run ")[1].split()[0]
    assert (
        f"Stopped waiting; run {run_id} goes on. Cancel it with `modelyard run cancel {run_id}`."
        in out
    )
    run = Run.get(project.ws, run_id)
    assert run.get_status() == "Running"
    assert project.cli("run", "cancel", run_id).returncode == 0
    wait_for(lambda: run.get_status() == "Canceled", timeout=TIMEOUT_S)


def test_missing_workspaces_and_compute_targets_name_commands(
    project: Project, tmp_path: Path
) -> None:
    empty = Project(tmp_path, project.ws, project.shown)
    no_config = empty.cli("run", "list")
    assert no_config.returncode == 5
    assert "Create one with `modelyard workspace create NAME` in this folder" in no_config.stderr
    (tmp_path / "config.json").write_text('{"workspace_name": "gone"}')
    gone = empty.cli("run", "list")
    assert gone.returncode == 3
    folder = tmp_path / ".modelyard" / "gone"
    assert f"`modelyard workspace create gone --folder {str(folder)!r} --no-config`" in gone.stderr
    missing = project.cli("compute", "show", "nosuch")
    assert missing.returncode == 3
    assert (
        "create it with `modelyard compute create nosuch`, or list the workspace's with "
        "`modelyard compute list`" in missing.stderr
    )
    # The SDK says the same in its words.
    with pytest.raises(ConfigError, match=re.escape("Workspace.create(name).write_config()")):
        Workspace.from_config(tmp_path / "nowhere")
    with pytest.raises(NotFoundError, match=re.escape(f"folder={str(folder)!r})")):
        Workspace.from_config(tmp_path)
    with pytest.raises(ComputeTargetException, match=re.escape("ComputeTarget.list(ws)")):
        ComputeTarget(project.ws, "nosuch")


def test_spoken_words_hold_inside_the_with_only() -> None:
    assert say("run.cancel()") == "run.cancel()"
    with spoken_as({"run.cancel()": "`cancel`", "overwrite=True": "--overwrite"}):
        with spoken_as({"run.cancel()": "`modelyard run cancel X`"}):
            assert say("run.cancel()") == "`modelyard run cancel X`"
            assert say("overwrite=True") == "--overwrite"
            assert say("exist_ok=True") == "exist_ok=True"
        assert say("run.cancel()") == "`cancel`"
        # Another thread (a notebook's, say) keeps the SDK's words.
        seen: list[str] = []
        other = threading.Thread(target=lambda: seen.append(say("overwrite=True")))
        other.start()
        other.join()
        assert seen == ["overwrite=True"]
    assert say("overwrite=True") == "overwrite=True"
