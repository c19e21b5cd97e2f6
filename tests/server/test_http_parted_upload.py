"""Large files reach the server in parts: each part checked, a broken upload resumed where it
stopped, and no part, user or run able to take another's upload."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from modelyard.backend.records import RUNNING
from modelyard.backend.remote import (
    FILE_SHA256_HEADER,
    SHA256_HEADER,
    UPLOAD_ID_HEADER,
    parted_upload,
    transport,
)
from modelyard.backend.remote.backend import RemoteBackend
from modelyard.errors import NotFoundError
from modelyard.server.uploads import PartedUploads
from tests.server_process import ServerProcess
from tests.tcp_proxy import TcpProxy

PART = 256 << 10


@dataclass
class Target:
    server: ServerProcess
    workspace: str
    backend: RemoteBackend
    sent: list[str]  # the Content-Range of each upload request the backend made

    def part(
        self,
        data: bytes,
        start: int,
        end: int,
        upload_id: str,
        *,
        token: str | None = None,
        run_id: str = "r1",
        part_sha256: str | None = None,
    ) -> httpx.Response:
        """Bytes ``start:end`` of ``data`` as one part, sent raw."""
        headers = {
            UPLOAD_ID_HEADER: upload_id,
            FILE_SHA256_HEADER: hashlib.sha256(data).hexdigest(),
            "Content-Range": f"bytes {start}-{end - 1}/{len(data)}",
            SHA256_HEADER: part_sha256 or hashlib.sha256(data[start:end]).hexdigest(),
        }
        return self.server.call(
            "POST",
            f"/api/v1/workspaces/{self.workspace}/calls/upload_run_file",
            token,
            params={"run_id": run_id, "name": "outputs/big.bin"},
            content=data[start:end],
            headers=headers,
        )

    def held(self, data: bytes, upload_id: str, token: str | None = None) -> httpx.Response:
        headers = {
            UPLOAD_ID_HEADER: upload_id,
            FILE_SHA256_HEADER: hashlib.sha256(data).hexdigest(),
            "Content-Range": f"bytes */{len(data)}",
        }
        return self.server.call(
            "POST",
            f"/api/v1/workspaces/{self.workspace}/calls/upload_run_file",
            token,
            params={"run_id": "r1", "name": "outputs/big.bin"},
            headers=headers,
        )


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Parts of 256 KiB for files over 1 MiB, so that a few MiB make many parts; and a
    cache folder of this test's own, where an upload's id is kept while it lasts."""
    monkeypatch.setattr(transport, "PARTED_THRESHOLD", 1 << 20)
    monkeypatch.setattr(parted_upload, "PART_BYTES", PART)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def target(http_server: ServerProcess) -> Iterator[Target]:
    name = http_server.new_workspace()
    backend = RemoteBackend(http_server.url, name, http_server.admin_token)
    backend.create_run("r1", "e", run_type="script", status=RUNNING)
    sent: list[str] = []

    def count(request: httpx.Request) -> None:
        if request.url.path.endswith("/upload_run_file"):
            sent.append(request.headers.get("content-range", "whole"))

    backend.transport.client.event_hooks["request"].append(count)
    yield Target(http_server, name, backend, sent)
    backend.transport.close()


