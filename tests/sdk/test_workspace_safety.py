"""A workspace on a shared machine: its files are its owner's alone whatever the umask, and
many processes creating one workspace at once all end up in the same one."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard import Experiment, Workspace
from modelyard.datastore import Datastore
from modelyard.errors import ConflictError, ValidationError
from modelyard.store.private import write_private_file
from tests.accounts import Account

PROCESSES = 10


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield int(request.param)
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_workspace_files_are_private_whatever_the_umask(umask: int, tmp_path: Path) -> None:
    ws = Workspace.create("w", folder=tmp_path / "ws")
    config = ws.write_config(tmp_path / "project")
    with Experiment(ws, "exp").start_logging() as run:
        run.log("loss", 0.5)
        run.upload_file("outputs/a.txt", config)
    folder = ws.folder
    assert _mode(folder) == 0o700
    for name in ("modelyard.db", "modelyard.db-wal", "modelyard.db-shm", "workspace.json"):
        assert _mode(folder / name) == 0o600, name
    assert _mode(config) == 0o600
    for name in ("artifacts", "datastores", "datastores/workspaceblobstore", "compute"):
        assert _mode(folder / name) == 0o700, name


def test_write_private_file_is_0600_and_replaces_whole(umask: int, tmp_path: Path) -> None:
    target = tmp_path / "secrets.json"
    target.write_text("old")
    os.chmod(target, 0o644)
    write_private_file(target, b'{"secret": "s3cr3t"}')
    assert _mode(target) == 0o600
    assert target.read_bytes() == b'{"secret": "s3cr3t"}'
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.json"]


def _create_behind_barrier(location: str, barrier: Any, results: Any) -> None:
    barrier.wait(timeout=60)
    try:
        ws = Workspace.create("race", folder=location, exist_ok=True)
        results.put(("ok", ws.get_details()["id"]))
    except Exception as error:
        results.put(("error", f"{type(error).__name__}: {error}"))


@pytest.mark.parametrize("round_", range(3))
def test_ten_processes_creating_one_workspace_share_one_id(round_: int, tmp_path: Path) -> None:
    # Three rounds: one race does not always interleave badly (without the lock, 3 of 4
    # single rounds gave a second id or a ConflictError).
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    location = str(tmp_path / "new" / "ws")
    processes = [
        context.Process(target=_create_behind_barrier, args=(location, barrier, results))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    errors = [detail for kind, detail in outcomes if kind == "error"]
    assert errors == []
    ids = {detail for _kind, detail in outcomes}
    assert len(ids) == 1
    ws = Workspace.get("race", folder=location)
    assert ws.get_details()["id"] in ids
    assert list(ws.datastores) == ["workspaceblobstore"]


def test_what_an_unfinished_create_left_is_named_as_such(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    (folder / "artifacts").mkdir(parents=True)
    (folder / "modelyard.db").write_bytes(b"")
    with pytest.raises(ConflictError, match=r"unfinished Workspace\.create"):
        Workspace.create("w", folder=folder)
    assert not (folder / "workspace.json").exists()


def test_write_config_to_a_path_too_long_is_a_validation_error(tmp_path: Path) -> None:
    ws = Workspace.create("w", folder=tmp_path / "ws")
    with pytest.raises(ValidationError) as info:
        ws.write_config(tmp_path / ("p" * 256))
    assert info.value.field == "path"


def test_another_account_reads_nothing_of_the_workspace(
    umask: int, mallory: Account, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A project folder others may enter (0755 all the way down to it, as a home or a shared
    # project folder often is): only the workspace's own modes keep Mallory out.
    shared = Path(tempfile.mkdtemp(prefix="my-shared-", dir="/tmp"))
    try:
        os.chmod(shared, 0o755)
        ws = Workspace.create("w", folder=shared / "ws")
        config = ws.write_config(shared)
        Datastore.register(ws, "raw", "memory://raw", key="AKIA-KEY", secret="s3cr3t-value")
        with Experiment(ws, "exp").start_logging() as run:
            run.log("loss", 0.5)
            run.upload_file("outputs/weights.bin", config)
        targets = [
            ws.folder / "modelyard.db",
            ws.folder / "modelyard.db-wal",
            ws.folder / "workspace.json",
            ws.folder / "secrets.json",
            config,
            ws.folder / "artifacts",
        ]

        def look() -> None:
            for target in targets:
                with pytest.raises(PermissionError):
                    if target.is_dir():
                        os.listdir(target)
                    else:
                        target.read_bytes()
            with pytest.raises(PermissionError):
                os.listdir(ws.folder)

        mallory.do(look)
    finally:
        shutil.rmtree(shared, ignore_errors=True)
