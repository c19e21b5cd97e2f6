"""./logs synced by what changed: on a real S3 endpoint (moto's server) a grown file costs its
new bytes, a rewritten one goes whole; in a local folder a grown file is appended in place;
and a submitted run on an S3 workspace shows its live log and its ./logs file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from modelyard.backend.local import LocalBackend
from modelyard.experiment import Experiment
from modelyard.runner.logs_sync import LogsFolderSync
from modelyard.script_run_config import ScriptRunConfig
from modelyard.workspace import Workspace

SCRIPTS = Path(__file__).parent / "scripts"
NAME = "logs/events.txt"


class Folder:
    """A working folder whose ./logs a LogsFolderSync stores in a run of ``ws``."""

    def __init__(self, ws: Workspace, workdir: Path) -> None:
        backend = ws._backend
        assert isinstance(backend, LocalBackend)
        self.backend = backend
        self.run_id = Experiment(ws, "e").start_logging().id
        self.file = workdir / NAME
        self.file.parent.mkdir(parents=True)
        self.said: list[str] = []
        self.sync = LogsFolderSync(backend, self.run_id, workdir, say=self.said.append).sync

    def stored(self, name: str = NAME) -> bytes:
        return self.backend.read_run_file(self.run_id, name, 0, 1 << 30)

    def objects(self) -> dict[str, int]:
        """The objects below the run's logs on the store, by path below the run: size."""
        files = self.backend.files
        root = files.full_path(f"runs/{self.run_id}")
        found = files.fs.find(root, detail=True)
        return {p[len(root) + 1 :]: int(i["size"]) for p, i in found.items() if "/logs/" in p}


@pytest.fixture
def on_s3(tmp_path: Path, s3_store: tuple[str, dict[str, Any]]) -> Folder:
    url, options = s3_store
    ws = Workspace.create("ws", folder=tmp_path / "ws", storage_url=url, storage_options=options)
    return Folder(ws, tmp_path / "wd")


def _chunk(offset: int) -> str:
    return f"{NAME}.chunks/{offset:020d}"


def test_on_s3_a_growing_file_costs_its_new_bytes_and_a_rewritten_one_goes_whole(
    on_s3: Folder,
) -> None:
    on_s3.file.write_bytes(b"a" * 1000)
    on_s3.sync()
    assert on_s3.objects() == {NAME: 1000}  # new: whole
    with on_s3.file.open("ab") as f:
        f.write(b"b" * 500)
    on_s3.sync()
    # Grown: the whole file became chunk 0 on the store's side, and 500 bytes were sent.
    assert on_s3.objects() == {_chunk(0): 1000, _chunk(1000): 500}
    with on_s3.file.open("ab") as f:
        f.write(b"c" * 300)
    on_s3.sync()
    on_s3.sync()  # unchanged: nothing sent
    assert on_s3.objects() == {_chunk(0): 1000, _chunk(1000): 500, _chunk(1500): 300}
    assert on_s3.stored() == b"a" * 1000 + b"b" * 500 + b"c" * 300

    # Rewritten in place, same inode and longer: its old bytes changed, so it goes whole.
    with on_s3.file.open("r+b") as f:
        f.write(b"Z")
        f.seek(0, os.SEEK_END)
        f.write(b"d" * 100)
    on_s3.sync()
    rewritten = b"Z" + b"a" * 999 + b"b" * 500 + b"c" * 300 + b"d" * 100
    assert on_s3.objects()[NAME] == len(rewritten)
    assert on_s3.stored() == rewritten
    # And goes on from there by its tail again.
    with on_s3.file.open("ab") as f:
        f.write(b"e" * 10)
    on_s3.sync()
    assert on_s3.objects() == {_chunk(0): len(rewritten), _chunk(len(rewritten)): 10}
    assert on_s3.stored() == rewritten + b"e" * 10

    # Shrunk, and replaced by another file (a new inode): whole each time.
    on_s3.file.write_bytes(b"short")
    on_s3.sync()
    assert on_s3.stored() == b"short"
    replacement = on_s3.file.with_name("new.txt")
    replacement.write_bytes(b"replaced!")
    replacement.rename(on_s3.file)
    on_s3.sync()
    assert on_s3.stored() == b"replaced!"
    assert [i.path for i in on_s3.backend.list_run_files(on_s3.run_id, "logs")] == [NAME]


def test_in_a_folder_a_growing_file_is_appended_in_place(tmp_path: Path) -> None:
    folder = Folder(Workspace.create("ws", folder=tmp_path / "ws"), tmp_path / "wd")
    stored_path = folder.backend.files.local_path(f"runs/{folder.run_id}/{NAME}")
    folder.file.write_bytes(b"one\n")
    folder.sync()
    inode = stored_path.stat().st_ino
    with folder.file.open("ab") as f:
        f.write(b"two\n")
    folder.sync()
    assert stored_path.stat().st_ino == inode  # appended to, not written again
    assert folder.stored() == b"one\ntwo\n"
    with folder.file.open("r+b") as f:
        f.write(b"ONE\ntwo\nthree\n")
    folder.sync()
    assert stored_path.stat().st_ino != inode  # rewritten: stored whole, atomically
    assert folder.stored() == b"ONE\ntwo\nthree\n"


def test_links_in_logs_are_followed_only_to_files_inside(tmp_path: Path) -> None:
    folder = Folder(Workspace.create("ws", folder=tmp_path / "ws"), tmp_path / "wd")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    folder.file.write_text("mine")
    (folder.file.parent / "alias.txt").symlink_to("events.txt")
    (folder.file.parent / "leak.txt").symlink_to(secret)
    (folder.file.parent / ".modelyard-tmp-x").write_text("half")
    folder.sync()
    names = [i.path for i in folder.backend.list_run_files(folder.run_id, "logs")]
    assert names == ["logs/alias.txt", NAME]
    assert folder.stored("logs/alias.txt") == b"mine"


def test_a_run_on_s3_shows_its_live_log_and_its_grown_logs_file(
    tmp_path: Path, s3_store: tuple[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, options = s3_store
    ws = Workspace.create("ws", folder=tmp_path / "ws", storage_url=url, storage_options=options)
    run = Experiment(ws, "e").submit(ScriptRunConfig(SCRIPTS, "grow_logs.py"))
    details = run.wait_for_completion(show_output=True, raise_on_error=False)
    printed = capsys.readouterr().out
    context = printed + run._backend.read_run_file(run.id, "system_logs/supervisor.txt").decode()
    assert details["status"] == "Completed", context
    assert "output line 0" in printed and "output line 199" in printed and "grown" in printed
    log = run._backend.read_run_file(run.id, "user_logs/std_log.txt", 0, 1 << 30).decode()
    assert [line for line in log.splitlines() if line.startswith("output line")] == [
        f"output line {i}" for i in range(200)
    ], context
    first = b"".join(b"step %04d\n" % i for i in range(100))
    second = b"".join(b"more %04d\n" % i for i in range(150))
    assert run._backend.read_run_file(run.id, "logs/progress.txt") == first + second
    # Stored new and then grown: the first 1,000 bytes once, then just the 1,500 new ones.
    backend = run._backend
    assert isinstance(backend, LocalBackend)
    root = backend.files.full_path(f"runs/{run.id}/logs")
    found = backend.files.fs.find(root, detail=True)
    sizes = {path[len(root) + 1 :]: int(info["size"]) for path, info in found.items()}
    assert sizes == {
        f"progress.txt.chunks/{0:020d}": 1000,
        f"progress.txt.chunks/{1000:020d}": 1500,
    }, context
