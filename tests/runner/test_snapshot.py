"""Source snapshots: real folders on disk, stored through a real backend (SQLite and a folder,
memory:// files, a real S3 endpoint) and through a script's channel."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from modelyard.backend import snapshot as snapshot_module
from modelyard.backend.base import FileSource
from modelyard.backend.channel import ChannelBackend
from modelyard.backend.local import LocalBackend
from modelyard.backend.snapshot import (
    Snapshot,
    SnapshotTooLargeError,
    get_snapshot,
    restore_snapshot,
    take_snapshot,
)
from modelyard.errors import NotFoundError, PermissionDeniedError, StorageError, ValidationError
from modelyard.experiment import Experiment
from modelyard.workspace import Workspace
from tests.helpers import serve_to_script


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    return local_backend(tmp_path, (tmp_path / "store").as_uri())


def local_backend(
    tmp_path: Path, storage_url: str, options: dict[str, Any] | None = None
) -> LocalBackend:
    db = f"sqlite:///{tmp_path / 'snapshots.db'}"
    return LocalBackend("ws", db, storage_url, base_dir=tmp_path, storage_options=options)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    return folder


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for relpath, content in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)


def files_in(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def snapshot_files(backend: LocalBackend, source: Path, tmp_path: Path) -> set[str]:
    """The relative paths a snapshot of ``source`` holds, as a run would see them."""
    snap = take_snapshot(source, backend)
    target = tmp_path / f"restored-{snap.id[:12]}"
    if not target.exists():
        restore_snapshot(backend, snap.id, target)
    return set(files_in(target))


def blobs(backend: LocalBackend) -> set[str]:
    return {info.path for info in backend.files.list("snapshots/blobs")}


# --- ignore rules -------------------------------------------------------------------------------


def test_amlignore_wins_over_gitignore(backend: LocalBackend, src: Path, tmp_path: Path) -> None:
    write(src, {"train.py": "", "a.txt": "", "b.txt": ".", ".gitignore": "a.txt\n"})
    assert snapshot_files(backend, src, tmp_path) == {"train.py", "b.txt", ".gitignore"}

    write(src, {".amlignore": "b.txt\n"})
    assert snapshot_files(backend, src, tmp_path) == {
        "train.py",
        "a.txt",
        ".gitignore",
        ".amlignore",
    }


def test_negation_and_folder_patterns(backend: LocalBackend, src: Path, tmp_path: Path) -> None:
    write(
        src,
        {
            ".amlignore": "*.log\n!keep.log\ndata/\n/build\n# a comment\n",
            "train.py": "",
            "run.log": "",
            "keep.log": "",
            "sub/deep.log": "",
            "sub/keep.log": "",
            "data/x.bin": "",
            "sub/data/y.bin": "",
            "sub/data.txt": "",
            "build/out.o": "",
            "sub/build/kept.o": "",
        },
    )
    assert snapshot_files(backend, src, tmp_path) == {
        ".amlignore",
        "train.py",
        "keep.log",
        "sub/keep.log",
        "sub/data.txt",
        "sub/build/kept.o",
    }


def test_excluded_folder_cannot_be_reincluded(
    backend: LocalBackend, src: Path, tmp_path: Path
) -> None:
    # git's rule: once a folder is excluded, a later negation of a file inside it does nothing;
    # excluding the folder's contents instead ("logs/*") leaves room for one.
    write(
        src,
        {
            ".gitignore": "cache/\n!cache/keep.txt\nlogs/*\n!logs/keep.txt\n",
            "cache/keep.txt": "",
            "logs/a.txt": "",
            "logs/keep.txt": "",
        },
    )
    assert snapshot_files(backend, src, tmp_path) == {".gitignore", "logs/keep.txt"}


def test_nested_ignore_files_apply_below_their_folder(
    backend: LocalBackend, src: Path, tmp_path: Path
) -> None:
    write(
        src,
        {
            ".gitignore": "*.tmp\n",
            "top.tmp": "",
            "top.csv": "",
            "sub/.gitignore": "*.csv\n!keep.tmp\n",
            "sub/a.csv": "",
            "sub/a.tmp": "",
            "sub/keep.tmp": "",
            "sub/inner/b.csv": "",
            "other/c.csv": "",
        },
    )
    assert snapshot_files(backend, src, tmp_path) == {
        ".gitignore",
        "top.csv",
        "sub/.gitignore",
        "sub/keep.tmp",
        "other/c.csv",
    }


def test_git_folder_is_always_left_out(backend: LocalBackend, src: Path, tmp_path: Path) -> None:
    write(src, {"train.py": "", ".git/HEAD": "ref: refs/heads/main\n", "sub/.git": "gitdir: x"})
    assert snapshot_files(backend, src, tmp_path) == {"train.py"}


def test_workspace_folders_are_left_out_and_said_so(
    backend: LocalBackend, src: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(
        src,
        {
            "train.py": "print(1)",
            ".modelyard/x/modelyard.db": b"SQLite format 3\0",
            ".modelyard/notes.txt": "whatever is under .modelyard",
            "elsewhere/ws/workspace.json": json.dumps(
                {"format": 1, "name": "ws", "id": "abc", "created_at": 1.0}
            ),
            "elsewhere/ws/artifacts/run.txt": "a run's file",
            # Another project's workspace.json is data like any other.
            "config/workspace.json": json.dumps({"editor": "vim"}),
            "mine/data.csv": "a,b",
        },
    )
    caplog.set_level("INFO", logger="modelyard.backend.snapshot")

    snap = take_snapshot(src, backend, leave_out=[src / "mine"])

    assert snap.workspaces == (".modelyard/", "elsewhere/ws/", "mine/")
    restore_snapshot(backend, snap.id, tmp_path / "restored")
    assert set(files_in(tmp_path / "restored")) == {"train.py", "config/workspace.json"}
    assert ".modelyard/, elsewhere/ws/, mine/" in caplog.text
    assert "workspace folders are never part of a run's source" in caplog.text


def test_links_are_not_followed_out_of_the_folder(
    backend: LocalBackend, src: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the run")
    write(src, {"train.py": "print(1)\n", "lib/util.py": "X = 1\n"})
    (src / "alias.py").symlink_to("lib/util.py")
    (src / "leak.txt").symlink_to(outside)
    (src / "lib_link").symlink_to("lib", target_is_directory=True)
    (src / "broken").symlink_to("does-not-exist")
    os.mkfifo(src / "pipe")  # reading it would block the snapshot forever

    snap = take_snapshot(src, backend)
    assert snap.skipped == ("broken", "leak.txt", "lib_link", "pipe")
    target = tmp_path / "wd"
    restore_snapshot(backend, snap.id, target)
    assert files_in(target) == {
        "alias.py": b"X = 1\n",
        "lib/util.py": b"X = 1\n",
        "train.py": b"print(1)\n",
    }
    assert not (target / "alias.py").is_symlink()


# --- limits and bad folders ---------------------------------------------------------------------


def test_too_many_files_names_the_largest_folders(backend: LocalBackend, src: Path) -> None:
    write(src, {f"node_modules/pkg{i}/index.js": "x" for i in range(6)})
    write(src, {"train.py": "", "README.md": ""})

    with pytest.raises(SnapshotTooLargeError) as caught:
        take_snapshot(src, backend, max_files=5)
    message = str(caught.value)
    assert caught.value.field == "source_directory"
    assert "8 files (the limit is 5)" in message
    assert message.index("node_modules/ (6 bytes in 6 files)") < message.index("train.py")
    assert ".amlignore" in message and "max_files" in message
    assert backend.files.list("snapshots") == []


def test_too_many_bytes_names_the_largest_entries(backend: LocalBackend, src: Path) -> None:
    write(
        src,
        {
            "data/big.bin": b"\0" * 300_000,
            "data/small.bin": b"\0" * 20_000,
            "models/a.h5": b"\0" * 150_000,
            "train.py": "print('hi')\n",
            ".gitignore": "*.pyc\n",
        },
    )
    with pytest.raises(SnapshotTooLargeError) as caught:
        take_snapshot(src, backend, max_bytes=400_000)
    error = caught.value
    assert [entry for entry, _, _ in error.largest][:3] == ["data/", "data/big.bin", "models/"]
    message = str(error)
    assert "(the limit is 390.6 KiB)" in message
    assert "data/ (312.5 KiB in 2 files), data/big.bin (293.0 KiB)" in message
    assert "for example the line 'data/'" in message
    # Writing an .amlignore would turn the .gitignore off: the message says so.
    assert "replaces the folder's .gitignore" in message
    assert backend.files.list("snapshots") == []

    write(src, {".amlignore": "*.pyc\ndata/\n"})
    assert take_snapshot(src, backend, max_bytes=400_000).file_count == 4


def test_missing_folder_or_file_names_source_directory(backend: LocalBackend, src: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist") as missing:
        take_snapshot(src / "nope", backend)
    assert missing.value.field == "source_directory"

    write(src, {"train.py": ""})
    with pytest.raises(ValidationError, match="is a file, not a folder") as a_file:
        take_snapshot(src / "train.py", backend)
    assert a_file.value.field == "source_directory"


# --- content-addressed storage ------------------------------------------------------------------


def test_same_folder_twice_is_stored_once(backend: LocalBackend, src: Path) -> None:
    write(src, {"train.py": "print(1)\n", "lib/a.py": "A\n", "lib/copy_of_a.py": "A\n"})
    first = take_snapshot(src, backend)
    stored = backend.files.list("snapshots")
    assert first == Snapshot(first.id, 3, 13)
    assert len(blobs(backend)) == 2  # identical files share one blob

    second = take_snapshot(src, backend)
    assert second == first
    assert backend.files.list("snapshots") == stored


def test_changed_file_stores_only_its_blob(backend: LocalBackend, src: Path) -> None:
    write(src, {"train.py": "print(1)\n", "lib/a.py": "A\n", "lib/b.py": "B\n"})
    first = take_snapshot(src, backend)
    before = blobs(backend)

    write(src, {"lib/b.py": "B changed\n"})
    second = take_snapshot(src, backend)
    assert second.id != first.id
    new = blobs(backend) - before
    digest = hashlib.sha256(b"B changed\n").hexdigest()
    assert new == {f"snapshots/blobs/{digest[:2]}/{digest}"}
    assert len(backend.files.list("snapshots/manifests")) == 2


def test_file_changing_during_snapshot_is_refused(
    backend: LocalBackend, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(src, {"train.py": "print(1)\n"})
    real_hash = snapshot_module._hash_file

    def hash_then_write(item: snapshot_module.SourceFile) -> tuple[str, int, bool]:
        result = real_hash(item)
        Path(item.path).write_text("print(2)\n")  # a writer that lands after the hash
        return result

    monkeypatch.setattr(snapshot_module, "_hash_file", hash_then_write)
    with pytest.raises(ValidationError, match="changed while the snapshot was taken"):
        take_snapshot(src, backend)
    assert backend.files.list("snapshots") == []


# --- restoring ----------------------------------------------------------------------------------


@pytest.fixture(params=["local", "memory", "s3"])
def any_backend(
    request: pytest.FixtureRequest, tmp_path: Path, clean_memory_fs: None
) -> LocalBackend:
    """A backend on each kind of store: a folder (blobs come back as local files, copied with
    copy_file_range), memory:// and a real S3 endpoint (streams, checked by SHA-256)."""
    if request.param == "local":
        return local_backend(tmp_path, (tmp_path / "store").as_uri())
    if request.param == "memory":
        return local_backend(tmp_path, "memory://snapshots")
    url, options = request.getfixturevalue("s3_store")
    return local_backend(tmp_path, url, options)


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes the restore copied with copy_fd (the local-file path), each copy still made."""
    made: list[int] = []
    real = snapshot_module.copy_fd

    def counted(source: int, target: int, size: int) -> tuple[int, int]:
        made.append(size)
        return real(source, target, size)

    monkeypatch.setattr(snapshot_module, "copy_fd", counted)
    return made


def test_round_trip_keeps_bytes_and_executable_bits(
    any_backend: LocalBackend, src: Path, tmp_path: Path, copies: list[int]
) -> None:
    backend = any_backend
    write(
        src,
        {
            "train.py": "import sys\n",
            "run.sh": "#!/bin/sh\necho hi\n",
            "data/weights.bin": os.urandom(3 << 20),
            "data/empty": b"",
            "deep/er/still.txt": "deep\n",
        },
    )
    (src / "run.sh").chmod(0o755)

    snap = take_snapshot(src, backend)
    target = tmp_path / "work" / "wd"
    restored = restore_snapshot(backend, snap.id, target)
    assert restored == Snapshot(snap.id, snap.file_count, snap.total_bytes)
    assert files_in(target) == files_in(src)
    assert os.stat(target / "run.sh").st_mode & stat.S_IXUSR
    assert not os.stat(target / "train.py").st_mode & stat.S_IXUSR
    assert get_snapshot(backend, snap.id) == restored
    # A folder's blobs are copied in the kernel; other stores' are streamed and hashed.
    local = backend.files.is_local
    assert sorted(copies) == (
        sorted(os.path.getsize(p) for p in src.rglob("*") if p.is_file()) if local else []
    )

    # The run writes into its copy; the stored snapshot stays as it was.
    (target / "train.py").write_text("overwritten by the run\n")
    again = tmp_path / "wd2"
    restore_snapshot(backend, snap.id, again)
    assert (again / "train.py").read_text() == "import sys\n"


def store_manifest(backend: LocalBackend, manifest: dict[str, object]) -> str:
    data = json.dumps(manifest).encode()
    snapshot_id = hashlib.sha256(data).hexdigest()
    backend.files.write_bytes(f"snapshots/manifests/{snapshot_id}.json", data)
    return snapshot_id


@pytest.mark.parametrize(
    "bad_path", ["../escaped.txt", "/etc/escaped.txt", "a/../../escaped.txt", "./a.txt", "a\\b"]
)
def test_bad_manifest_path_is_refused(backend: LocalBackend, tmp_path: Path, bad_path: str) -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    backend.files.write_bytes(f"snapshots/blobs/{digest[:2]}/{digest}", b"x")
    entry = {"sha256": digest, "size": 1, "executable": False}
    snapshot_id = store_manifest(
        backend, {"format": 1, "files": {"ok.txt": entry, bad_path: entry}}
    )
    target = tmp_path / "deep" / "wd"
    with pytest.raises(ValidationError) as caught:
        restore_snapshot(backend, snapshot_id, target)
    assert caught.value.field == "snapshot manifest"
    assert not target.exists()
    assert not (tmp_path / "deep" / "escaped.txt").exists()


def test_file_that_is_also_a_folder_is_refused(backend: LocalBackend, tmp_path: Path) -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    entry = {"sha256": digest, "size": 1, "executable": False}
    snapshot_id = store_manifest(backend, {"format": 1, "files": {"a": entry, "a/b": entry}})
    with pytest.raises(ValidationError, match="both a file and a folder"):
        restore_snapshot(backend, snapshot_id, tmp_path / "wd")


def test_missing_corrupt_and_malformed_snapshots(
    backend: LocalBackend, src: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError) as bad_id:
        restore_snapshot(backend, "../../etc", tmp_path / "wd")
    assert bad_id.value.field == "snapshot_id"
    with pytest.raises(NotFoundError):
        get_snapshot(backend, "0" * 64)

    write(src, {"train.py": "print(1)\n"})
    snap = take_snapshot(src, backend)
    manifest = f"snapshots/manifests/{snap.id}.json"
    backend.files.write_bytes(
        manifest, backend.files.read_bytes(manifest).replace(b'"size":', b'"size": ')
    )
    with pytest.raises(StorageError, match="corrupt"):
        restore_snapshot(backend, snap.id, tmp_path / "wd")

    unknown_format = store_manifest(backend, {"format": 99, "files": {}})
    with pytest.raises(StorageError, match="upgrade modelyard"):
        get_snapshot(backend, unknown_format)


def test_missing_blob_leaves_nothing_behind(
    backend: LocalBackend, src: Path, tmp_path: Path
) -> None:
    write(src, {"a.txt": "a\n", "b/c.txt": "c\n"})
    snap = take_snapshot(src, backend)
    digest = hashlib.sha256(b"c\n").hexdigest()
    backend.files.delete(f"snapshots/blobs/{digest[:2]}/{digest}")
    target = tmp_path / "wd"
    with pytest.raises(StorageError, match="missing"):
        restore_snapshot(backend, snap.id, target)
    assert list(target.iterdir()) == []


def test_restore_refuses_a_folder_in_use(backend: LocalBackend, src: Path, tmp_path: Path) -> None:
    write(src, {"train.py": ""})
    snap = take_snapshot(src, backend)
    target = tmp_path / "wd"
    write(target, {"left-over.txt": ""})
    with pytest.raises(ValidationError, match="not empty") as caught:
        restore_snapshot(backend, snap.id, target)
    assert caught.value.field == "target_dir"


@pytest.mark.slow
def test_unchanged_folder_of_2000_files_stores_nothing_again(
    backend: LocalBackend, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(src, {f"pkg{i % 40}/mod{i}.py": f"VALUE = {i}\n" * 50 for i in range(1999)})
    write(src, {".gitignore": "__pycache__/\n*.pyc\n"})
    first = take_snapshot(src, backend)
    assert first.file_count == 2000

    # What makes a repeated snapshot cheap: it writes nothing. Every write of the store is
    # counted (and still made).
    writes: list[str] = []
    for method in ("open_write", "put_file"):  # write_bytes goes through open_write
        real = getattr(backend.files, method)

        def counted(*args: object, _real: object = real, **kwargs: object) -> object:
            writes.append(str(args))
            return _real(*args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(backend.files, method, counted)
    second = take_snapshot(src, backend)
    assert second == first
    assert writes == []
    write(src, {"pkg0/mod0.py": "VALUE = -1\n"})
    third = take_snapshot(src, backend)
    assert third.id != first.id
    assert len(writes) == 2  # the changed file's blob and the new manifest


def test_restore_without_copy_file_range(
    backend: LocalBackend, src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Some filesystems (and kernels before 5.3 across filesystems) refuse copy_file_range;
    # the restore falls back to reading and writing.
    def refuse(*args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    write(src, {"big.bin": os.urandom(9 << 20), "small.txt": "s\n"})
    snap = take_snapshot(src, backend)
    restore_snapshot(backend, snap.id, tmp_path / "wd")
    assert files_in(tmp_path / "wd") == files_in(src)


# --- through the contract -----------------------------------------------------------------------


class CountingBackend(LocalBackend):
    """The real local backend, counting the snapshot calls that would cross a network."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[int] = []  # digests per missing_snapshot_blobs call
        self.uploaded: list[str] = []
        self._count_lock = threading.Lock()  # uploads run in several threads

    def missing_snapshot_blobs(self, digests: list[str]) -> list[str]:
        self.asked.append(len(digests))
        return super().missing_snapshot_blobs(digests)

    def upload_snapshot_blob(self, digest: str, source: FileSource) -> None:
        with self._count_lock:
            self.uploaded.append(digest)
        super().upload_snapshot_blob(digest, source)


