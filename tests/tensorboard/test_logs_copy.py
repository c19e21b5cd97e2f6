"""The copy of a run's ``logs/`` that TensorBoard reads, made through the backend of every
workspace kind: a folder, S3 (moto's server) and a modelyard server over HTTP."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard import Experiment, Run, Workspace
from modelyard.backend.records import FileInfo
from modelyard.errors import ValidationError
from modelyard.tensorboard.logs_copy import LogsFollower, RunLogsCopy
from tests.helpers import tree, wait_for
from tests.server_process import ServerProcess


@pytest.fixture(params=["folder", "s3", "http"])
def live_run(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Run]:
    """A running interactive run in a workspace of each kind."""
    if request.param == "folder":
        ws = Workspace.create("ws", folder=tmp_path / "ws")
    elif request.param == "s3":
        url, options = request.getfixturevalue("s3_store")
        ws = Workspace.create(
            "ws", folder=tmp_path / "ws", storage_url=url, storage_options=options
        )
    else:
        server: ServerProcess = request.getfixturevalue("http_server")
        monkeypatch.setenv("MODELYARD_TOKEN", server.admin_token)
        ws = Workspace.get(server.new_workspace(), server=server.url)
    run = Experiment(ws, "copy").start_logging()
    yield run
    if run.get_status() == "Running":
        run.complete()


def _store(run: Run, name: str, data: bytes) -> None:
    run._backend.upload_run_file(run.id, name, io.BytesIO(data))


def test_new_files_come_whole_and_grown_ones_by_their_tails(live_run: Run, tmp_path: Path) -> None:
    run, backend = live_run, live_run._backend
    root = tmp_path / "root"
    copy = RunLogsCopy(backend, run.id, root, run.id)
    copy.sync()  # no logs/ yet: an empty folder, no error
    assert tree(root) == {}
    first = b"".join(b"record %04d\n" % i for i in range(100))
    _store(run, "logs/train/events.out.tfevents.1", first)
    _store(run, "logs/notes.txt", b"hello")
    _store(run, "user_logs/not_a_log.txt", b"left out")
    copy.sync()
    assert tree(root) == {
        f"{run.id}/train/events.out.tfevents.1": first,
        f"{run.id}/notes.txt": b"hello",
    }
    local = root / run.id / "train" / "events.out.tfevents.1"
    inode = local.stat().st_ino
    more = b"".join(b"more %04d\n" % i for i in range(50))
    backend.append_run_file(run.id, "logs/train/events.out.tfevents.1", len(first), more)
    copy.sync()
    assert local.read_bytes() == first + more
    assert local.stat().st_ino == inode  # appended in place: TensorBoard's reader goes on
    _store(run, "logs/train/events.out.tfevents.1", b"rewritten, shorter")
    copy.sync()
    assert local.read_bytes() == b"rewritten, shorter"  # shrunk in the store: copied again


def test_the_follower_copies_while_the_run_is_active_and_ends_after_it(
    live_run: Run, tmp_path: Path
) -> None:
    run, backend = live_run, live_run._backend
    copy = RunLogsCopy(backend, run.id, tmp_path / "root", "shown-name")
    follower = LogsFollower([copy], interval=0.05)
    follower.start()
    try:
        _store(run, "logs/events.out.tfevents.1", b"abc")
        local = tmp_path / "root" / "shown-name" / "events.out.tfevents.1"
        wait_for(lambda: local.is_file() and local.read_bytes() == b"abc", timeout=30)
        backend.append_run_file(run.id, "logs/events.out.tfevents.1", 3, b"def")
        wait_for(lambda: local.read_bytes() == b"abcdef", timeout=30)
        backend.append_run_file(run.id, "logs/events.out.tfevents.1", 6, b"ghi")
        run.complete()
        wait_for(lambda: not follower.running, timeout=30)
        assert local.read_bytes() == b"abcdefghi"  # the last bytes, copied after the end
    finally:
        follower.stop()


class _ListsNamesTheStoreRefuses:
    """The run's real backend, listing besides its files names that would leave the run's
    folder. The backends refuse to store such names, so no real store can hold one: this
    stands for a store written by something else (a compromised server, another tool)."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def list_run_files(self, *args: Any, **kwargs: Any) -> list[FileInfo]:
        bad = [FileInfo("logs/../../outside.txt", 3), FileInfo("logs//etc/passwd", 3)]
        real: list[FileInfo] = self._backend.list_run_files(*args, **kwargs)
        return bad + real


def test_names_that_would_leave_the_folder_are_refused(
    workspace: Workspace, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = Experiment(workspace, "copy").start_logging()
    _store(run, "logs/events.out.tfevents.1", b"kept")
    root = tmp_path / "deep" / "root"
    copy = RunLogsCopy(_ListsNamesTheStoreRefuses(run._backend), run.id, root, run.id)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, "modelyard.tensorboard"):
        copy.sync()
        copy.sync()
    assert tree(tmp_path / "deep") == {f"root/{run.id}/events.out.tfevents.1": b"kept"}
    assert not (tmp_path / "outside.txt").exists()
    warned = [record.getMessage() for record in caplog.records]  # once each, not per sync
    assert len(warned) == 2, warned
    assert "'logs/../../outside.txt' is not copied" in warned[0] and "'..'" in warned[0]
    assert "'logs//etc/passwd' is not copied" in warned[1] and "absolute" in warned[1]
    run.complete()


def test_a_link_in_the_local_root_is_not_written_through(
    workspace: Workspace, tmp_path: Path
) -> None:
    run = Experiment(workspace, "copy").start_logging()
    _store(run, "logs/train/events.out.tfevents.1", b"data")
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    (root / run.id).mkdir(parents=True)
    (root / run.id / "train").symlink_to(outside)
    with pytest.raises(ValidationError, match=r"'train' .* is a symbolic link"):
        RunLogsCopy(run._backend, run.id, root, run.id).sync()
    assert tree(outside) == {}
    run.complete()
