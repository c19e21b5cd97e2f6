"""Who may read the UI, and which files a download can reach (plain HTTP, no browser)."""

from __future__ import annotations

import http.client
import urllib.parse

import pytest

from tests.ui.conftest import UiServer, UiWorkspace


def _raw_get(
    server: UiServer, target: str, cookie: str | None = None, host: str | None = None
) -> int:
    """The status of a GET of ``target`` sent as it is: a browser or httpx would normalise
    the ``..`` and percent escapes in it first."""
    parsed = urllib.parse.urlsplit(server.base)
    connection = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=30)
    headers = {"Host": host or parsed.netloc}
    if cookie is not None:
        headers["Cookie"] = cookie
    connection.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
    for key, value in headers.items():
        connection.putheader(key, value)
    connection.endheaders()
    status = connection.getresponse().status
    connection.close()
    return status


def _cookie(server: UiServer) -> str:
    with server.client() as client:
        answer = client.get(f"/?token={server.token}")
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        set_cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie
        return set_cookie.split(";", 1)[0]


def test_no_token_is_401_and_a_foreign_host_is_403(ui_server: UiServer) -> None:
    with ui_server.client() as client:
        assert client.get("/").status_code == 401
        assert client.get("/api/experiments").status_code == 401
        assert client.get("/static/app.js").status_code == 401
        assert client.get("/?token=wrong").status_code == 401
        assert client.get("/", headers={"Cookie": "modelyard-ui-1=nope"}).status_code == 401
    cookie = _cookie(ui_server)
    assert _raw_get(ui_server, "/api/experiments", cookie) == 200
    # DNS rebinding: a page of another site that resolves to 127.0.0.1 sends its own name.
    port = urllib.parse.urlsplit(ui_server.base).port
    assert _raw_get(ui_server, "/api/experiments", cookie, host=f"evil.example:{port}") == 403
    assert _raw_get(ui_server, "/api/experiments", cookie, host=f"localhost:{port}") == 200


@pytest.mark.parametrize(
    "name",
    [
        "../../../etc/passwd",
        "outputs/../../x",
        "/etc/passwd",
        "outputs\\..\\..\\x",
        "outputs/result.txt\x00.png",
        "%2e%2e/%2e%2e/etc/passwd",
        "outputs/%2e%2e/%2e%2e/x",
    ],
)
def test_a_download_stays_inside_the_run(
    ui_server: UiServer, ui_workspace: UiWorkspace, name: str
) -> None:
    cookie = _cookie(ui_server)
    run_id = ui_workspace.table_runs["low"]
    target = f"/api/runs/{run_id}/file?name={urllib.parse.quote(name, safe='')}"
    assert _raw_get(ui_server, target, cookie) == 400
    # Sent unescaped too, as a hand-written request would.
    raw = f"/api/runs/{run_id}/file?name={name.replace(chr(0), '%00').replace(chr(92), '%5C')}"
    assert 400 <= _raw_get(ui_server, raw, cookie) < 500


def test_a_download_of_a_file_of_the_run(ui_server: UiServer, ui_workspace: UiWorkspace) -> None:
    cookie = _cookie(ui_server)
    run = ui_workspace.parent_run
    assert run is not None
    with ui_server.client(headers={"Cookie": cookie}) as client:
        answer = client.get(f"/api/runs/{run.id}/file", params={"name": "outputs/model.bin"})
        assert answer.status_code == 200 and answer.content == b"weights"
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["content-disposition"].startswith("attachment")
        assert client.get(f"/api/runs/{run.id}/file", params={"name": "nope"}).status_code == 404
        csv = client.get(
            f"/api/runs/{ui_workspace.table_runs['low']}/series.csv",
            params={"name": "validation_acc"},
        )
        assert csv.status_code == 200
        lines = csv.text.splitlines()
        assert lines[0] == "step,value,time" and len(lines) == 11
        assert lines[-1].split(",")[1] == "0.8"
