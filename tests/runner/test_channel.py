"""The channel between a run's processes and their supervisor, over a real Unix socket:
records and errors, files as streams of bounded frames, a connection per process (forked
ones too), and the wire format's caps."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import struct
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.backend import channel_wire
from modelyard.backend.channel import ChannelBackend
from modelyard.backend.local import LocalBackend
from modelyard.backend.records import RUNNING, SCALAR, MetricBatch
from modelyard.errors import NotFoundError, PermissionDeniedError, StorageError, ValidationError
from modelyard.runner.channel import ChannelServer
from modelyard.runner.run_scope import RunScope
from tests.helpers import short_socket_path


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[tuple[LocalBackend, ChannelBackend]]:
    """A client bound to run "r" of experiment "e", which was given datastore "raw"."""
    backend = LocalBackend(
        "ws", f"sqlite:///{tmp_path / 'c.db'}", (tmp_path / "files").as_posix(), base_dir=tmp_path
    )
    backend.create_run("r", "e", run_type="script", status=RUNNING)
    socket_path = short_socket_path()
    workdir = tmp_path / "wd"
    workdir.mkdir()
    server = ChannelServer(backend, socket_path, RunScope(backend, "r", "e", workdir, {"raw"}))
    server.start()
    yield backend, ChannelBackend(socket_path, "ws", str(workdir))  # type: ignore[abstract]
    server.stop()


def test_calls_records_streams_and_errors_cross_the_socket(
    channel: tuple[LocalBackend, ChannelBackend],
) -> None:
    backend, client = channel
    assert client.get_run("r").status == RUNNING
    client.log_metrics("r", [MetricBatch("loss", SCALAR, "b1", [0.5, 0.25], [0, 1], [0.0, 0.0])])
    assert backend.get_metric_series("r")[0].values == [0.5, 0.25]
    client.upload_run_file("r", "outputs/a.txt", io.BytesIO(b"bytes"))
    with client.open_run_file("r", "outputs/a.txt") as f:
        assert f.read() == b"bytes"
    with pytest.raises(PermissionDeniedError, match="'missing'"):
        client.get_run("missing")
    with pytest.raises(ValidationError) as info:
        client.upload_run_file("r", "../escape", io.BytesIO(b""))
    assert info.value.field == "name"


def test_datastore_credentials_never_reach_the_script(
    channel: tuple[LocalBackend, ChannelBackend],
) -> None:
    backend, client = channel
    backend.register_datastore("raw", "memory://raw", {"key": "AKIA-secret", "secret": "s3cr3t"})
    assert backend.secrets is not None and backend.secrets.get("raw")["secret"] == "s3cr3t"
    assert client.get_datastore("raw").storage_options == {}
    assert client.local_datastore_store("raw") is None  # not a call: nothing is opened for it
    assert all(record.storage_options == {} for record in client.list_datastores())


def _socket_path(client: ChannelBackend) -> str:
    return client.socket_path


def _script(code: str, *args: str) -> str:
    """Run ``code`` in a new Python process and return its stdout (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_large_file_goes_up_and_down_in_frames_not_whole_in_memory(
    channel: tuple[LocalBackend, ChannelBackend], tmp_path: Path
) -> None:
    backend, client = channel
    # A script's process uploads a 64 MiB file from outside its working folder (so its bytes
    # travel, not its path) and downloads it back; its peak memory is measured around it.
    out = _script(
        """
        import hashlib, os, resource, shutil, sys
        from pathlib import Path
        from modelyard.backend.channel import ChannelBackend

        socket_path, workdir, folder = sys.argv[1:]
        big = Path(folder) / "big.bin"
        digest = hashlib.sha256()
        with open(big, "wb") as f:
            for i in range(64):
                block = os.urandom(1 << 20)
                digest.update(block)
                f.write(block)
        client = ChannelBackend(socket_path, "ws", workdir)
        client.get_run("r")  # connected, and every module of the call path imported
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        client.upload_run_file("r", "outputs/big.bin", big)
        back = hashlib.sha256()
        with client.open_run_file("r", "outputs/big.bin") as f:
            while block := f.read(8 << 20):
                back.update(block)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(digest.hexdigest(), back.hexdigest(), (after - before) * 1024)
        """,
        _socket_path(client),
        str(tmp_path / "wd"),
        str(tmp_path),
    )
    sent, received, growth = out.split()
    assert received == sent
    assert int(growth) < 32 << 20, f"the process grew by {int(growth) >> 20} MiB"
    with backend.open_run_file("r", "outputs/big.bin") as f:
        stored = hashlib.sha256()
        while block := f.read(8 << 20):
            stored.update(block)
    assert stored.hexdigest() == sent


FORKING_SCRIPT = """
import json, os, sys
from pathlib import Path
from modelyard import Run

rounds = int(sys.argv[1])
run = Run.get_context()
run.log("warm", 1)
run.flush()  # the parent holds a connection before it forks


def work(role, out):
    # Metric points and a run file of its own: crossed replies would show as wrong bytes,
    # a wrong record, a lost point or a hang.
    for i in range(20):
        run.log(role, i)
    run.flush()
    run.upload_file(f"outputs/{role}.txt", __file__)
    for _ in range(3):
        path = run.download_file(f"outputs/{role}.txt", out / f"{role}.txt")
        assert path.read_bytes() == Path(__file__).read_bytes(), role
        assert run.get_metrics(role)[role] == list(range(20)), role


out = Path(os.environ["OUT"])
for round_ in range(rounds):
    pid = os.fork()
    if pid == 0:
        try:
            work(f"child{round_}", out)
        except BaseException as error:
            print(f"child {round_}: {error!r}", file=sys.stderr)
            os._exit(1)
        os._exit(0)
    work(f"parent{round_}", out)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"child {round_} failed"
print("DONE")
"""


def test_forked_processes_each_get_their_own_connection_and_answers(
    channel: tuple[LocalBackend, ChannelBackend], tmp_path: Path
) -> None:
    backend, client = channel
    workdir = tmp_path / "wd"
    script = workdir / "forks.py"
    script.write_text(FORKING_SCRIPT)
    context = tmp_path / "context.json"
    context.write_text(
        json.dumps(
            {
                "run_id": "r",
                "experiment_name": "e",
                "workspace_name": "ws",
                "workspace_id": "ws-id",
                "socket": _socket_path(client),
                "workdir": str(workdir),
            }
        )
    )
    out = tmp_path / "out"
    out.mkdir()
    rounds = 15
    done = subprocess.run(
        [sys.executable, str(script), str(rounds)],
        capture_output=True,
        text=True,
        timeout=300,  # the old shared socket could hang here for ever
        env={**os.environ, "MODELYARD_RUN_CONTEXT": str(context), "OUT": str(out)},
    )
    assert done.returncode == 0 and done.stdout.strip() == "DONE", done.stderr
    series = {s.name: s.values for s in backend.get_metric_series("r")}
    for round_ in range(rounds):
        for role in (f"parent{round_}", f"child{round_}"):
            assert series[role] == list(range(20)), role
    assert series["warm"] == [1]


def test_a_half_read_stream_then_other_calls_work(
    channel: tuple[LocalBackend, ChannelBackend],
) -> None:
    backend, client = channel
    blob = bytes(range(256)) * (12 << 12)  # 12 MiB: many frames, more than a socket buffers
    backend.upload_run_file("r", "outputs/blob.bin", io.BytesIO(blob))
    backend.upload_run_file("r", "outputs/small.txt", io.BytesIO(b"small"))
    half = client.open_run_file("r", "outputs/blob.bin")
    assert half.read(10) == blob[:10]
    # While it is open, other calls and another stream go on connections of their own.
    assert client.get_run("r").status == RUNNING
    with client.open_run_file("r", "outputs/small.txt") as small:
        assert small.read() == b"small"
    assert half.read(1 << 20) == blob[10 : 10 + (1 << 20)]
    half.close()  # half-read: its connection is dropped, never read by another call
    for _ in range(3):
        assert [f.path for f in client.list_run_files("r")] == [
            "outputs/blob.bin",
            "outputs/small.txt",
        ]
        with client.open_run_file("r", "outputs/blob.bin") as whole:
            assert whole.read() == blob
    with pytest.raises(NotFoundError):
        client.open_run_file("r", "outputs/none")
    assert client.get_run("r").id == "r"


class _FailingSource(io.RawIOBase):
    """A stream that gives ``good`` bytes, then fails as a broken disk would."""

    def __init__(self, good: int) -> None:
        self.left = good

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self.left:
            raise OSError(5, "Input/output error")
        count = min(len(buffer), self.left)
        buffer[:count] = b"x" * count
        self.left -= count
        return count


def test_an_upload_whose_source_fails_stores_nothing_and_the_channel_goes_on(
    channel: tuple[LocalBackend, ChannelBackend],
) -> None:
    backend, client = channel
    with pytest.raises(OSError, match="Input/output error"):
        client.upload_run_file(
            "r", "outputs/broken.bin", io.BufferedReader(_FailingSource(3 << 20))
        )
    assert [f.path for f in backend.list_run_files("r")] == []
    # A refused upload is read to its end and dropped; the connection stays in step.
    with pytest.raises(PermissionDeniedError, match="'other'"):
        client.upload_run_file("other", "outputs/x.bin", io.BytesIO(b"y" * (3 << 20)))
    client.upload_run_file("r", "outputs/good.bin", io.BytesIO(b"good"))
    with client.open_run_file("r", "outputs/good.bin") as f:
        assert f.read() == b"good"


def _closed(sock: socket.socket) -> bool:
    """Whether the other side closed ``sock`` (unread bytes of ours make that a reset)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_frames_and_messages_over_their_caps_are_refused(
    channel: tuple[LocalBackend, ChannelBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, client = channel
    header = struct.Struct(">cI")
    for bad, reason in (
        (header.pack(b"M", 1 << 31), "over the limit"),
        (header.pack(b"D", 5) + b"bytes", "a data frame where a message was due"),
        (header.pack(b"Z", 0), "unknown kind"),
    ):
        with socket.socket(socket.AF_UNIX) as raw:
            raw.connect(_socket_path(client))
            raw.sendall(bad)
            reply = channel_wire.receive(raw)
            assert reason in reply["error"]["message"]
            assert _closed(raw)  # and the connection is closed
    # A data frame over FRAME_BYTES in a stream is refused from its header.
    left, right = socket.socketpair()
    with left, right:
        left.sendall(header.pack(b"D", channel_wire.FRAME_BYTES + 1))
        with pytest.raises(channel_wire.ProtocolError, match="data frame"):
            channel_wire.StreamReader(right).read(10)
    # A call too large for one message is refused before it is sent, with the field named.
    monkeypatch.setattr(channel_wire, "MAX_MESSAGE_BYTES", 1 << 20)
    with pytest.raises(ValidationError, match="over the limit") as info:
        client.set_run_tags("r", {"t": "x" * (2 << 20)})
    assert info.value.field == "message"
    # So is an answer too large for one: the caller is told, the channel goes on.
    backend.upload_run_file("r", "outputs/log.txt", io.BytesIO(b"z" * (2 << 20)))
    with pytest.raises(ValidationError, match=r"the answer to read_run_file is .* over the limit"):
        client.read_run_file("r", "outputs/log.txt", 0, 2 << 20)
    assert client.read_run_file("r", "outputs/log.txt", 0, 3) == b"zzz"
    assert backend.get_run_details("r").tags == {}


def test_a_stream_from_the_parent_is_not_read_by_a_forked_child(
    channel: tuple[LocalBackend, ChannelBackend], tmp_path: Path
) -> None:
    backend, client = channel
    backend.upload_run_file("r", "outputs/a.bin", io.BytesIO(b"a" * (4 << 20)))
    out = _script(
        """
        import os, sys
        from modelyard.backend.channel import ChannelBackend
        from modelyard.errors import StorageError

        client = ChannelBackend(sys.argv[1], "ws", sys.argv[2])
        stream = client.open_run_file("r", "outputs/a.bin")
        assert stream.read(1) == b"a"
        pid = os.fork()
        if pid == 0:
            try:
                stream.read()  # past what the parent had buffered: from the socket
                os._exit(3)  # it read the parent's connection
            except StorageError as error:
                assert "another process" in str(error), error
            assert client.get_run("r").id == "r"  # on a connection of its own
            os._exit(0)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        rest = stream.read()
        print(len(rest) + 1)
        """,
        _socket_path(client),
        str(tmp_path / "wd"),
    )
    assert out.strip() == str(4 << 20)


def test_errors_keep_their_type_and_field(channel: tuple[LocalBackend, ChannelBackend]) -> None:
    _, client = channel
    with pytest.raises(ValidationError) as info:
        client.get_metric_series("r", limit=0)
    assert info.value.field == "limit" and str(info.value).startswith("limit: ")
    with pytest.raises(StorageError, match="lost the connection"):
        ChannelBackend("/nonexistent/socket").get_run("r")  # type: ignore[abstract]


def test_a_new_supervisor_on_the_socket_is_reached_past_every_stale_connection(
    tmp_path: Path,
) -> None:
    backend = LocalBackend(
        "ws", f"sqlite:///{tmp_path / 'c.db'}", (tmp_path / "files").as_posix(), base_dir=tmp_path
    )
    backend.create_run("r", "e", run_type="script", status=RUNNING)
    backend.upload_run_file("r", "outputs/a.bin", io.BytesIO(b"a" * (3 << 20)))
    socket_path = short_socket_path()

    def serve() -> ChannelServer:
        server = ChannelServer(backend, socket_path, RunScope(backend, "r", "e", tmp_path, set()))
        server.start()
        return server

    server = serve()
    client = ChannelBackend(socket_path, "ws", str(tmp_path))  # type: ignore[abstract]
    download = client.open_run_file("r", "outputs/a.bin")  # holds one connection
    assert client.get_run("r").id == "r"  # so this call made a second one
    assert download.read() == b"a" * (3 << 20)
    download.close()  # both are idle now, and both go stale with their server
    server.stop()
    server = serve()
    try:
        assert client.get_run("r").status == RUNNING
        with client.open_run_file("r", "outputs/a.bin") as again:
            assert again.read(3) == b"aaa"
    finally:
        server.stop()


def test_a_script_reads_datasets_and_cannot_register_them(
    channel: tuple[LocalBackend, ChannelBackend],
) -> None:
    backend, client = channel
    definition = {"type": "file", "sources": [{"datastore": "raw", "path": "x"}], "steps": []}
    registered = backend.create_dataset("mnist", definition)
    assert client.get_dataset("mnist") == registered
    assert client.get_dataset_by_id(registered.id) == registered
    assert client.find_dataset("mnist", 2) is None
    assert [d.name for d in client.list_datasets(latest=True)] == ["mnist"]
    with pytest.raises(PermissionDeniedError, match="register datasets"):
        client.create_dataset("other", definition)
    with pytest.raises(PermissionDeniedError, match="register datasets"):
        client.create_dataset("mnist", {**definition, "steps": [{"op": "take", "count": 1}]})
    assert [d.name for d in backend.list_datasets()] == ["mnist"]
