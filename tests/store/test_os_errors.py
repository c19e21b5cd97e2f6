"""OS errors under the store leave as modelyard errors with the path and the cause: a name too
long for the file system, a full disk (a real 1 MiB tmpfs), a file where a folder must be."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard import Experiment, Run, Workspace
from modelyard.errors import ConflictError, StorageError, ValidationError

LONG = "a" * 256


@pytest.fixture
def run(workspace: Workspace) -> Iterator[Run]:
    with Experiment(workspace, "exp").start_logging() as run:
        yield run


@pytest.fixture
def small_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.txt"
    path.write_bytes(b"hello")
    return path


def test_a_name_part_of_256_characters_is_a_validation_error(run: Run, small_file: Path) -> None:
    for name in (f"outputs/{LONG}", f"outputs/{LONG}/model.bin"):
        with pytest.raises(ValidationError) as info:
            run.upload_file(name, small_file)
        assert info.value.field == "name"
        assert "256 bytes" in str(info.value) and "255" in str(info.value)
        with pytest.raises(ValidationError):
            run.upload_file(name, io.BytesIO(b"streamed"))
    assert run.get_file_names() == []


def test_a_workspace_location_too_long_is_a_validation_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        Workspace.create("w", folder=tmp_path / LONG / "ws")
    assert info.value.field == "folder"
    assert "255" in str(info.value)


def test_a_file_where_a_folder_must_be_is_a_conflict(run: Run, small_file: Path) -> None:
    run.upload_file("outputs/model", small_file)
    with pytest.raises(ConflictError) as info:
        run.upload_file("outputs/model/weights.bin", small_file)
    assert "outputs/model" in str(info.value)
    with pytest.raises(ConflictError):
        run.upload_file("outputs", io.BytesIO(b"x"))
    assert run.get_file_names() == ["outputs/model"]


@pytest.fixture
def full_artifacts(workspace: Workspace) -> Iterator[Path]:
    """The workspace's artifacts folder on a real 1 MiB tmpfs."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = workspace.folder / "artifacts"
    folder.mkdir(exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_in_upload_file_is_a_storage_error(
    full_artifacts: Path, run: Run, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2 << 20))
    with pytest.raises(StorageError) as info:
        run.upload_file("outputs/big.bin", big)
    message = str(info.value)
    assert "outputs/big.bin" in message and "No space left" in message and "free" in message
    with pytest.raises(StorageError, match="No space left"):
        run.upload_file("outputs/streamed.bin", io.BytesIO(os.urandom(2 << 20)))
    # Nothing half-written stays behind, so the space is free again for a small file.
    assert run.get_file_names() == []
    assert [p for p in full_artifacts.rglob("*") if p.is_file()] == []
    run.upload_file("outputs/small.txt", io.BytesIO(b"fits"))
    assert run.get_file_names() == ["outputs/small.txt"]
