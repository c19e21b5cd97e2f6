"""Every route of the server is authenticated and authorized as ``server/authz.py`` says.

The app's routes are enumerated: one without a rule fails the first test. Then every route
is called, on a real server process, as every kind of caller (no token, a revoked one, an
outsider, each role, a run's token, a cluster's token): a caller the matrix refuses gets 401,
403 or (not a member) 404, and one it allows gets past authorization (its request, with no
arguments, is then refused as bad input, or answered). So no role can do more than the matrix
says, and none is refused what it allows.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Route

from modelyard.backend.contract_calls import contract_calls
from modelyard.backend.records import COMPLETED, QUEUED, RUNNING
from modelyard.backend.remote.backend import RemoteBackend
from modelyard.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from modelyard.runner.job import JOB_FILE, JobSpec
from modelyard.runner.local_compute import COMPUTE_PROPERTY
from modelyard.server import authz
from modelyard.server.app import create_app
from modelyard.server.settings import ServerSettings
from tests.server_process import ServerProcess

CALLS_PREFIX = "/api/v1/workspaces/{workspace}/calls/"
# The compute target of the matrix's cluster token (never provisioned: no record of it).
CLUSTER = "authzcluster"


def _routes(tmp_path: Path) -> list[tuple[str, str]]:
    app = create_app(ServerSettings(data_dir=tmp_path))
    found = []
    for route in app.routes:
        assert isinstance(route, APIRoute | Route), route
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append((method, route.path))
    return found


def test_every_route_has_a_rule_and_every_rule_a_route(tmp_path: Path) -> None:
    routes = _routes(tmp_path)
    calls = {
        path.removeprefix(CALLS_PREFIX) for _m, path in routes if path.startswith(CALLS_PREFIX)
    }
    others = {(m, p) for m, p in routes if not p.startswith(CALLS_PREFIX)}
    assert calls == set(contract_calls()) == set(authz.CALL_RULES)
    assert others == set(authz.ROUTE_RULES)


@dataclass
class Callers:
    """One workspace and a token of each kind of caller."""

    workspace: str
    tokens: dict[str, str | None]
    run_id: str


@pytest.fixture(scope="module")
def callers(http_server: ServerProcess) -> Iterator[Callers]:
    server = http_server
    tokens: dict[str, str | None] = {"anonymous": None}
    for role in (*authz.ROLES, "outsider"):
        tokens[role] = server.user()
    accounts = server.accounts()
    try:
        revoked_user = f"revoked{len(tokens)}"
        accounts.create_user(revoked_user)
        record, tokens["revoked"] = accounts.create_token(revoked_user, "gone")
        accounts.revoke_token(revoked_user, record.id)
        users = {role: accounts.authenticate(str(tokens[role])).user for role in authz.ROLES}
    finally:
        accounts.close()
    workspace = server.new_workspace(**{str(users[role]): role for role in authz.ROLES})
    # The run stays Queued: it keeps the owner's DELETE of the workspace from deleting it
    # (409, past authorization), so every caller after finds it there.
    admin = RemoteBackend(server.url, workspace, server.admin_token)
    run = admin.create_run("authz_run", "e", run_type="script", status=QUEUED)
    # Given the default datastore, as a submit records it: the run's token reaches it.
    given = {"data_reference_name": "data", "datastore_name": "workspaceblobstore"}
    job = JobSpec(script="train.py", inputs=[given]).to_json().encode()
    admin.upload_run_file(run.id, JOB_FILE, io.BytesIO(job))
    # On the cluster's compute target, so the cluster's token may ask for its access.
    admin.add_run_properties(run.id, {COMPUTE_PROPERTY: CLUSTER})
    accounts = server.accounts()
    try:
        _record, tokens["run"] = accounts.create_run_token(workspace, run.id)
        _record, tokens["cluster"] = accounts.create_cluster_token(workspace, CLUSTER)
    finally:
        accounts.close()
    yield Callers(workspace, tokens, run.id)


def _allowed(rule: str, caller: str, call: str | None) -> bool:
    if caller in ("anonymous", "revoked"):
        return rule == authz.PUBLIC
    if caller in ("run", "cluster"):
        if call is not None:
            calls = authz.RUN_TOKEN_CALLS if caller == "run" else authz.CLUSTER_TOKEN_CALLS
            return call in calls
        return rule in (authz.PUBLIC, authz.AUTHENTICATED) or (
            caller == "cluster" and rule == authz.CLUSTER
        )
    if rule == authz.CLUSTER:
        return False
    if rule in (authz.PUBLIC, authz.AUTHENTICATED, authz.USER):
        return True
    if caller == "outsider":
        return False
    return authz.allows(caller, rule)


def _denial(caller: str, in_a_workspace: bool) -> int:
    """The status a refused caller gets: 401 without an accepted token, 404 for a workspace
    the caller is not in (as if it did not exist), else 403."""
    if caller in ("anonymous", "revoked"):
        return 401
    return 404 if caller == "outsider" and in_a_workspace else 403


JSON_CALLS = {
    name for name, call in contract_calls().items() if call.upload is None and not call.download
}


KINDS = ["anonymous", "revoked", "outsider", *authz.ROLES, "run", "cluster"]


@pytest.mark.parametrize("caller", KINDS)
def test_no_caller_can_do_more_or_less_than_the_matrix(
    http_server: ServerProcess, callers: Callers, caller: str, tmp_path: Path
) -> None:
    token = callers.tokens[caller]
    wrong: list[str] = []
    for method, path in _routes(tmp_path):
        call = path.removeprefix(CALLS_PREFIX) if path.startswith(CALLS_PREFIX) else None
        rule = authz.CALL_RULES[call] if call is not None else authz.ROUTE_RULES[(method, path)]
        # A member's own name for the member routes, and a token id that is no one's.
        concrete = (
            path.replace("{workspace}", callers.workspace)
            .replace("{user}", "nobody")
            .replace("{token_id}", "tok0000000000")
            .replace("{compute}", CLUSTER)
            .replace("{run_id}", callers.run_id)
        )
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        body = {} if method in ("POST", "PUT") and (call is None or call in JSON_CALLS) else None
        response = httpx.request(
            method, http_server.url + concrete, headers=headers, json=body, timeout=60
        )
        allowed = _allowed(rule, caller, call)
        status = response.status_code
        if allowed and (status in (401, 403) or _is_not_a_member(response)):
            wrong.append(f"{method} {path}: refused {status} {response.text[:120]}")
        if not allowed and status != _denial(caller, "{workspace}" in path):
            wrong.append(f"{method} {path}: allowed ({status} {response.text[:120]})")
        assert status < 500, f"{method} {path}: {status} {response.text}"
    assert not wrong, f"{caller}:\n" + "\n".join(wrong)


def _is_not_a_member(response: object) -> bool:
    text = getattr(response, "text", "")
    return getattr(response, "status_code", 0) == 404 and "not one of its members" in text


def test_an_outsider_cannot_tell_a_hidden_workspace_from_a_missing_one(
    http_server: ServerProcess, callers: Callers
) -> None:
    token = callers.tokens["outsider"]
    hidden = http_server.call(
        "POST", f"/api/v1/workspaces/{callers.workspace}/calls/list_experiments", token, json={}
    )
    missing = http_server.call(
        "POST", "/api/v1/workspaces/no-such-ws/calls/list_experiments", token, json={}
    )
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"].replace(callers.workspace, "X") == missing.json()[
        "error"
    ]["message"].replace("no-such-ws", "X")


def test_a_run_token_reaches_its_own_run_only(http_server: ServerProcess, callers: Callers) -> None:
    token = callers.tokens["run"]
    assert token is not None
    own = RemoteBackend(http_server.url, callers.workspace, token)
    assert own.get_run(callers.run_id).id == callers.run_id
    own.set_run_tags(callers.run_id, {"by": "supervisor"})
    admin = RemoteBackend(http_server.url, callers.workspace, http_server.admin_token)
    other = admin.create_run("other_run", "e", run_type="script", status=QUEUED)
    with pytest.raises(PermissionDeniedError, match="other_run"):
        own.set_run_tags(other.id, {"by": "mallory"})
    with pytest.raises(PermissionDeniedError):
        own.list_runs("e")
    assert "by" not in admin.get_run_details(other.id).tags
    elsewhere = RemoteBackend(http_server.url, http_server.new_workspace(), token)
    with pytest.raises(NotFoundError, match="not one of its members"):
        elsewhere.get_workspace()


def test_a_run_token_acts_no_more_once_its_run_has_ended(http_server: ServerProcess) -> None:
    workspace = http_server.new_workspace()
    admin = RemoteBackend(http_server.url, workspace, http_server.admin_token)
    run = admin.create_run("ending_run", "e", run_type="script", status=RUNNING)
    accounts = http_server.accounts()
    try:
        _record, token = accounts.create_run_token(workspace, run.id)
    finally:
        accounts.close()
    own = RemoteBackend(http_server.url, workspace, token)
    own.set_run_tags(run.id, {"step": "running"})
    admin.update_run_status(run.id, COMPLETED)
    # The end came through the server: the token was revoked with it.
    with pytest.raises(AuthenticationError, match="does not know the token"):
        own.set_run_tags(run.id, {"step": "after the end"})
    with pytest.raises(AuthenticationError):
        own.get_run(run.id)
    assert admin.get_run_details(run.id).tags == {"step": "running"}


def _documented_rows() -> list[list[str]]:
    text = (Path(__file__).parents[2] / "docs" / "server.md").read_text()
    table = text.split("<!-- authz-matrix: start -->")[1].split("<!-- authz-matrix: end -->")[0]
    rows = []
    for line in table.splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if (
            len(cells) >= 2
            and not set(cells[0]) <= {"-", " "}
            and cells[0] not in ("call", "route")
        ):
            rows.append(cells)
    return rows


def test_the_docs_show_the_rules_the_server_keeps() -> None:
    calls = {row[0]: row for row in _documented_rows() if len(row) == 4}
    routes = {row[0]: row[1] for row in _documented_rows() if len(row) == 2}
    assert {name: row[1] for name, row in calls.items()} == authz.CALL_RULES
    run_token = {name for name, row in calls.items() if row[2] != "no"}
    assert run_token == authz.RUN_TOKEN_CALLS
    cluster_token = {name for name, row in calls.items() if row[3] != "no"}
    assert cluster_token == authz.CLUSTER_TOKEN_CALLS
    assert routes == {f"{m} {p}": rule for (m, p), rule in authz.ROUTE_RULES.items()}
