"""A workspace whose files were damaged (garbage config, corrupt, cut-off, emptied or missing
database) is refused with an error naming the file and what to do, never opened as an empty,
new workspace that has forgotten its datastores.

The workspace is made by another process and copied per test, as a user's would be: this
process opens its database for the first time after the damage.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard import Workspace
from modelyard.errors import ConfigError, StorageError

MAKE_WORKSPACE = """
import sys
from modelyard import Experiment, Workspace
ws = Workspace.create("w", folder=sys.argv[1])
ws._backend.register_datastore("extra", "datastores/extra", {})
with Experiment(ws, "exp").start_logging() as run:
    for i in range(2000):
        run.log("loss", float(i))
ws.write_config(sys.argv[2])
"""


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with ``ws/`` (a workspace with two datastores and 2,000 points) and
    ``.modelyard/config.json`` naming it; its database checkpointed into the main file."""
    root = tmp_path_factory.mktemp("made")
    subprocess.run(
        [sys.executable, "-c", MAKE_WORKSPACE, str(root / "ws"), str(root)],
        check=True,
        timeout=120,
    )
    conn = sqlite3.connect(root / "ws" / "modelyard.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return root


@pytest.fixture
def project(made: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(made, copy)
    return copy


def _db(project: Path) -> Path:
    return project / "ws" / "modelyard.db"


def test_the_undamaged_copy_opens_with_its_datastores(project: Path) -> None:
    ws = Workspace.from_config(project)
    assert sorted(ws.datastores) == ["extra", "workspaceblobstore"]


@pytest.mark.parametrize(
    "garbage",
    [b"\xff\xfe\x00garbage\x80\x81", b"{not json", b"[1, 2, 3]", b""],
    ids=["invalid-utf8", "not-json", "wrong-shape", "empty"],
)
def test_a_garbage_config_file_is_a_config_error_naming_it(project: Path, garbage: bytes) -> None:
    config = project / ".modelyard" / "config.json"
    config.write_bytes(garbage)
    with pytest.raises(ConfigError) as info:
        Workspace.from_config(project)
    assert str(config) in str(info.value)
    assert "write_config" in str(info.value)


@pytest.mark.parametrize(
    "garbage",
    [b"\xc3\x28\xa0\xa1 binary", b'{"name": "w"', b'{"name": 3}'],
    ids=["invalid-utf8", "cut-off", "wrong-types"],
)
def test_a_garbage_workspace_file_is_a_config_error_naming_it(
    project: Path, garbage: bytes
) -> None:
    info_file = project / "ws" / "workspace.json"
    info_file.write_bytes(garbage)
    with pytest.raises(ConfigError) as info:
        Workspace.get("w", folder=project / "ws")
    assert str(info_file) in str(info.value)
    assert "backup" in str(info.value)


def _assert_refused(project: Path, *words: str) -> None:
    before = _db(project).read_bytes() if _db(project).exists() else None
    for _attempt in range(2):  # the second open must not find a database made by the first
        with pytest.raises(StorageError) as info:
            Workspace.from_config(project)
        message = str(info.value)
        assert str(_db(project)) in message
        assert "backup" in message
        for word in words:
            assert word in message
    after = _db(project).read_bytes() if _db(project).exists() else None
    assert after == before, "the damaged database was changed"


def test_a_database_emptied_to_zero_bytes_is_refused(project: Path) -> None:
    _db(project).write_bytes(b"")
    for side in ("-wal", "-shm"):
        Path(f"{_db(project)}{side}").unlink(missing_ok=True)
    _assert_refused(project, "empty")


def test_a_missing_database_is_refused(project: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{_db(project)}{suffix}").unlink(missing_ok=True)
    _assert_refused(project, "missing")
    assert not _db(project).exists()


def test_a_database_of_garbage_bytes_is_refused(project: Path) -> None:
    _db(project).write_bytes(os.urandom(64 * 1024))
    _assert_refused(project, "damaged")


def test_a_truncated_database_is_refused(project: Path) -> None:
    size = _db(project).stat().st_size
    assert size > 8 * 4096, "the fixture should make a database of many pages"
    with open(_db(project), "r+b") as f:
        f.truncate(size // 2)
    _assert_refused(project, "damaged")


def test_a_database_with_overwritten_pages_is_refused(project: Path) -> None:
    with open(_db(project), "r+b") as f:
        f.seek(4096)  # page 2 on: the schema and the first tables
        f.write(os.urandom(3 * 4096))
    _assert_refused(project, "damaged")
