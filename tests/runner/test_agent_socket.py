"""The agent's socket lives in a folder this account owns; one planted under /tmp by another
local account is refused with a clear error instead of taking the runs."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard import Experiment, Workspace
from modelyard.compute import local
from modelyard.errors import ConfigError
from modelyard.runner import local_compute
from modelyard.script_run_config import ScriptRunConfig
from tests.accounts import Account

SCRIPTS = Path(__file__).parent / "scripts"


@pytest.fixture
def shared_tmp(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A world-writable sticky folder like /tmp, used as this process's temporary folder, so
    what the tests plant there never touches the machine's real /tmp."""
    tmp_path_factory.getbasetemp()  # pytest's own folders stay where they were
    folder = Path(tempfile.mkdtemp(prefix="my-tmp-", dir="/tmp"))
    os.chmod(folder, 0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def long_location(base: Path) -> Path:
    """A workspace folder whose path leaves no room for a Unix socket inside it."""
    return base / ("w" * 90)


def fixed_tmp_folder(shared_tmp: Path) -> Path:
    return shared_tmp / f"modelyard-{os.getuid()}"


def plant(kind: str, target: Path, account: Account, shared_tmp: Path) -> None:
    def work() -> None:
        if kind == "open folder":
            target.mkdir()
            os.chmod(target, 0o777)
        elif kind == "private folder":
            target.mkdir(mode=0o700)
        elif kind == "link to a folder":
            elsewhere = shared_tmp / "mallory-elsewhere"
            elsewhere.mkdir(mode=0o777)
            target.symlink_to(elsewhere)
        else:
            target.write_text("not a folder")

    account.do(work)


@pytest.mark.parametrize("kind", ["open folder", "private folder", "link to a folder", "file"])
def test_a_folder_planted_in_tmp_by_another_account_is_refused_at_submit(
    kind: str, mallory: Account, shared_tmp: Path, tmp_path: Path
) -> None:
    planted = fixed_tmp_folder(shared_tmp)
    plant(kind, planted, mallory, shared_tmp)
    ws = Workspace.create("ws", folder=long_location(tmp_path))

    with pytest.raises(ConfigError) as info:
        Experiment(ws, "exp").submit(ScriptRunConfig(SCRIPTS, "fail.py"))

    message = str(info.value)
    assert str(planted) in message and "another account" in message
    assert "Remove it" in message and "XDG_RUNTIME_DIR" in message
    # Nothing of this account went into the planted place.
    if kind != "file":
        assert not [p for p in planted.iterdir() if p.is_socket()]


def test_a_tmp_folder_of_this_account_open_to_others_is_refused(
    shared_tmp: Path, tmp_path: Path
) -> None:
    folder = fixed_tmp_folder(shared_tmp)
    folder.mkdir()
    os.chmod(folder, 0o777)
    ws = Workspace.create("ws", folder=long_location(tmp_path))

    with pytest.raises(ConfigError, match="has mode 0777, not 0700"):
        local.ensure_agent(ws.folder, ws.name)


def test_a_workspace_with_room_for_its_socket_runs_despite_a_planted_folder(
    mallory: Account, shared_tmp: Path
) -> None:
    plant("private folder", fixed_tmp_folder(shared_tmp), mallory, shared_tmp)
    ws = Workspace.create("ws", folder=shared_tmp / "ws")

    run = Experiment(ws, "exp").submit(ScriptRunConfig(SCRIPTS, "dump_env.py"))
    run.wait_for_completion()

    assert local_compute.socket_path(ws.folder) == str(
        ws.folder / "compute" / "local" / "agent.sock"
    )
    assert stat.S_ISSOCK(os.lstat(local_compute.socket_path(ws.folder)).st_mode)
    assert local.stop_agent(ws.folder)


def test_xdg_runtime_dir_is_used_only_when_it_is_this_accounts(
    mallory: Account, shared_tmp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace.create("ws", folder=long_location(tmp_path))
    runtime = shared_tmp / "run-user"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))

    run = Experiment(ws, "exp").submit(ScriptRunConfig(SCRIPTS, "dump_env.py"))
    run.wait_for_completion()
    assert Path(local_compute.socket_path(ws.folder)).parent == runtime
    assert local.stop_agent(ws.folder)

    theirs = shared_tmp / "run-mallory"
    mallory.do(lambda: theirs.mkdir(mode=0o700))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(theirs))
    assert Path(local_compute.socket_path(ws.folder)).parent == fixed_tmp_folder(shared_tmp)
    assert stat.S_IMODE(fixed_tmp_folder(shared_tmp).stat().st_mode) == 0o700
