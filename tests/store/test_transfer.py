"""Copying files between local folders and file stores (file:// and memory://), both ways."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from modelyard.errors import ConflictError, StorageError, ValidationError
from modelyard.store import local_copy, transfer
from modelyard.store.files import TMP_PREFIX, FileStore

FILES = {
    "a.txt": b"alpha",
    "empty.bin": b"",
    "sub/b.txt": b"bravo" * 100,
    "sub/deeper/c.bin": os.urandom(5000),
    "name with spaces/d é.txt": b"delta",
}


pytestmark = pytest.mark.usefixtures("clean_memory_fs")


@pytest.fixture(params=["unnamed", "named"])
def local_writes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Local files are written unnamed (O_TMPFILE) and linked into place where the system
    allows, else under a temporary name: run a test both ways."""
    if request.param == "named":
        monkeypatch.setattr(local_copy, "_UNNAMED_FILES", False)
    return str(request.param)


@pytest.fixture(params=["file", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FileStore:
    if request.param == "file":
        return FileStore(f"file://{tmp_path / 'store'}")
    if request.param == "s3":
        url, options = request.getfixturevalue("s3_store")
        return FileStore(url, options)
    return FileStore("memory://store")


def make_files(root: Path, files: dict[str, bytes]) -> list[tuple[Path, str]]:
    pairs = []
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        pairs.append((path, name))
    return pairs


def store_tree(store: FileStore) -> dict[str, bytes]:
    """Every entry below the store's root, temporary files and folders included."""
    try:
        found = store.fs.find(store.root, withdirs=True, detail=True)
    except FileNotFoundError:
        return {}
    start = len(store.root) + 1
    return {
        path[start:]: (b"<dir>" if info["type"] == "directory" else store.fs.cat_file(path))
        for path, info in found.items()
        if path.rstrip("/") != store.root
    }


def local_tree(root: Path) -> dict[str, bytes]:
    """Every entry below ``root``, folders and temporary files included."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): b"<dir>" if p.is_dir() else p.read_bytes()
        for p in root.rglob("*")
    }


def quiet(**kwargs: object) -> dict[str, object]:
    return {"show_progress": False, **kwargs}


# -- round trips ----------------------------------------------------------------------------


def test_upload_then_download_gives_the_same_files(
    store: FileStore, tmp_path: Path, local_writes: str
) -> None:
    pairs = make_files(tmp_path / "src", FILES)

    up = transfer.upload(pairs, store, "data/v1", **quiet())

    assert up.files == len(FILES)
    assert up.bytes == sum(len(b) for b in FILES.values())
    assert up.skipped == ()
    assert {i.path: i.size for i in store.list()} == {
        f"data/v1/{name}": len(data) for name, data in FILES.items()
    }
    down = transfer.download(store, store.list("data"), tmp_path / "out", **quiet())
    assert down.files == len(FILES)
    assert local_tree(tmp_path / "out" / "data" / "v1") == {
        **{name: data for name, data in FILES.items()},
        "sub": b"<dir>",
        "sub/deeper": b"<dir>",
        "name with spaces": b"<dir>",
    }


def test_download_takes_plain_names_as_well_as_listings(store: FileStore, tmp_path: Path) -> None:
    transfer.upload(make_files(tmp_path / "src", FILES), store, **quiet())

    result = transfer.download(store, ["sub/b.txt"], tmp_path / "out", **quiet())

    assert result.files == 1
    assert local_tree(tmp_path / "out") == {"sub": b"<dir>", "sub/b.txt": FILES["sub/b.txt"]}


def test_big_files_are_copied_in_chunks(
    store: FileStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_writes: str
) -> None:
    monkeypatch.setattr(local_copy, "CHUNK_SIZE", 1000)
    data = os.urandom(10_500)
    pairs = make_files(tmp_path / "src", {"big.bin": data})

    assert transfer.upload(pairs, store, **quiet()).bytes == len(data)
    assert store.read_bytes("big.bin") == data
    assert transfer.download(store, store.list(), tmp_path / "out", **quiet()).bytes == len(data)
    assert (tmp_path / "out" / "big.bin").read_bytes() == data


def test_many_small_files_on_several_threads(tmp_path: Path, local_writes: str) -> None:
    files = {f"d{i % 7}/f{i}.txt": f"file {i}".encode() for i in range(500)}
    store = FileStore(f"file://{tmp_path / 'store'}")

    result = transfer.upload(make_files(tmp_path / "src", files), store, "x", **quiet())

    assert (result.files, result.bytes) == (500, sum(len(b) for b in files.values()))
    assert {i.path: store.read_bytes(i.path) for i in store.list()} == {
        f"x/{name}": data for name, data in files.items()
    }
    back = transfer.download(store, store.list("x"), tmp_path / "out", **quiet())
    assert back.files == 500
    assert all((tmp_path / "out" / "x" / n).read_bytes() == d for n, d in files.items())


@pytest.mark.parametrize("failing", [errno.EXDEV, errno.ENOSYS, errno.EINVAL])
def test_copies_fall_back_when_copy_file_range_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: int
) -> None:
    def refuse(*args: object) -> int:
        raise OSError(failing, os.strerror(failing))

    monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    # ENOSYS drops copy_file_range for the whole process: let it come back after the test.
    monkeypatch.setattr(local_copy, "_missing", set())
    monkeypatch.setattr(local_copy, "_best", local_copy._METHODS[0])
    store = FileStore(f"file://{tmp_path / 'store'}")

    transfer.upload(make_files(tmp_path / "src", FILES), store, **quiet())

    assert {i.path: store.read_bytes(i.path) for i in store.list()} == FILES
    assert (local_copy._best is local_copy._copy_file_range) == (failing != errno.ENOSYS)


def test_a_filesystem_without_unnamed_files_gets_temporary_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # open(folder, O_WRONLY | O_DIRECTORY) fails with EISDIR, as O_TMPFILE does where a
    # filesystem cannot make unnamed files.
    monkeypatch.setattr(local_copy, "_TMPFILE", os.O_DIRECTORY)
    store = FileStore(f"file://{tmp_path / 'store'}")

    result = transfer.upload(make_files(tmp_path / "src", FILES), store, **quiet())

    assert result.files == len(FILES)
    assert {i.path: store.read_bytes(i.path) for i in store.list()} == FILES
    assert not [p for p in local_tree(tmp_path / "store") if TMP_PREFIX in p]


def test_a_copy_file_range_that_copies_nothing_is_not_taken_for_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "copy_file_range", lambda *args: 0, raising=False)
    store = FileStore(f"file://{tmp_path / 'store'}")

    transfer.upload(make_files(tmp_path / "src", FILES), store, **quiet())

    assert {i.path: store.read_bytes(i.path) for i in store.list()} == FILES


def test_a_failed_copy_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_writes: str
) -> None:
    real_copy = local_copy.copy_fd

    def copy_until_disk_full(source: int, target: int, size: int, *args: Any) -> tuple[int, int]:
        if size == len(FILES["sub/b.txt"]):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_copy(source, target, size, *args)

    monkeypatch.setattr(local_copy, "copy_fd", copy_until_disk_full)
    store = FileStore(f"file://{tmp_path / 'store'}")

    with pytest.raises(StorageError, match=r"upload of 'sub/b\.txt' failed: .*No space left"):
        transfer.upload(make_files(tmp_path / "src", FILES), store, **quiet())

    written = local_tree(tmp_path / "store")
    assert not [name for name in written if TMP_PREFIX in name]
    assert "sub/b.txt" not in written
    assert all(written[name] == FILES[name] for name in written if written[name] != b"<dir>")


def test_ctrl_c_stops_every_thread_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_writes: str
) -> None:
    files = {f"d{i % 5}/f{i}.txt": b"x" * (i + 1) for i in range(300)}
    real_copy = local_copy.copy_fd
    calls = []

    def copy_then_interrupt(source: int, target: int, size: int, *args: Any) -> tuple[int, int]:
        calls.append(size)
        if len(calls) == 100:
            raise KeyboardInterrupt
        return real_copy(source, target, size, *args)

    monkeypatch.setattr(local_copy, "copy_fd", copy_then_interrupt)
    store = FileStore(f"file://{tmp_path / 'store'}")

    with pytest.raises(KeyboardInterrupt):
        transfer.upload(make_files(tmp_path / "src", files), store, "x", **quiet())

    written = local_tree(tmp_path / "store" / "x")
    assert not [name for name in written if TMP_PREFIX in name]
    copied = {name: data for name, data in written.items() if data != b"<dir>"}
    assert 0 < len(copied) < 300
    assert all(files[name] == data for name, data in copied.items())


def test_object_stores_take_files_directly_several_at_a_time(
    tmp_path: Path, s3_store: tuple[str, dict[str, Any]]
) -> None:
    # A real S3 endpoint (moto's server): no renames there, so no temporary names.
    url, options = s3_store
    store = FileStore(url, options)
    assert not store.renames
    files = {f"d{i % 3}/f{i}.txt": f"file {i}".encode() for i in range(100)}

    result = transfer.upload(make_files(tmp_path / "src", files), store, "x", **quiet())

    assert result.files == 100
    assert {k: v for k, v in store_tree(store).items() if v != b"<dir>"} == {
        f"x/{name}": data for name, data in files.items()
    }
    back = transfer.download(store, store.list(), tmp_path / "out", **quiet())
    assert (back.files, back.bytes) == (100, result.bytes)


# -- overwrite ------------------------------------------------------------------------------


def test_upload_without_overwrite_skips_existing_files_and_says_so(
    store: FileStore, tmp_path: Path, local_writes: str
) -> None:
    transfer.upload(make_files(tmp_path / "v1", FILES), store, **quiet())
    changed = {name: data + b"!" for name, data in FILES.items()}
    out = io.StringIO()

    result = transfer.upload(
        make_files(tmp_path / "v2", {**changed, "new.txt": b"new"}),
        store,
        console=Console(file=out, force_terminal=False),
    )

    assert result.files == 1
    assert sorted(result.skipped) == sorted(FILES)
    assert {i.path: store.read_bytes(i.path) for i in store.list()} == {**FILES, "new.txt": b"new"}
    line = out.getvalue()
    assert "Uploaded 1 file " in line
    assert f"skipped {len(FILES)} that exist" in line
    assert "overwrite=True" in line


def test_upload_with_overwrite_replaces_files(
    store: FileStore, tmp_path: Path, local_writes: str
) -> None:
    transfer.upload(make_files(tmp_path / "v1", FILES), store, **quiet())
    changed = {name: data + b"!" for name, data in FILES.items()}

    result = transfer.upload(make_files(tmp_path / "v2", changed), store, **quiet(overwrite=True))

    assert (result.files, result.skipped) == (len(FILES), ())
    assert {i.path: store.read_bytes(i.path) for i in store.list()} == changed


def test_download_without_overwrite_keeps_local_files(
    store: FileStore, tmp_path: Path, local_writes: str
) -> None:
    transfer.upload(make_files(tmp_path / "src", FILES), store, **quiet())
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "b.txt").write_bytes(b"mine")

    result = transfer.download(store, store.list(), out, **quiet())

    assert result.skipped == ("sub/b.txt",)
    assert result.files == len(FILES) - 1
    assert (out / "sub" / "b.txt").read_bytes() == b"mine"
    again = transfer.download(store, store.list(), out, **quiet(overwrite=True))
    assert again.files == len(FILES)
    assert (out / "sub" / "b.txt").read_bytes() == FILES["sub/b.txt"]


def test_a_file_written_meanwhile_by_another_process_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_writes: str
) -> None:
    store = FileStore(f"file://{tmp_path / 'store'}")
    real_copy = local_copy.copy_fd

    def copy_while_someone_writes(
        source: int, target: int, size: int, *args: Any
    ) -> tuple[int, int]:
        (tmp_path / "store" / "a.txt").write_bytes(b"theirs")
        return real_copy(source, target, size, *args)

    monkeypatch.setattr(local_copy, "copy_fd", copy_while_someone_writes)

    result = transfer.upload(make_files(tmp_path / "src", {"a.txt": b"ours"}), store, **quiet())

    assert (result.files, result.bytes, result.skipped) == (0, 0, ("a.txt",))
    assert local_tree(tmp_path / "store") == {"a.txt": b"theirs"}


# -- bad input: ValidationError naming the field, and nothing written -----------------------

BAD_NAMES = ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "a\\b.txt", "a\x00b", "", "."]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_upload_refuses_a_bad_file_name_before_writing_anything(
    store: FileStore, tmp_path: Path, bad: str
) -> None:
    pairs = make_files(tmp_path / "src", FILES)
    before = store_tree(store)

    with pytest.raises(ValidationError) as caught:
        transfer.upload([*pairs, (pairs[0][0], bad)], store, "t", **quiet())

    assert caught.value.field == "files"
    assert store_tree(store) == before == {}
    assert not (tmp_path / "escape.txt").exists()


@pytest.mark.parametrize("bad", [p for p in BAD_NAMES if p not in ("", ".")])
def test_upload_refuses_a_bad_target_path(store: FileStore, tmp_path: Path, bad: str) -> None:
    pairs = make_files(tmp_path / "src", FILES)

    with pytest.raises(ValidationError) as caught:
        transfer.upload(pairs, store, bad, **quiet())

    assert caught.value.field == "target_path"
    assert store_tree(store) == {}


def test_the_field_name_is_the_callers(store: FileStore, tmp_path: Path) -> None:
    pairs = make_files(tmp_path / "src", {"a": b"x"})

    with pytest.raises(ValidationError) as caught:
        transfer.upload([(pairs[0][0], "../a")], store, **quiet(field="src_dir"))

    assert caught.value.field == "src_dir"
    assert str(caught.value).startswith("src_dir: ")


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["a.txt", "./a.txt"], "two files would both be written to 'a.txt'"),
        (["a", "a/b"], "'a' would be both a file and a folder"),
        ([f"{TMP_PREFIX}x"], "kept for temporary files"),
    ],
)
def test_upload_refuses_names_that_collide(
    store: FileStore, tmp_path: Path, names: list[str], message: str
) -> None:
    source = make_files(tmp_path / "src", {"f": b"x"})[0][0]

    with pytest.raises(ValidationError, match=message):
        transfer.upload([(source, name) for name in names], store, **quiet())

    assert store_tree(store) == {}


@pytest.mark.parametrize("make", ["missing", "folder"])
def test_upload_refuses_sources_that_are_not_files(
    store: FileStore, tmp_path: Path, make: str
) -> None:
    pairs = make_files(tmp_path / "src", FILES)
    odd = tmp_path / "odd"
    if make == "folder":
        odd.mkdir()

    with pytest.raises(ValidationError, match=r"does not exist|is not a file") as caught:
        transfer.upload([*pairs, (odd, "odd")], store, **quiet())

    assert caught.value.field == "files"
    assert store_tree(store) == {}


def test_upload_refuses_a_name_below_a_file_in_the_store(tmp_path: Path) -> None:
    store = FileStore(f"file://{tmp_path / 'store'}")
    store.write_bytes("data", b"a file")
    pairs = make_files(tmp_path / "src", FILES)

    with pytest.raises(ConflictError, match=r"'data' .* is a file, not a folder"):
        transfer.upload(pairs, store, "data/v1", **quiet())

    assert store_tree(store) == {"data": b"a file"}


def test_upload_refuses_a_name_that_is_a_folder_in_the_store(tmp_path: Path) -> None:
    store = FileStore(f"file://{tmp_path / 'store'}")
    store.write_bytes("taken/inside.txt", b"x")
    pairs = make_files(tmp_path / "src", FILES)
    before = store_tree(store)

    with pytest.raises(ValidationError, match="'taken' is a folder"):
        transfer.upload([*pairs, (pairs[0][0], "taken")], store, **quiet(overwrite=True))

    assert store_tree(store) == before


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_download_refuses_bad_names_before_writing_anything(
    store: FileStore, tmp_path: Path, bad: str
) -> None:
    transfer.upload(make_files(tmp_path / "src", FILES), store, **quiet())
    out = tmp_path / "out" / "inner"

    with pytest.raises(ValidationError) as caught:
        transfer.download(store, ["a.txt", bad], out, **quiet())

    assert caught.value.field == "names"
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "escape.txt").exists()


def test_download_never_writes_through_a_link_out_of_the_target(
    store: FileStore, tmp_path: Path
) -> None:
    transfer.upload(make_files(tmp_path / "src", FILES), store, **quiet())
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(outside, target_is_directory=True)
    before = local_tree(tmp_path / "out")

    with pytest.raises(ValidationError, match=r"'sub' .* is a symbolic link") as caught:
        transfer.download(store, store.list(), out, **quiet(overwrite=True))

    assert caught.value.field == "target_path"
    assert list(outside.iterdir()) == []
    assert local_tree(tmp_path / "out") == before


def test_download_replaces_a_file_link_instead_of_writing_through_it(
    store: FileStore, tmp_path: Path, local_writes: str
) -> None:
    transfer.upload(make_files(tmp_path / "src", {"a.txt": b"new"}), store, **quiet())
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").symlink_to(secret)

    assert transfer.download(store, ["a.txt"], out, **quiet()).skipped == ("a.txt",)
    assert transfer.download(store, ["a.txt"], out, **quiet(overwrite=True)).files == 1

    assert secret.read_bytes() == b"keep me"
    assert not (out / "a.txt").is_symlink()
    assert (out / "a.txt").read_bytes() == b"new"


def test_download_does_not_follow_even_a_link_that_stays_inside_the_target(
    store: FileStore, tmp_path: Path
) -> None:
    # Following it safely would need the link resolved and checked at every write: a link
    # below the target is refused wherever it leads, as the message says.
    transfer.upload(make_files(tmp_path / "src", {"sub/b.txt": b"b"}), store, **quiet())
    out = tmp_path / "out"
    (out / "real").mkdir(parents=True)
    (out / "sub").symlink_to(out / "real", target_is_directory=True)

    with pytest.raises(ValidationError, match=r"'sub' .* is a symbolic link"):
        transfer.download(store, store.list(), out, **quiet())

    assert list((out / "real").iterdir()) == []


def test_download_into_a_file_is_refused(store: FileStore, tmp_path: Path) -> None:
    transfer.upload(make_files(tmp_path / "src", FILES), store, **quiet())
    (tmp_path / "out").write_bytes(b"a file")

    with pytest.raises(ValidationError) as caught:
        transfer.download(store, store.list(), tmp_path / "out", **quiet())

    assert caught.value.field == "target_path"
    assert (tmp_path / "out").read_bytes() == b"a file"


# -- progress -------------------------------------------------------------------------------


def test_progress_on_a_terminal_draws_then_prints_one_summary(
    store: FileStore, tmp_path: Path
) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)

    result = transfer.upload(make_files(tmp_path / "src", FILES), store, console=console)

    assert result.files == len(FILES)
    assert f"Uploaded {len(FILES)} files" in out.getvalue()


def test_progress_off_prints_nothing(
    store: FileStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = make_files(tmp_path / "src", FILES)

    transfer.upload(pairs, store, show_progress=False)
    transfer.upload(pairs, store, show_progress=False)  # all skipped: still silent
    transfer.download(store, store.list(), tmp_path / "out", show_progress=False)

    assert capsys.readouterr() == ("", "")


def test_progress_in_a_pipe_prints_only_the_summary_line(
    store: FileStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    transfer.upload(make_files(tmp_path / "src", FILES), store)
    transfer.download(store, store.list(), tmp_path / "out")

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"Uploaded {len(FILES)} files (")
    assert lines[1].startswith(f"Downloaded {len(FILES)} files (")
