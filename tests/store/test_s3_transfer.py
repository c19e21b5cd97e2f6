"""Transfers to and from S3 (moto's server on 127.0.0.1): large files in parts, progress as the
parts arrive, many files side by side, and failures that leave nothing half-written."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelyard.datastore import Datastore
from modelyard.errors import StorageError
from modelyard.names import TMP_PREFIX
from modelyard.progress import TransferProgress
from modelyard.store import s3_transfer, transfer
from modelyard.store.files import FileStore
from modelyard.workspace import Workspace

PART = s3_transfer.PART_SIZE
# Three parts: two whole ones and a few bytes.
BIG = 2 * PART + 4321


class ProgressWatch:
    """What each transfer's progress said after every ``advance``, in order, and actions to
    take once it has said so ``n`` times (from the thread that copied the bytes)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[str, int, int]] = []  # (kind, bytes done, files done)
        self._actions: dict[int, Callable[[], None]] = {}
        real = TransferProgress.advance

        def advance(progress: TransferProgress, nbytes: int, files: int = 0) -> None:
            real(progress, nbytes, files)
            self.seen.append((progress.kind, progress.bytes_done, progress.files_done))
            action = self._actions.pop(len(self.seen), None)
            if action is not None:
                action()

        monkeypatch.setattr(TransferProgress, "advance", advance)

    def after(self, n: int, action: Callable[[], None]) -> None:
        self._actions[n] = action

    def bytes_done(self, kind: str) -> list[int]:
        return [done for seen_kind, done, _ in self.seen if seen_kind == kind]


@pytest.fixture
def watch(monkeypatch: pytest.MonkeyPatch) -> ProgressWatch:
    return ProgressWatch(monkeypatch)


@pytest.fixture
def store(s3_store: tuple[str, dict[str, Any]]) -> FileStore:
    url, options = s3_store
    return FileStore(url, options)


@pytest.fixture
def one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """One request at a time, so that a test can act between two parts or files."""
    monkeypatch.setattr(transfer, "REMOTE_WORKERS", 1)


def bucket_of(store: FileStore) -> str:
    return str(store.root.split("/", 1)[0])


def pending_uploads(store: FileStore) -> list[dict[str, Any]]:
    """The multipart uploads begun and neither completed nor aborted: parts the store keeps."""
    answer = store.fs.call_s3("list_multipart_uploads", Bucket=bucket_of(store))
    return list(answer.get("Uploads", []))


def etag(store: FileStore, relpath: str) -> str:
    return str(store.fs.info(store.full_path(relpath), refresh=True)["ETag"]).strip('"')


