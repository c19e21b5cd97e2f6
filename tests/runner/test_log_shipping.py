"""The log shipper: appends to live logs sent in the background, on a workspace in a local
folder and on a real S3 endpoint (moto's server) reached through a TCP proxy that can hold,
refuse or lose its traffic (tests/tcp_proxy.py)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

from modelyard.backend.local import LocalBackend
from modelyard.errors import StorageError
from modelyard.experiment import Experiment
from modelyard.runner.log_shipping import LogShipper
from modelyard.workspace import Workspace
from tests.s3 import S3Server
from tests.tcp_proxy import TcpProxy

LOG = "user_logs/std_log.txt"


@dataclass
class Target:
    backend: LocalBackend
    run_id: str
    proxy: TcpProxy | None = None

    def stored(self, name: str = LOG) -> bytes:
        return self.backend.read_run_file(self.run_id, name, 0, 1 << 30)

    def chunk_sizes(self, name: str = LOG) -> list[int]:
        """The sizes of the objects that hold the log on S3, in offset order."""
        files = self.backend.files
        found = files.fs.find(files.full_path(f"runs/{self.run_id}/{name}") + ".chunks", detail=1)
        return [int(info["size"]) for _, info in sorted(found.items())]


def _target(ws: Workspace, proxy: TcpProxy | None = None) -> Target:
    run = Experiment(ws, "e").start_logging()
    backend = ws._backend
    assert isinstance(backend, LocalBackend)
    return Target(backend, run.id, proxy)


@pytest.fixture
def on_folder(tmp_path: Path) -> Target:
    return _target(Workspace.create("ws", folder=tmp_path / "ws"))


@pytest.fixture
def on_s3(tmp_path: Path, s3_server: S3Server) -> Iterator[Target]:
    """A workspace whose files are on S3 behind a proxy; the client retries nothing itself,
    so what the store does reaches the shipper at once."""
    url, options = s3_server.new_bucket()
    upstream = urlparse(s3_server.endpoint_url)
    assert upstream.hostname is not None and upstream.port is not None
    proxy = TcpProxy.start(upstream.hostname, upstream.port)
    options = {
        **options,
        "client_kwargs": {**options["client_kwargs"], "endpoint_url": proxy.endpoint_url},
        "config_kwargs": {
            "retries": {"max_attempts": 1, "mode": "standard"},
            "connect_timeout": 5,
            "read_timeout": 30,
        },
    }
    ws = Workspace.create("ws", folder=tmp_path / "ws", storage_url=url, storage_options=options)
    target = _target(ws, proxy)
    target.backend.files.fs.retries = 1  # s3fs's own retries, a class attribute
    yield target
    proxy.stop()


@pytest.fixture(params=["folder", "s3"])
def target(request: pytest.FixtureRequest) -> Target:
    return request.getfixturevalue(f"on_{request.param}")  # type: ignore[no-any-return]


def test_appends_from_many_threads_to_many_logs_are_stored_whole_and_in_order(
    target: Target,
) -> None:
    shipper = LogShipper(target.backend, target.run_id)
    names = [LOG, "user_logs/std_log_process_01.txt", "system_logs/build.txt"]

    def write(thread: int) -> None:
        for seq in range(300):
            shipper.append(names[seq % 3], f"t{thread} {seq:04d}\n".encode())

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shipper.close()
    for index, name in enumerate(names):
        lines = target.stored(name).decode().splitlines()
        for t in range(4):
            mine = [line for line in lines if line.startswith(f"t{t} ")]
            # Each thread's lines in its order, every one once.
            assert mine == [f"t{t} {seq:04d}" for seq in range(index, 300, 3)]
        assert len(lines) == 4 * 100


def test_appends_made_while_a_call_is_in_flight_go_in_one_next_call(on_s3: Target) -> None:
    assert on_s3.proxy is not None
    shipper = LogShipper(on_s3.backend, on_s3.run_id)
    block = b"x" * 4095 + b"\n"
    on_s3.proxy.set_mode("hold")
    shipper.append(LOG, block)
    on_s3.proxy.wait_until(lambda p: p.held >= 1)  # the first send is in flight
    for _ in range(299):
        shipper.append(LOG, block)
    on_s3.proxy.release()
    shipper.flush()
    assert on_s3.stored() == block * 300
    # 300 appends, two PUTs: the first one's, and everything that came while it was held.
    assert on_s3.chunk_sizes() == [4096, 299 * 4096]


def test_a_flood_is_sent_in_calls_of_bounded_size_and_reads_back_from_any_offset(
    on_s3: Target,
) -> None:
    assert on_s3.proxy is not None
    shipper = LogShipper(on_s3.backend, on_s3.run_id, max_call_bytes=10_000)
    parts = [bytes([65 + i % 26]) * (37 * i + 1) for i in range(60)]
    whole = b"".join(parts)
    on_s3.proxy.set_mode("hold")
    shipper.append(LOG, parts[0])
    on_s3.proxy.wait_until(lambda p: p.held >= 1)
    for part in parts[1:]:
        shipper.append(LOG, part)
    on_s3.proxy.release()
    shipper.close()
    sizes = on_s3.chunk_sizes()
    assert sizes[0] == 1 and all(size <= 10_000 for size in sizes) and sum(sizes) == len(whole)
    assert len(sizes) == 1 + -(-(len(whole) - 1) // 10_000)
    # Reads that start and end anywhere, within a chunk or across several.
    for offset in [*range(0, len(whole), 4999), len(whole) - 1, len(whole)]:
        for size in (1, 10_001, 25_000):
            got = on_s3.backend.read_run_file(on_s3.run_id, LOG, offset, size)
            assert got == whole[offset : offset + size], (offset, size)


def test_an_append_waits_when_too_much_is_pending(on_s3: Target) -> None:
    assert on_s3.proxy is not None
    proxy = on_s3.proxy
    shipper = LogShipper(on_s3.backend, on_s3.run_id, max_pending_bytes=64 << 10)
    block = b"y" * (8 << 10)
    replies_seen: list[int] = []  # replies the store had sent when each append returned

    def write() -> None:
        for _ in range(32):
            shipper.append(LOG, block)
            replies_seen.append(proxy.delivered)

    proxy.set_mode("hold")
    writer = threading.Thread(target=write)
    writer.start()
    proxy.wait_until(lambda p: p.held >= 1)
    # The cap is reached: eight blocks wait, and the ninth append cannot return.
    proxy.wait_until(lambda _: shipper.pending_bytes() == 64 << 10)
    proxy.release()
    writer.join()
    shipper.close()
    assert replies_seen[:8] == [0] * 8
    assert all(seen > 0 for seen in replies_seen[8:])  # each returned after the store answered
    assert on_s3.stored() == block * 32


def test_a_store_away_for_a_while_then_back_loses_nothing(on_s3: Target) -> None:
    assert on_s3.proxy is not None
    proxy = on_s3.proxy
    shipper = LogShipper(on_s3.backend, on_s3.run_id)
    shipper.append(LOG, b"before\n")
    shipper.flush()
    proxy.set_mode("refuse")
    for i in range(50):
        shipper.append(LOG, f"while away {i}\n".encode())
    proxy.wait_until(lambda p: p.refused >= 3)  # sent and refused, more than once
    proxy.set_mode("forward")
    shipper.flush()
    # Replies lost after the store took the bytes: the retries find them there.
    proxy.drop_replies(3)
    for i in range(50):
        shipper.append(LOG, f"reply lost {i}\n".encode())
    shipper.close()
    expected = (
        b"before\n"
        + b"".join(f"while away {i}\n".encode() for i in range(50))
        + b"".join(f"reply lost {i}\n".encode() for i in range(50))
    )
    assert proxy.dropped >= 1
    assert on_s3.stored() == expected
    assert sum(on_s3.chunk_sizes()) == len(expected)  # no byte stored twice


def test_a_store_away_for_good_is_raised_by_flush_naming_the_log(on_s3: Target) -> None:
    assert on_s3.proxy is not None
    shipper = LogShipper(on_s3.backend, on_s3.run_id, retry_seconds=1.0)
    shipper.append(LOG, b"stored\n")
    shipper.flush()
    on_s3.proxy.set_mode("refuse")
    with pytest.raises(StorageError, match=r"13 bytes of 'user_logs/std_log.txt' from offset 7"):
        shipper.append(LOG, b"never stored\n")
        shipper.flush()
    shipper.flush()  # reported once
    on_s3.proxy.set_mode("forward")
    # The log stopped there: later bytes would leave a gap, so they are reported, not sent.
    with pytest.raises(StorageError, match=r"6 bytes of 'user_logs/std_log.txt' from offset 20"):
        shipper.append(LOG, b"later\n")
    shipper.append("logs/other.txt", b"other logs go on\n")
    shipper.close()
    assert on_s3.stored() == b"stored\n"
    assert on_s3.stored("logs/other.txt") == b"other logs go on\n"


def test_a_log_the_store_refuses_is_raised_at_once_and_the_others_go_on(
    on_folder: Target,
) -> None:
    # A folder where the log's file should be: no retry can help.
    files = on_folder.backend.files
    (files.local_path(f"runs/{on_folder.run_id}/{LOG}") / "in-the-way").mkdir(parents=True)
    shipper = LogShipper(on_folder.backend, on_folder.run_id, retry_seconds=600)
    # Raised once, by whichever call comes first once the store refused, the first append
    # included when the sender was quick (an append takes its bytes before it raises).
    raised = []
    for call in (
        lambda: shipper.append(LOG, b"x" * 10),
        lambda: shipper.append("logs/fine.txt", b"fine\n"),
        shipper.flush,
    ):
        try:
            call()
        except StorageError as error:
            raised.append(str(error))
    assert len(raised) == 1, raised
    assert re.search(r"10 bytes of 'user_logs/std_log.txt'.*refused", raised[0]), raised
    shipper.close()
    assert on_folder.stored("logs/fine.txt") == b"fine\n"


def test_a_shipper_goes_on_where_the_store_s_log_ends(target: Target) -> None:
    target.backend.append_run_file(target.run_id, LOG, 0, b"first supervisor\n")
    shipper = LogShipper(target.backend, target.run_id, offsets={LOG: 17})
    shipper.append(LOG, b"second\n")
    shipper.close()
    shipper.append(LOG, b"after close\n")  # starts the sender again
    shipper.close()
    assert target.stored() == b"first supervisor\nsecond\nafter close\n"