def test_second_snapshot_uploads_only_the_changed_blob(src: Path, tmp_path: Path) -> None:
    backend = CountingBackend(
        "ws", f"sqlite:///{tmp_path / 'c.db'}", (tmp_path / "store").as_uri(), base_dir=tmp_path
    )
    # 1,001 different files and one copy: two questions (1,000 digests, then 1), 1,001 blobs.
    write(src, {f"pkg/mod{i}.py": f"VALUE = {i}\n" for i in range(1001)})
    write(src, {"copy_of_mod0.py": "VALUE = 0\n"})
    first = take_snapshot(src, backend, max_files=5000)
    assert first.file_count == 1002
    assert backend.asked == [1000, 1]
    assert len(backend.uploaded) == len(set(backend.uploaded)) == 1001

    backend.asked.clear()
    backend.uploaded.clear()
    assert take_snapshot(src, backend, max_files=5000) == first
    assert backend.asked == [] and backend.uploaded == []  # its manifest is found: done

    write(src, {"pkg/mod7.py": "VALUE = 'changed'\n"})
    second = take_snapshot(src, backend, max_files=5000)
    assert second.id != first.id
    assert backend.asked == [1000, 1]
    assert backend.uploaded == [hashlib.sha256(b"VALUE = 'changed'\n").hexdigest()]
    target = tmp_path / "wd"
    restore_snapshot(backend, second.id, target)
    assert files_in(target) == files_in(src)


