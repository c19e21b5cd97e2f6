"""The same UI served by a real ``modelyard server``, behind its accounts (``/ui/``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard import Experiment, Workspace
from tests.server_process import ServerProcess
from tests.ui.conftest import SCREENSHOTS, XSS_NAME


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    started = ServerProcess.start(tmp_path_factory.mktemp("ui-server"))
    yield started
    started.stop()


@contextlib.contextmanager
def _login(server: ServerProcess, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        answer = client.post("/ui/login", data={"token": token})
        assert answer.status_code == 303, answer.text
        assert "HttpOnly" in answer.headers["set-cookie"]
        assert "SameSite=strict" in answer.headers["set-cookie"]
        yield client


def test_a_member_reads_the_ui_of_a_server_workspace(
    server: ServerProcess, browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = server.user("ada")
    name = server.new_workspace(owner="ada")
    monkeypatch.setenv("MODELYARD_TOKEN", ada)
    ws = Workspace.get(name, server=server.url)
    run = Experiment(ws, "remote").start_logging(display_name=XSS_NAME, outputs=False)
    for step in range(5):
        run.log("acc", step / 10)
    run.complete()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    tab.goto(f"{server.url}/ui/login")
    tab.fill("input[name=token]", ada)
    tab.click("button[type=submit]")
    tab.locator("#workspaces a", has_text=name).click()
    tab.wait_for_selector("body[data-ready=true]")
    assert "remote" in tab.locator("#experiments").inner_text()
    tab.locator("#experiments a", has_text=XSS_NAME).click()
    tab.wait_for_selector("body[data-ready=true]")
    assert tab.url == f"{server.url}/ui/{name}/runs/{run.id}" == run.get_portal_url()
    assert tab.locator("#run-name").inner_text() == XSS_NAME
    tab.wait_for_selector("#charts [data-metric=acc][data-points='5'] canvas")
    # The pages' links stay below the workspace's path.
    assert tab.locator("header a", has_text="Models").get_attribute("href") == f"/ui/{name}/models"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / "server-run.png"), full_page=True)
    assert dialogs == []
    context.close()


def test_the_server_ui_wants_a_login_and_membership(server: ServerProcess, tmp_path: Path) -> None:
    name = server.new_workspace()
    with httpx.Client(base_url=server.url, timeout=60) as anonymous:
        assert anonymous.get("/ui/").status_code == 401
        assert anonymous.get(f"/ui/{name}/api/experiments").status_code == 401
        # An API token in a header is for the API: the UI takes its login cookie only.
        bearer = {"Authorization": f"Bearer {server.admin_token}"}
        assert anonymous.get(f"/ui/{name}/", headers=bearer).status_code == 401
        assert anonymous.post("/ui/login", data={"token": "nope"}).status_code == 401
        # A form of another site, posting its own account's token (login CSRF).
        foreign = {"Origin": "http://evil.example"}
        other = server.user("mallory")
        assert (
            anonymous.post("/ui/login", data={"token": other}, headers=foreign).status_code == 403
        )
    with _login(server, server.user("eve")) as eve:
        assert name not in eve.get("/ui/").text
        assert eve.get(f"/ui/{name}/api/experiments").status_code == 404
        assert eve.get("/ui/no-such-ws/").status_code == 404
    reader = server.member(name, "reader")
    with _login(server, reader) as client:
        assert client.get(f"/ui/{name}/api/experiments").json() == []
        page = client.get(f"/ui/{name}/runs/x")
        assert page.status_code == 200
        assert f'<meta name="modelyard-base" content="/ui/{name}/">' in page.text
        assert f'src="/ui/{name}/static/app.js"' in page.text
        assert client.get(f"/ui/{name}/static/app.js").status_code == 200
        assert client.get(f"/ui/{name}/api/runs/r/file", params={"name": "../x"}).status_code == 400
    # The API itself is as it was.
    assert server.call("GET", "/api/v1/health").status_code == 200
