"""v1's raw-HTTP scoring style (``@rawhttp`` run(request), AMLResponse), on a deployed service."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelyard import Environment, Workspace
from modelyard.model import Model
from modelyard.serving.raw_http import multipart_available
from modelyard.webservice import LocalWebservice, Webservice
from tests.serving.conftest import inference_config

Linear = tuple[Model, np.ndarray, np.ndarray]
# A PNG's signature and every byte value: what a text decoding on the way would change.
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64


def _deploy(
    workspace: Workspace,
    linear: Linear,
    tmp_path: Path,
    name: str,
    script: str = "raw_score.py",
    environment: Environment | None = None,
) -> Webservice:
    service = Model.deploy(
        workspace, name, [linear[0]], inference_config(tmp_path, script, environment)
    )
    service.wait_for_deployment()
    return service


def test_a_rawhttp_run_answers_gets_bytes_json_statuses_and_errors(
    workspace: Workspace, linear: Linear, tmp_path: Path
) -> None:
    service = _deploy(workspace, linear, tmp_path, "raw")
    url = service.scoring_uri
    with httpx.Client(timeout=60) as client:
        got = client.get(
            url, params=[("n", "3"), ("tag", "a"), ("tag", "b c")], headers={"X-Caller": "nb"}
        )
        assert got.status_code == 200
        assert got.headers["content-type"] == "application/json"
        assert got.json() == {
            "full_path": "/score?n=3&tag=a&tag=b+c",
            "path": "/score",
            "url": f"{url}?n=3&tag=a&tag=b+c",
            "args": {"n": ["3"], "tag": ["a", "b c"]},
            "n": 3,
            "header": "nb",
        }

        echoed = client.post(
            url, params={"action": "echo"}, content=IMAGE, headers={"Content-Type": "image/png"}
        )
        assert echoed.status_code == 200
        assert echoed.content == IMAGE
        assert echoed.headers["content-type"] == "image/png"
        assert echoed.headers["x-bytes"] == str(len(IMAGE))

        answered = client.post(url, params={"action": "json"}, json={"data": [[1, 2]]})
        assert answered.status_code == 200
        assert answered.json() == {"got": {"data": [[1, 2]]}, "same": True}
        # Webservice.run posts JSON: the same route, the same answer.
        assert service.run({"data": [1]}) == {"got": {"data": [1]}, "same": True}

        accepted = client.post(url, params={"action": "status", "code": "202"}, content=b"")
        assert accepted.status_code == 202
        assert accepted.text == "accepted"
        assert accepted.headers["x-model"] == "raw-v1"
        assert accepted.headers["content-type"] == "text/plain; charset=utf-8"

        failed = client.post(url, params={"action": "raise"}, content=b"x")
        assert failed.status_code == 500
        assert failed.json() == {"error": "run() raised ValueError: cannot score this (a test)"}
        # A JSON body that is not JSON fails in get_json(), inside run(): its message says so.
        broken = client.post(
            url,
            params={"action": "json"},
            content=b"{nope",
            headers={"Content-Type": "application/json"},
        )
        assert broken.status_code == 500 and "the request body is not JSON" in broken.text
        assert client.post(url, params={"action": "json"}, json=[1]).status_code == 200
    assert "ValueError: cannot score this (a test)" in service.get_logs()


def test_a_plain_run_refuses_get_and_a_raw_one_keeps_the_request_size_limit(
    workspace: Workspace, linear: Linear, tmp_path: Path
) -> None:
    plain = _deploy(workspace, linear, tmp_path, "plain", script="echo_score.py")
    refused = httpx.get(plain.scoring_uri, params={"x": "1"})
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"
    assert "GET /score needs a @rawhttp run" in refused.json()["error"]
    assert plain.run({"x": 1})["echo"] == {"x": 1}

    raw = Model.deploy(
        workspace,
        "raw-small",
        [linear[0]],
        inference_config(tmp_path, "raw_score.py"),
        # The same settings apply to a raw run: the body is read once, within the limit.
        LocalWebservice.deploy_configuration(max_request_bytes=1000),
    )
    raw.wait_for_deployment()
    too_big = httpx.post(raw.scoring_uri, params={"action": "echo"}, content=b"x" * 2000)
    assert too_big.status_code == 413 and "over 1000 bytes" in too_big.text
    small = httpx.post(raw.scoring_uri, params={"action": "echo"}, content=b"x" * 1000)
    assert small.status_code == 200 and small.content == b"x" * 1000


def test_multipart_uploads_reach_request_files_with_python_multipart_in_the_environment(
    workspace: Workspace, linear: Linear, tmp_path: Path
) -> None:
    # python-multipart is not among modelyard's packages: the service's environment asks for
    # it, and is built (inheriting nothing) from the environment cache.
    environment = Environment("raw-uploads", pip_packages=["python-multipart"])
    service = _deploy(workspace, linear, tmp_path, "uploads", environment=environment)
    notes = b"line one\nline two\n"
    answer = httpx.post(
        service.scoring_uri,
        params={"action": "files"},
        files=[
            ("image", ("digit.png", IMAGE, "image/png")),
            ("notes", ("notes.txt", notes, "text/plain")),
        ],
        data={"label": ["7", "seven"]},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "files": {
            "image": {
                "filename": "digit.png",
                "type": "image/png",
                "sha256": hashlib.sha256(IMAGE).hexdigest(),
            },
            "notes": {
                "filename": "notes.txt",
                "type": "text/plain",
                "sha256": hashlib.sha256(notes).hexdigest(),
            },
        },
        "form": {"label": ["7", "seven"]},
    }
    # A urlencoded form is read without python-multipart.
    form = httpx.post(service.scoring_uri, params={"action": "files"}, data={"a": "1"})
    assert form.json() == {"files": {}, "form": {"a": ["1"]}}
    broken = httpx.post(
        service.scoring_uri,
        params={"action": "files"},
        content=b"--b\r\nno headers at all",
        headers={"Content-Type": "multipart/form-data"},
    )
    assert broken.status_code == 500 and "multipart/form-data body cannot be read" in broken.text


def test_multipart_without_python_multipart_says_what_to_install(
    workspace: Workspace, linear: Linear, tmp_path: Path
) -> None:
    if multipart_available():
        pytest.skip("python-multipart is installed in modelyard's Python: uploads work there")
    service = _deploy(workspace, linear, tmp_path, "no-uploads")
    answer = httpx.post(
        service.scoring_uri,
        params={"action": "files"},
        files={"image": ("digit.png", IMAGE, "image/png")},
    )
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert "ConfigError" in error and "add 'python-multipart'" in error
    # The raw body is still there for a run that reads it itself.
    echoed = httpx.post(
        service.scoring_uri,
        params={"action": "echo"},
        files={"image": ("digit.png", IMAGE, "image/png")},
    )
    assert echoed.status_code == 200 and IMAGE in echoed.content