def _file(tmp_path: Path, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    return path, data


def _stored(target: Target) -> bytes:
    with target.backend.open_run_file("r1", "outputs/big.bin") as stream:
        return stream.read()


def test_a_large_file_goes_in_parts_and_arrives_whole(target: Target, tmp_path: Path) -> None:
    # The default sizes: 40 MiB is over the 32 MiB threshold, so parts of 16, 16 and 8 MiB.
    path, data = _file(tmp_path, 40 << 20)
    target.backend.upload_run_file("r1", "outputs/big.bin", path)
    assert _stored(target) == data
    parts = sorted(r for r in target.sent if r.startswith("bytes ") and "*" not in r)
    assert parts == [
        "bytes 0-16777215/41943040",
        "bytes 16777216-33554431/41943040",
        "bytes 33554432-41943039/41943040",
    ]
    # The server keeps no copy of a finished upload's bytes, only its reply.
    uploads = PartedUploads(target.server.settings.data_dir)
    for folder in uploads.root.iterdir():
        assert not (folder / "data").exists()


def test_a_small_file_goes_in_one_request(target: Target, tmp_path: Path) -> None:
    path, data = _file(tmp_path, 1 << 20)
    target.backend.upload_run_file("r1", "outputs/big.bin", path)
    assert target.sent == ["whole"] and _stored(target) == data


def test_an_upload_that_stopped_resumes_with_the_parts_it_lacks(
    target: Target, tmp_path: Path, small_parts: None
) -> None:
    path, data = _file(tmp_path, 4 * PART + 1000)
    # A client sent parts 1 and 3 of 5 and stopped: its id is kept where the client keeps it.
    upload_id = "stopped0123456789abcdef"
    memo = parted_upload._memo_file(
        target.server.url,
        f"/api/v1/workspaces/{target.workspace}/calls/upload_run_file",
        {"run_id": "r1", "name": "outputs/big.bin"},
        len(data),
        hashlib.sha256(data).hexdigest(),
    )
    memo.parent.mkdir(parents=True)
    memo.write_text(upload_id)
    for start in (0, 2 * PART):
        assert target.part(data, start, start + PART, upload_id).status_code == 202
    held = target.held(data, upload_id)
    assert held.status_code == 202
    assert held.json() == {"received": [[0, PART], [2 * PART, 3 * PART]]}
    with pytest.raises(NotFoundError):
        target.backend.open_run_file("r1", "outputs/big.bin").read()

    target.backend.upload_run_file("r1", "outputs/big.bin", path)
    assert _stored(target) == data
    # One question, then only the three parts the server lacked.
    size = len(data)
    assert sorted(target.sent) == sorted(
        [
            f"bytes */{size}",
            f"bytes {PART}-{2 * PART - 1}/{size}",
            f"bytes {3 * PART}-{4 * PART - 1}/{size}",
            f"bytes {4 * PART}-{size - 1}/{size}",
        ]
    )
    assert not memo.exists()


def test_a_last_part_sent_again_gets_the_same_reply_and_no_second_call(
    target: Target, tmp_path: Path
) -> None:
    data = os.urandom(2 * PART)
    upload_id = "again0123456789abcdef"
    assert target.part(data, 0, PART, upload_id).status_code == 202
    first = target.part(data, PART, 2 * PART, upload_id)
    assert first.status_code == 200, first.text
    # The file is replaced meanwhile; the repeated last part must not write it back.
    target.backend.upload_run_file("r1", "outputs/big.bin", _file(tmp_path, 10)[0])
    again = target.part(data, PART, 2 * PART, upload_id)
    assert again.status_code == 200 and again.content == first.content
    assert len(_stored(target)) == 10


def test_an_altered_part_is_refused_and_not_held(target: Target) -> None:
    data = os.urandom(2 * PART)
    upload_id = "altered0123456789abcdef"
    refused = target.part(data, 0, PART, upload_id, part_sha256="0" * 64)
    assert refused.status_code == 400 and "altered" in refused.json()["error"]["message"]
    assert target.held(data, upload_id).json() == {"received": []}
    # Sent again as it should be, it counts.
    assert target.part(data, 0, PART, upload_id).status_code == 202
    assert target.held(data, upload_id).json() == {"received": [[0, PART]]}


def test_parts_that_do_not_make_the_file_they_claim_are_refused(target: Target) -> None:
    data = os.urandom(2 * PART)
    other = os.urandom(2 * PART)
    upload_id = "mixed0123456789abcdefgh"
    assert target.part(data, 0, PART, upload_id).status_code == 202
    # A part of another file under the same id: the file's digest is bound to the upload.
    refused = target.part(other, PART, 2 * PART, upload_id)
    assert refused.status_code == 400 and "another file" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    ("content_range", "status", "field"),
    [
        ("bytes 0-99/50", 400, "Content-Range"),
        ("bytes 10-5/50", 400, "Content-Range"),
        ("bytes 0-9", 400, "Content-Range"),
        (f"bytes 0-9/{1 << 50}", 413, "Content-Range"),
        (f"bytes 0-{(300 << 20) - 1}/{1 << 30}", 413, "Content-Range"),
    ],
)
def test_ranges_that_make_no_part_are_refused(
    target: Target, content_range: str, status: int, field: str
) -> None:
    response = target.server.call(
        "POST",
        f"/api/v1/workspaces/{target.workspace}/calls/upload_run_file",
        params={"run_id": "r1", "name": "outputs/big.bin"},
        content=b"0123456789",
        headers={
            UPLOAD_ID_HEADER: "ranges0123456789abcdef",
            FILE_SHA256_HEADER: "0" * 64,
            SHA256_HEADER: hashlib.sha256(b"0123456789").hexdigest(),
            "Content-Range": content_range,
        },
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize("upload_id", ["short", "../../etc", "a" * 65, "id with spaces 0123"])
def test_upload_ids_outside_the_safe_set_are_refused(target: Target, upload_id: str) -> None:
    response = target.part(b"x" * 100, 0, 100, upload_id)
    assert response.status_code == 400 and response.json()["error"]["field"] == UPLOAD_ID_HEADER


def test_another_user_who_knows_the_id_reaches_an_upload_of_their_own(
    target: Target, http_server: ServerProcess
) -> None:
    token = http_server.member(target.workspace, "contributor")
    data = os.urandom(2 * PART)
    upload_id = "shared0123456789abcdef"
    assert target.part(data, 0, PART, upload_id).status_code == 202
    # The other user sees nothing held under that id, and their part does not complete
    # the admin's upload.
    assert target.held(data, upload_id, token).json() == {"received": []}
    assert target.part(data, PART, 2 * PART, upload_id, token=token).status_code == 202
    assert target.held(data, upload_id).json() == {"received": [[0, PART]]}


def test_a_reader_and_another_runs_token_are_refused_every_part(
    target: Target, http_server: ServerProcess
) -> None:
    reader = http_server.member(target.workspace, "reader")
    target.backend.create_run("r2", "e", run_type="script", status=RUNNING)
    accounts = http_server.accounts()
    try:
        _record, run_token = accounts.create_run_token(target.workspace, "r2")
    finally:
        accounts.close()
    data = os.urandom(2 * PART)
    assert target.part(data, 0, PART, "reader0123456789abcdef", token=reader).status_code == 403
    other_run = target.part(data, 0, PART, "runtok0123456789abcdef", token=run_token)
    assert other_run.status_code == 403, other_run.text
    # Its own run's token may upload its files in parts.
    own = target.part(data, 0, PART, "runtok0123456789abcdef", token=run_token, run_id="r2")
    assert own.status_code == 202, own.text
    last = target.part(data, PART, 2 * PART, "runtok0123456789abcdef", token=run_token, run_id="r2")
    assert last.status_code == 200, last.text
    with target.backend.open_run_file("r2", "outputs/big.bin") as stream:
        assert stream.read() == data


def test_parts_whose_replies_are_lost_are_sent_again_and_the_file_arrives_once(
    http_server: ServerProcess, tmp_path: Path, small_parts: None
) -> None:
    """The network loses the replies of three requests (the server did their work): the
    client sends those again, and the file arrives whole, once. (A last part's reply lost
    is the raw test above: the server answers it again without a second call.)"""
    name = http_server.new_workspace()
    proxy = TcpProxy.start("127.0.0.1", http_server.port)
    backend = RemoteBackend(proxy.endpoint_url, name, http_server.admin_token)
    try:
        backend.create_run("r1", "e", run_type="script", status=RUNNING)
        path, data = _file(tmp_path, 8 * PART + 17)
        proxy.drop_replies(3)
        backend.upload_run_file("r1", "outputs/big.bin", path)
        assert proxy.dropped == 3
        with backend.open_run_file("r1", "outputs/big.bin") as stream:
            assert stream.read() == data
        assert [(f.path, f.size) for f in backend.list_run_files("r1")] == [
            ("outputs/big.bin", len(data))
        ]
    finally:
        backend.transport.close()
        proxy.stop()


def test_a_server_away_ends_the_upload_once_and_the_next_upload_resumes_it(
    http_server: ServerProcess, tmp_path: Path, small_parts: None
) -> None:
    """The server goes away after the first request: the upload fails after one wait for
    retries, without trying the parts not yet begun, and uploading again once it is back
    sends only what the server lacks."""
    name = http_server.new_workspace()
    proxy = TcpProxy.start("127.0.0.1", http_server.port)
    backend = RemoteBackend(
        proxy.endpoint_url,
        name,
        http_server.admin_token,
        transport=transport.Transport(proxy.endpoint_url, http_server.admin_token, retry_for=1),
    )
    tried: list[str] = []

    def away_after_the_question(request: httpx.Request) -> None:
        if request.url.path.endswith("/upload_run_file"):
            tried.append(request.headers["content-range"])
            if "*" not in tried[-1]:  # the first part: the question was answered
                proxy.set_mode("refuse")

    try:
        backend.create_run("r1", "e", run_type="script", status=RUNNING)
        path, data = _file(tmp_path, 16 * PART)
        backend.transport.client.event_hooks["request"].append(away_after_the_question)
        with pytest.raises(transport.ServerAway, match=proxy.endpoint_url):
            backend.upload_run_file("r1", "outputs/big.bin", path)
        begun = {r for r in tried if "*" not in r}
        assert 0 < len(begun) <= 2 * parted_upload.PARALLEL_PARTS < 16

        backend.transport.client.event_hooks["request"].clear()
        proxy.set_mode("forward")
        backend.upload_run_file("r1", "outputs/big.bin", path)
        with backend.open_run_file("r1", "outputs/big.bin") as stream:
            assert stream.read() == data
    finally:
        backend.transport.close()
        proxy.stop()