def write_random(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def local_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def quiet(**kwargs: Any) -> dict[str, Any]:
    return {"show_progress": False, **kwargs}


# -- large files ----------------------------------------------------------------------------


def test_a_large_file_goes_up_in_parts_and_comes_back_whole(
    store: FileStore, tmp_path: Path
) -> None:
    data = write_random(tmp_path / "src" / "big.bin", BIG)

    up = transfer.upload([(tmp_path / "src" / "big.bin", "big.bin")], store, "raw", **quiet())

    assert (up.files, up.bytes) == (1, BIG)
    # An object made of parts has the ETag "<md5 of the parts' md5s>-<number of parts>".
    assert etag(store, "raw/big.bin").endswith("-3")
    assert store.size("raw/big.bin") == BIG
    assert pending_uploads(store) == []
    down = transfer.download(store, store.list("raw"), tmp_path / "out", **quiet())
    assert (down.files, down.bytes) == (1, BIG)
    assert local_files(tmp_path / "out") == {"raw/big.bin": data}


def test_progress_moves_as_each_part_arrives_not_only_at_the_end(
    store: FileStore, tmp_path: Path, watch: ProgressWatch
) -> None:
    write_random(tmp_path / "big.bin", BIG)

    transfer.upload([(tmp_path / "big.bin", "big.bin")], store, **quiet())
    transfer.download(store, ["big.bin"], tmp_path / "out", **quiet())

    up = watch.bytes_done("upload")
    # One step per part, in whatever order the parts finish: two of them before the whole.
    assert sorted(up) == up
    assert len([done for done in up if 0 < done < BIG]) >= 2
    assert up[-1] == BIG
    down = watch.bytes_done("download")
    assert len([done for done in down if 0 < done < BIG]) >= 2
    assert down[-1] == BIG
    # The file counts as done once, when its last part made the object.
    files_done = [files for kind, _, files in watch.seen if kind == "upload"]
    assert files_done == [0] * (len(up) - 1) + [1]


def test_a_file_just_over_the_threshold_and_one_just_under_both_arrive(
    store: FileStore, tmp_path: Path
) -> None:
    sizes = {"under.bin": s3_transfer.MULTIPART_THRESHOLD, "over.bin": PART + 1}
    files = {name: write_random(tmp_path / "src" / name, size) for name, size in sizes.items()}

    transfer.upload([(tmp_path / "src" / n, n) for n in files], store, **quiet())

    assert "-" not in etag(store, "under.bin")
    assert etag(store, "over.bin").endswith("-2")
    transfer.download(store, store.list(), tmp_path / "out", **quiet())
    assert local_files(tmp_path / "out") == files


def test_part_size_grows_so_that_no_file_needs_more_than_ten_thousand_parts() -> None:
    assert s3_transfer.part_size(1) == PART
    assert s3_transfer.part_size(PART * s3_transfer.MAX_PARTS) == PART
    huge = PART * s3_transfer.MAX_PARTS + 1
    size = s3_transfer.part_size(huge)
    assert size > PART and size % (1 << 20) == 0
    assert -(-huge // size) <= s3_transfer.MAX_PARTS


# -- many files -----------------------------------------------------------------------------


def test_many_small_files_and_large_ones_go_side_by_side_and_all_arrive(
    store: FileStore, tmp_path: Path
) -> None:
    sizes = {f"d{i % 9}/f{i}.bin": 1024 + (i * 37) % 3072 for i in range(400)}
    sizes |= {"big/one.bin": BIG, "big/two.bin": PART + 10}
    files = {name: write_random(tmp_path / "src" / name, size) for name, size in sizes.items()}

    up = transfer.upload([(tmp_path / "src" / n, n) for n in files], store, "many", **quiet())

    assert (up.files, up.bytes, up.skipped) == (len(files), sum(sizes.values()), ())
    assert {i.path: i.size for i in store.list("many")} == {
        f"many/{n}": s for n, s in sizes.items()
    }
    assert pending_uploads(store) == []
    down = transfer.download(store, store.list("many"), tmp_path / "out", **quiet())
    assert (down.files, down.bytes) == (len(files), sum(sizes.values()))
    assert local_files(tmp_path / "out" / "many") == files


def test_existing_large_objects_are_skipped_unless_overwrite(
    store: FileStore, tmp_path: Path
) -> None:
    first = write_random(tmp_path / "v1" / "big.bin", BIG)
    transfer.upload([(tmp_path / "v1" / "big.bin", "big.bin")], store, **quiet())
    second = write_random(tmp_path / "v2" / "big.bin", BIG)

    kept = transfer.upload([(tmp_path / "v2" / "big.bin", "big.bin")], store, **quiet())

    assert (kept.files, kept.skipped) == (0, ("big.bin",))
    assert store.read_bytes("big.bin") == first
    replaced = transfer.upload(
        [(tmp_path / "v2" / "big.bin", "big.bin")], store, **quiet(overwrite=True)
    )
    assert replaced.files == 1
    assert store.read_bytes("big.bin") == second


# -- failures leave nothing half-written ----------------------------------------------------


def test_a_file_that_shrinks_while_it_goes_up_leaves_no_object_and_no_parts(
    store: FileStore, tmp_path: Path, watch: ProgressWatch, one_at_a_time: None
) -> None:
    source = tmp_path / "big.bin"
    write_random(source, BIG)
    watch.after(1, lambda: os.truncate(source, PART + 100))  # after the first part went up

    with pytest.raises(StorageError, match=r"big\.bin' became shorter while it was uploaded"):
        transfer.upload([(source, "big.bin")], store, **quiet())

    assert store.list() == []
    assert pending_uploads(store) == []


def test_ctrl_c_during_a_large_upload_aborts_it(
    store: FileStore, tmp_path: Path, watch: ProgressWatch, one_at_a_time: None
) -> None:
    write_random(tmp_path / "small.txt", 10)
    write_random(tmp_path / "big.bin", BIG)

    def interrupt() -> None:
        raise KeyboardInterrupt

    watch.after(2, interrupt)  # the small file, then the first part of the big one

    with pytest.raises(KeyboardInterrupt):
        transfer.upload(
            [(tmp_path / "small.txt", "small.txt"), (tmp_path / "big.bin", "big.bin")],
            store,
            **quiet(),
        )

    assert [i.path for i in store.list()] == ["small.txt"]
    assert pending_uploads(store) == []


def test_a_bucket_removed_midway_fails_clearly_and_is_not_made_again(
    store: FileStore, tmp_path: Path, watch: ProgressWatch, one_at_a_time: None
) -> None:
    write_random(tmp_path / "a" / "big.bin", BIG)
    bucket = bucket_of(store)
    watch.after(1, lambda: store.fs.call_s3("delete_bucket", Bucket=bucket))

    with pytest.raises(StorageError, match=r"upload of 'x/a/big\.bin' failed: .*bucket"):
        transfer.upload([(tmp_path / "a" / "big.bin", "a/big.bin")], store, "x", **quiet())

    assert bucket not in [b["Name"] for b in store.fs.call_s3("list_buckets")["Buckets"]]


def test_a_download_that_fails_midway_leaves_no_local_file_of_it(
    store: FileStore, tmp_path: Path, one_at_a_time: None
) -> None:
    files = {name: os.urandom(3000) for name in ("a.bin", "b.bin", "c.bin")}
    for name, data in files.items():
        store.write_bytes(name, data)
    listing = store.list()
    store.delete("b.bin")  # gone between the listing and its download
    out = tmp_path / "out"

    with pytest.raises(StorageError, match=r"download of 'b\.bin' failed"):
        transfer.download(store, listing, out, **quiet())

    assert local_files(out) == {"a.bin": files["a.bin"]}
    assert not [p for p in out.rglob("*") if TMP_PREFIX in p.name]


# -- through a Datastore of a workspace -----------------------------------------------------


def test_a_datastore_on_s3_uploads_and_downloads_in_parts(
    s3_store: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    url, options = s3_store
    ws = Workspace.create("s3-ws", folder=tmp_path / "ws")
    Datastore.register(ws, "raw", url, **options)
    files = {"big.bin": write_random(tmp_path / "src" / "big.bin", BIG)}
    files |= {
        f"small/{i}.txt": write_random(tmp_path / "src" / f"small/{i}.txt", 2000) for i in range(70)
    }

    ds = Datastore.get(Workspace.get("s3-ws", folder=tmp_path / "ws"), "raw")
    ref = ds.upload(tmp_path / "src", target_path="mnist", show_progress=False)

    assert ref.path_on_datastore == "mnist"
    store = FileStore(url, options)
    assert etag(store, "mnist/big.bin").endswith("-3")
    assert ds.download(tmp_path / "out", prefix="mnist/", show_progress=False) == len(files)
    assert local_files(tmp_path / "out" / "mnist") == files


class CuttingProxy:
    """A TCP relay to the S3 endpoint that breaks connections, as a failing network does:
    each one once ``limit`` bytes of answers went through it, and each one whose request begins
    with ``drop_answer_to`` (a regular expression) just before its answer (the request itself
    reaches the store)."""

    def __init__(
        self, endpoint_url: str, *, limit: int | None = None, drop_answer_to: bytes | None = None
    ) -> None:
        host, port = endpoint_url.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.limit = limit
        self.drop_answer_to = drop_answer_to
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` (of the real endpoint) pointed at this relay instead."""
        return {**options, "client_kwargs": {**options["client_kwargs"], "endpoint_url": self.url}}

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self.upstream)
            marked = threading.Event()  # set once the request to drop the answer to went up
            for args in ((client, server, False, marked), (server, client, True, marked)):
                threading.Thread(target=self._relay, args=args, daemon=True).start()

    def _relay(
        self, source: socket.socket, target: socket.socket, answers: bool, marked: threading.Event
    ) -> None:
        sent = 0
        try:
            while data := source.recv(65536):
                if not answers and self.drop_answer_to and re.match(self.drop_answer_to, data):
                    marked.set()
                if answers and marked.is_set() and data.startswith(b"HTTP/1.1 100 "):
                    pass  # "100 Continue": the request's body is still to come, let it
                elif answers and (
                    marked.is_set() or (self.limit is not None and sent + len(data) > self.limit)
                ):
                    self.cuts += 1
                    break
                target.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()


def test_a_completion_whose_answer_is_lost_still_makes_the_object(
    s3_store: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    # What a slow store does to a large upload: joining the parts takes longer than s3fs waits
    # for the answer to "complete the upload", so s3fs asks again, and the store, done with
    # the first request (or in the middle of it), answers that it knows no such upload
    # (moto's server answers 500) although the object is whole. Here no answer arrives.
    url, options = s3_store
    direct = FileStore(url, options)
    data = write_random(tmp_path / "big.bin", BIG)
    proxy = CuttingProxy(
        options["client_kwargs"]["endpoint_url"], drop_answer_to=rb"POST [^ ]*\?uploadId="
    )
    try:
        # Asking again each time would find the same: botocore asks once (s3fs retries).
        once = proxy.options(options) | {"config_kwargs": {"retries": {"max_attempts": 1}}}
        result = transfer.upload(
            [(tmp_path / "big.bin", "big.bin")], FileStore(url, once), **quiet()
        )
    finally:
        proxy.close()

    assert proxy.cuts >= 1
    assert (result.files, result.bytes) == (1, BIG)
    assert direct.read_bytes("big.bin") == data
    assert pending_uploads(direct) == []


def test_a_connection_that_breaks_during_a_download_leaves_no_local_file(
    s3_store: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    url, options = s3_store
    direct = FileStore(url, options)
    data = write_random(tmp_path / "big.bin", BIG)
    transfer.upload([(tmp_path / "big.bin", "big.bin")], direct, **quiet())
    proxy = CuttingProxy(options["client_kwargs"]["endpoint_url"], limit=PART)
    cut = FileStore(url, proxy.options(options))
    out = tmp_path / "out"
    try:
        with pytest.raises(StorageError, match=r"download of 'big\.bin' failed: .*broke off"):
            transfer.download(cut, direct.list(), out, **quiet())
    finally:
        proxy.close()

    assert proxy.cuts == 1
    assert local_files(out) == {}
    assert not [p for p in out.rglob("*") if TMP_PREFIX in p.name]
    transfer.download(direct, direct.list(), out, **quiet())  # and it can be done again
    assert local_files(out) == {"big.bin": data}
