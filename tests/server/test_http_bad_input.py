"""Bad input and attacks over HTTP: each refused with a 4xx that names the problem, nothing
written. Requests are made raw (httpx), as an attacker would, not through the client."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from modelyard.backend.records import RUNNING
from modelyard.backend.remote import SHA256_HEADER
from modelyard.backend.remote.backend import RemoteBackend
from tests.server_process import ServerProcess


@dataclass
class Target:
    server: ServerProcess
    workspace: str
    backend: RemoteBackend

    def post(self, call: str, body: object = None, **kwargs: object) -> httpx.Response:
        return self.server.call(
            "POST", f"/api/v1/workspaces/{self.workspace}/calls/{call}", json=body, **kwargs
        )

    def get(self, call: str, **params: object) -> httpx.Response:
        return self.server.call(
            "GET", f"/api/v1/workspaces/{self.workspace}/calls/{call}", params=params
        )


@pytest.fixture
def target(http_server: ServerProcess) -> Iterator[Target]:
    name = http_server.new_workspace()
    backend = RemoteBackend(http_server.url, name, http_server.admin_token)
    backend.create_run("r1", "e", run_type="script", status=RUNNING)
    yield Target(http_server, name, backend)


def _refused(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    for word in words:
        assert word in error["message"] or word == error.get("field"), error


TRAVERSALS = [
    "../escape.txt",
    "outputs/../../escape.txt",
    "%2e%2e/escape.txt",
    "/etc/passwd",
    "outputs\\..\\..\\escape.txt",
    "outputs/a\x00b",
    "",
]


@pytest.mark.parametrize("name", TRAVERSALS)
def test_file_names_stay_inside_the_run(target: Target, name: str) -> None:
    upload = target.server.call(
        "POST",
        f"/api/v1/workspaces/{target.workspace}/calls/upload_run_file",
        params={"run_id": "r1", "name": name},
        content=b"data",
    )
    assert 400 <= upload.status_code < 500, upload.text
    assert upload.json()["error"]["field"] in ("name", "run_id", "body")
    download = target.get("open_run_file", run_id="r1", name=name)
    assert 400 <= download.status_code < 500, download.text
    appended = target.post(
        "append_run_file", {"run_id": "r1", "name": name, "offset": 0, "data": "ZGF0YQ=="}
    )
    assert 400 <= appended.status_code < 500, appended.text
    assert target.backend.list_run_files("r1") == []


@pytest.mark.parametrize("relpath", ["../x", "/abs", "a/../../x", "a\x00"])
def test_model_paths_stay_inside_the_model(target: Target, relpath: str) -> None:
    response = target.server.call(
        "POST",
        f"/api/v1/workspaces/{target.workspace}/calls/upload_model_file",
        params={"model_name": "m", "upload_id": "u1", "relpath": relpath},
        content=b"weights",
    )
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize("name", ["bad name", "../x", "a/b", "x" * 300, "<script>", "", "name\x00"])
def test_names_outside_the_safe_set_are_refused(target: Target, name: str) -> None:
    response = target.post("ensure_experiment", {"name": name})
    _refused(response, 400)
    assert [e.name for e in target.backend.list_experiments()] == ["e"]


def test_tags_are_stored_as_given(target: Target) -> None:
    tags = {"note": "<img src=x onerror=alert(1)>", "quote": "\"'`;--"}
    assert target.post("set_run_tags", {"run_id": "r1", "tags": tags}).status_code == 200
    assert target.backend.get_run_details("r1").tags == tags


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"run_id": 5}',
        b'{"run_id": "r1", "extra": 1}',
        b'{"run_id": ["r1"]}',
        b"{",
    ],
)
def test_json_of_the_wrong_shape_is_a_400(target: Target, body: bytes) -> None:
    response = target.server.call(
        "POST",
        f"/api/v1/workspaces/{target.workspace}/calls/get_run",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    _refused(response, 400)


def test_a_body_over_the_limit_is_a_413_and_nothing_is_stored(target: Target) -> None:
    limit = target.server.settings.max_body_bytes
    values = [1.0] * (limit // 4)
    batch = {"name": "m", "kind": "scalar", "batch_id": "b", "values": values,
             "steps": [0] * len(values), "times": [0.0] * len(values)}  # fmt: skip
    response = target.post("log_metrics", {"run_id": "r1", "batches": [batch]})
    _refused(response, 413, "body")
    assert target.backend.list_metrics("r1") == []


def test_an_upload_that_does_not_match_its_digest_stores_nothing(target: Target) -> None:
    response = target.server.call(
        "POST",
        f"/api/v1/workspaces/{target.workspace}/calls/upload_run_file",
        params={"run_id": "r1", "name": "outputs/f.bin"},
        content=b"what arrived",
        headers={SHA256_HEADER: "0" * 64},
    )
    _refused(response, 400, "altered")
    assert target.backend.list_run_files("r1") == []
    target.backend.upload_run_file("r1", "outputs/f.bin", io.BytesIO(b"whole"))
    assert target.backend.open_run_file("r1", "outputs/f.bin").read() == b"whole"


def test_downloads_resume_from_a_byte(target: Target) -> None:
    data = bytes(range(256)) * 4096
    target.backend.upload_run_file("r1", "outputs/big.bin", io.BytesIO(data))
    response = target.server.call(
        "GET",
        f"/api/v1/workspaces/{target.workspace}/calls/open_run_file",
        params={"run_id": "r1", "name": "outputs/big.bin"},
        headers={"Range": "bytes=1000-"},
    )
    assert response.status_code == 206
    assert response.content == data[1000:]
    assert response.headers["content-range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"


def test_unknown_routes_and_methods_are_4xx(target: Target) -> None:
    assert target.post("no_such_call", {}).status_code == 404
    assert target.server.call("GET", "/api/v1/nothing").status_code == 404
    assert json.loads(target.server.call("DELETE", "/api/v1/health").text)["error"]
