"""A ``Model.register`` killed halfway leaves nothing behind once the next call on the
workspace has run, and a registration still running is never swept."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard import Model, Workspace
from tests.helpers import wait_for

FILES = 3000

REGISTER = """
import sys
from modelyard import Model, Workspace
ws = Workspace.get("test-ws", folder=sys.argv[1])
Model.register(ws, sys.argv[2], "big")
"""

OPEN = """
import sys
from modelyard import Workspace
Workspace.get("test-ws", folder=sys.argv[1])
"""


@pytest.fixture
def big_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "big"
    folder.mkdir()
    for index in range(FILES):
        (folder / f"part-{index:05d}.bin").write_bytes(b"w" * 64)
    return folder


def _staged(workspace: Workspace, name: str) -> list[Path]:
    return [p for p in (workspace.folder / "artifacts" / "models" / name).rglob("*") if p.is_file()]


def _locks(workspace: Workspace) -> list[Path]:
    folder = workspace.folder / "artifacts" / "models" / ".staging"
    return sorted(folder.iterdir()) if folder.exists() else []


def _kill_midway(workspace: Workspace, big_folder: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", REGISTER, str(workspace.folder), str(big_folder)]
    )
    try:
        wait_for(lambda: len(_staged(workspace, "big")) >= 100, timeout=120, interval=0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    # Killed halfway: files staged, no version written.
    assert 0 < len(_staged(workspace, "big")) < FILES
    assert workspace.models == {}


def test_a_killed_register_is_swept_by_the_next_register(
    workspace: Workspace, big_folder: Path, tmp_path: Path
) -> None:
    _kill_midway(workspace, big_folder)
    small = tmp_path / "small.bin"
    small.write_bytes(b"small")
    Model.register(workspace, small, "other")
    assert _staged(workspace, "big") == []
    assert [p.name for p in _locks(workspace)] == []
    assert list(workspace.models) == ["other"]


def test_a_killed_register_is_swept_when_the_workspace_is_next_opened(
    workspace: Workspace, big_folder: Path
) -> None:
    _kill_midway(workspace, big_folder)
    Workspace.get("test-ws", folder=workspace.folder)
    assert _staged(workspace, "big") == []
    assert _locks(workspace) == []


def test_an_upload_in_progress_is_not_swept(workspace: Workspace, tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(b"weights")
    backend = workspace._backend
    backend.upload_model_file("live", "0" * 32, "live/weights.bin", source)
    # Another process opens the workspace (and sweeps), then this one too.
    subprocess.run([sys.executable, "-c", OPEN, str(workspace.folder)], check=True, timeout=120)
    Workspace.get("test-ws", folder=workspace.folder)
    assert len(_staged(workspace, "live")) == 1
    backend.create_model("live", "0" * 32, "live")
    model = Model(workspace, "live")
    assert model.version == 1
    assert _locks(workspace) == []
    target = tmp_path / "out"
    model.download(target_dir=str(target))
    assert (target / "live" / "weights.bin").read_bytes() == b"weights"


def test_a_registered_model_survives_a_sweep_after_its_process_died(
    workspace: Workspace, tmp_path: Path
) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(b"weights")
    subprocess.run(
        [sys.executable, "-c", REGISTER, str(workspace.folder), str(source)],
        check=True,
        timeout=120,
    )
    Workspace.get("test-ws", folder=workspace.folder)
    assert Model(workspace, "big").version == 1
    assert len(_staged(workspace, "big")) == 1