@pytest.mark.parametrize("any_backend", ["local", "s3"], indirect=True)
def test_a_corrupted_blob_is_found_on_restore(
    any_backend: LocalBackend, src: Path, tmp_path: Path
) -> None:
    backend = any_backend
    write(src, {"train.py": "print('the real script')\n", "lib/util.py": "X = 1\n"})
    snap = take_snapshot(src, backend)
    digest = hashlib.sha256(b"print('the real script')\n").hexdigest()
    blob = f"snapshots/blobs/{digest[:2]}/{digest}"
    if backend.files.is_local:
        # Copied by copy_file_range, a local blob is checked by its size.
        backend.files.write_bytes(blob, b"print('tampered')\n")
    else:
        # Streamed, it is checked by its SHA-256: the same size with other bytes is caught.
        backend.files.write_bytes(blob, b"print('the fake script')\n")
    target = tmp_path / "wd"
    with pytest.raises(StorageError, match=r"for 'train.py' is corrupt"):
        restore_snapshot(backend, snap.id, target)
    assert list(target.iterdir()) == []  # no half-restored folder for the run


def test_a_script_snapshots_through_its_channel(
    workspace: Workspace, src: Path, tmp_path: Path
) -> None:
    # What exp.submit of a child run does inside a script: every call goes to the supervisor.
    side = serve_to_script(workspace, Experiment(workspace, "exp").start_logging())
    try:
        client = side.run._backend
        assert isinstance(client, ChannelBackend)
        write(
            src,
            {"train.py": "print(1)\n", "run.sh": "#!/bin/sh\n", "data/w.bin": os.urandom(1 << 16)},
        )
        (src / "run.sh").chmod(0o755)
        snap = take_snapshot(src, client)
        for name, reader in (("script", client), ("supervisor", workspace._backend)):
            target = tmp_path / f"wd-{name}"
            assert restore_snapshot(reader, snap.id, target).file_count == 3
            assert files_in(target) == files_in(src)
            assert os.stat(target / "run.sh").st_mode & stat.S_IXUSR

        # The supervisor's backend checks every digest a script sends.
        claimed = hashlib.sha256(b"what the blob should hold").hexdigest()
        with pytest.raises(ValidationError, match="hash to") as caught:
            client.upload_snapshot_blob(claimed, io.BytesIO(b"something else"))
        assert caught.value.field == "source"
        assert workspace._backend.missing_snapshot_blobs([claimed]) == [claimed]
        with pytest.raises(ValidationError) as bad_id:
            client.get_snapshot_manifest("../../etc/passwd")
        assert bad_id.value.field == "snapshot_id"
        # A script may not have the supervisor read a file outside the run's folder for it.
        passwd = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
        with pytest.raises(PermissionDeniedError, match="working folder"):
            client._call("upload_snapshot_blob", (passwd, Path("/etc/passwd")), {})
        assert workspace._backend.missing_snapshot_blobs([passwd]) == [passwd]
    finally:
        side.server.stop()
