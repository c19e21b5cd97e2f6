"""Live logs grown by FileStore.append: in place in a folder, as chunks on fsspec's memory
filesystem and on a real S3 endpoint (moto's server, tests/s3.py). All read back as exactly
the bytes appended."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from modelyard.errors import ConflictError, NotFoundError, StorageError
from modelyard.store.files import FileStore, local_url

LOG = "runs/r1/user_logs/std_log.txt"


@pytest.fixture(params=["folder", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FileStore:
    if request.param == "folder":
        return FileStore(local_url(tmp_path / "files"))
    if request.param == "memory":  # no append there either: chunks, as on S3
        request.getfixturevalue("clean_memory_fs")
        return FileStore("memory://logs")
    url, options = request.getfixturevalue("s3_store")
    return FileStore(url, options)


@pytest.fixture
def s3(s3_store: tuple[str, dict[str, Any]]) -> FileStore:
    url, options = s3_store
    return FileStore(url, options)


def _grow(store: FileStore, parts: list[bytes]) -> bytes:
    offset = 0
    for part in parts:
        store.append(LOG, offset, part)
        offset += len(part)
    return b"".join(parts)


def test_a_log_reads_back_whole_and_from_any_offset(store: FileStore) -> None:
    whole = _grow(store, [bytes([65 + i]) * (100 + i) for i in range(12)])
    assert store.read_bytes(LOG) == whole
    assert store.size(LOG) == len(whole) and store.exists(LOG)
    # Ranges that start and end inside chunks, span several, and run past the end.
    for offset, size in [(0, 1), (50, 300), (99, 2), (101, 1000), (len(whole) - 5, 100)]:
        assert store.read_range(LOG, offset, size) == whole[offset : offset + size]
    assert store.read_range(LOG, len(whole), 10) == b""
    with store.open_read(LOG) as f:
        f.seek(777)
        assert f.read(10) == whole[777:787]
        assert f.read() == whole[787:]
    assert [(i.path, i.size) for i in store.list("runs/r1")] == [(LOG, len(whole))]
    assert [(i.path, i.size) for i in store.list(LOG)] == [(LOG, len(whole))]
    assert [i.path for i in store.list()] == [LOG]


def test_a_repeated_append_is_stored_once_and_an_overlap_adds_its_tail(store: FileStore) -> None:
    store.append(LOG, 0, b"hello ")
    store.append(LOG, 0, b"hello ")  # a retry after a timeout
    store.append(LOG, 6, b"world")
    store.append(LOG, 6, b"world")
    store.append(LOG, 9, b"ld, and more")  # starts inside what is there
    assert store.read_bytes(LOG) == b"hello world, and more"


def test_a_gap_is_refused_and_leaves_the_log_as_it_was(store: FileStore) -> None:
    store.append(LOG, 0, b"abc")
    with pytest.raises(ConflictError, match="has 3 bytes; cannot append at 5"):
        store.append(LOG, 5, b"xyz")
    with pytest.raises(ConflictError, match="has 0 bytes"):
        store.append("other.txt", 1, b"x")
    assert store.read_bytes(LOG) == b"abc"
    with pytest.raises(NotFoundError):
        store.read_bytes("other.txt")


def test_a_log_copied_deleted_or_written_whole_behaves_as_one_file(store: FileStore) -> None:
    whole = _grow(store, [b"one\n", b"two\n", b"three\n"])
    store.copy(LOG, "copies/log.txt")
    assert store.read_bytes("copies/log.txt") == whole
    store.write_bytes(LOG, b"replaced\n")
    assert store.read_bytes(LOG) == b"replaced\n"
    assert [(i.path, i.size) for i in store.list("runs")] == [(LOG, 9)]
    store.append(LOG, 9, b"and on\n")  # goes on from the whole file's bytes
    assert store.read_bytes(LOG) == b"replaced\nand on\n"
    store.delete(LOG)
    assert not store.exists(LOG)
    assert [i.path for i in store.list()] == ["copies/log.txt"]
    _grow(store, [b"again"])
    store.delete("runs")
    assert [i.path for i in store.list()] == ["copies/log.txt"]
    with pytest.raises(NotFoundError):
        store.size(LOG)


def test_on_s3_each_append_stores_only_its_own_bytes(s3: FileStore) -> None:
    parts = [b"x" * 4096 for _ in range(20)]
    _grow(s3, parts)
    stored = s3.fs.find(s3.root, detail=True)
    # One object per append, each the size of that append: nothing is written twice.
    assert sorted(int(info["size"]) for info in stored.values()) == [4096] * 20
    assert sum(int(info["size"]) for info in stored.values()) == 20 * 4096


def test_on_s3_two_writers_of_one_log_never_overwrite_each_other(
    s3_store: tuple[str, dict[str, Any]],
) -> None:
    url, options = s3_store
    first, second = FileStore(url, options), FileStore(url, options)
    first.append(LOG, 0, b"0123456789")
    second.append(LOG, 10, b"abcdefghij")  # a new writer (a restarted supervisor) goes on
    first.append(LOG, 10, b"abcdefghij")  # the old one retries: its idea of the end is stale
    first.append(LOG, 20, b"KLM")
    assert second.read_bytes(LOG) == b"0123456789abcdefghijKLM"
    with pytest.raises(ConflictError, match="has 23 bytes"):
        second.append(LOG, 30, b"late")


def test_an_append_to_a_folder_of_the_log_s_name_is_refused(tmp_path: Path) -> None:
    store = FileStore(local_url(tmp_path / "files"))
    (tmp_path / "files" / LOG / "in-the-way").mkdir(parents=True)
    # Shorter than a folder's size: it used to look stored.
    with pytest.raises(ConflictError, match="something other than a file"):
        store.append(LOG, 0, b"short")


def test_an_object_store_that_does_not_answer_raises_a_storage_error(
    s3_store: tuple[str, dict[str, Any]],
) -> None:
    url, options = s3_store
    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    away = {
        **options,
        "client_kwargs": {**options["client_kwargs"], "endpoint_url": f"http://127.0.0.1:{port}"},
        "config_kwargs": {"retries": {"max_attempts": 1, "mode": "standard"}},
    }
    store = FileStore(url, away)
    store.fs.retries = 1  # s3fs's own retries (a class attribute)
    with pytest.raises(StorageError, match="did not answer"):
        store.append(LOG, 0, b"lost?")
    with pytest.raises(StorageError, match="did not answer"):
        store.read_range(LOG, 0, 10)


def test_on_s3_a_log_written_whole_between_appends_reads_back_right(s3: FileStore) -> None:
    _grow(s3, [b"one\n", b"two\n"])
    s3.write_bytes(LOG, b"whole file\n")  # what a sync of a rewritten ./logs file does
    s3.append(LOG, 11, b"tail\n")
    s3.append(LOG, 16, b"more\n")
    assert s3.read_bytes(LOG) == b"whole file\ntail\nmore\n"
    assert s3.read_range(LOG, 9, 9) == b"e\ntail\nmo"  # across the two chunks
    stored = {
        p.rsplit("/", 1)[-1]: int(i["size"]) for p, i in s3.fs.find(s3.root, detail=1).items()
    }
    # The whole file became chunk 0 (the chunks it hid are gone); each tail is its own chunk.
    assert stored == {f"{0:020d}": 11, f"{11:020d}": 5, f"{16:020d}": 5}


def test_on_s3_a_reader_of_a_whole_file_goes_on_when_an_append_moves_it(s3: FileStore) -> None:
    s3.write_bytes(LOG, b"written whole\n")
    reader = s3.open_read(LOG)  # opened while the log is one plain object
    s3.append(LOG, 14, b"appended\n")  # moves it into chunk 0, then removes it
    with reader:
        assert reader.read(8) == b"written "
        assert reader.read() == b"whole\nappended\n"
    assert s3.read_range(LOG, 10, 100) == b"ole\nappended\n"
