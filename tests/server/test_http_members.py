"""A server workspace's members from a client, and deleting a workspace, on a real server.

Members are listed by any member and set or removed by owners, from the SDK
(``ws.list_members``, ``set_member``, ``remove_member``) and the CLI (``modelyard workspace
members``); the server's refusals arrive as the same errors. ``ws.delete()`` (``DELETE
/api/v1/workspaces/{ws}``) removes a workspace's records, folder, schema and storage, is
refused while its runs go on, and finishes a deletion cut off half-way.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fsspec
import pytest
from sqlalchemy import create_engine, text

from modelyard import Experiment, Workspace
from modelyard.backend.records import COMPLETED, RUNNING
from modelyard.backend.remote.backend import RemoteBackend
from modelyard.cli.main import EXIT_CODES
from modelyard.errors import (
    ConfigError,
    ConflictError,
    ModelyardError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from modelyard.server.workspaces import schema_of
from tests.helpers import run_cli
from tests.s3 import S3Server
from tests.server_process import ServerProcess


@dataclass
class Team:
    """A workspace of a new owner, with a contributor and a reader, each user's token."""

    server: ServerProcess
    workspace: str
    users: dict[str, str]  # role -> user name
    tokens: dict[str, str]  # role -> token

    def as_(self, role: str, monkeypatch: pytest.MonkeyPatch) -> Workspace:
        """The workspace as the member of ``role`` opens it (their token in the env)."""
        monkeypatch.setenv("MODELYARD_TOKEN", self.tokens[role])
        return Workspace.get(self.workspace, server=self.server.url)


def _team(server: ServerProcess) -> Team:
    tag = uuid.uuid4().hex[:6]
    users = {role: f"{role[:3]}{tag}" for role in ("owner", "contributor", "reader", "outsider")}
    tokens = {role: server.user(name) for role, name in users.items()}
    workspace = server.new_workspace(
        owner=users["owner"], **{users[r]: r for r in ("contributor", "reader")}
    )
    accounts = server.accounts()
    try:
        accounts.remove_member(workspace, "admin")  # who made it: the owner is its only one
    finally:
        accounts.close()
    return Team(server, workspace, users, tokens)


@pytest.fixture
def team(
    http_server: ServerProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Team]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    yield _team(http_server)


def _members(team: Team, *roles: str) -> list[dict[str, str]]:
    return sorted(({"user": team.users[r], "role": r} for r in roles), key=lambda m: m["user"])


# -- members ---------------------------------------------------------------------------


def test_an_owner_sets_and_removes_members_and_any_member_lists_them(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = team.as_("owner", monkeypatch)
    assert ws.list_members() == _members(team, "owner", "contributor", "reader")
    ws.set_member(team.users["outsider"], "reader")
    ws.set_member(team.users["reader"], "contributor")
    ws.remove_member(team.users["contributor"])
    ws.remove_member(team.users["contributor"])  # not a member any more: nothing to do
    expected = [
        {"user": team.users["outsider"], "role": "reader"},
        {"user": team.users["owner"], "role": "owner"},
        {"user": team.users["reader"], "role": "contributor"},
    ]
    assert ws.list_members() == sorted(expected, key=lambda m: m["user"])
    assert team.as_("reader", monkeypatch).list_members() == ws.list_members()


def test_the_servers_refusals_arrive_as_the_projects_errors(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = team.as_("owner", monkeypatch)
    with pytest.raises(ValidationError, match="'admin' is not a role") as bad_role:
        owner.set_member(team.users["reader"], "admin")
    assert bad_role.value.field == "role"
    with pytest.raises(NotFoundError, match="user 'nosuchuser' does not exist"):
        owner.set_member("nosuchuser", "reader")
    with pytest.raises(ConflictError, match="last owner"):
        owner.remove_member(team.users["owner"])
    with pytest.raises(ConflictError, match="last owner"):
        owner.set_member(team.users["owner"], "reader")
    contributor = team.as_("contributor", monkeypatch)
    with pytest.raises(PermissionDeniedError, match=r"needs the owner role.*you are a contributor"):
        contributor.set_member(team.users["reader"], "owner")
    with pytest.raises(PermissionDeniedError, match="ask an owner"):
        contributor.remove_member(team.users["reader"])
    outsider = RemoteBackend(team.server.url, team.workspace, team.tokens["outsider"])
    with pytest.raises(NotFoundError, match="not one of its members"):
        outsider.get_workspace()
    assert owner.list_members() == _members(team, "owner", "contributor", "reader")


def test_an_embedded_workspace_has_no_members_and_is_not_deleted_here(
    workspace: Workspace,
) -> None:
    for call in (
        workspace.list_members,
        lambda: workspace.set_member("bob", "reader"),
        lambda: workspace.remove_member("bob"),
    ):
        with pytest.raises(ConfigError, match="members exist only on a server's workspace"):
            call()
    with pytest.raises(ConfigError, match="remove that folder"):
        workspace.delete()
    assert workspace.folder.is_dir()


def _exit_code(error: type[ModelyardError]) -> int:
    """The CLI's exit code for ``error``, one that ``modelyard --help`` lists."""
    assert error.exit_code in {code for code, _text in EXIT_CODES}
    return error.exit_code


def test_the_cli_lists_sets_and_removes_members(
    team: Team, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.json").write_text(
        json.dumps({"workspace_name": team.workspace, "server": team.server.url})
    )
    monkeypatch.setenv("MODELYARD_TOKEN", team.tokens["owner"])
    outsider = team.users["outsider"]
    added = run_cli(project, "workspace", "members", "set", outsider, "contributor")
    assert added.returncode == 0, added.stderr
    assert f"'{outsider}' is now a contributor" in added.stdout
    listed = run_cli(project, "workspace", "members", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {"user": outsider, "role": "contributor"} in json.loads(listed.stdout)
    table = run_cli(project, "workspace", "members", "list")
    assert "USER" in table.stdout and outsider in table.stdout
    removed = run_cli(project, "workspace", "members", "remove", outsider)
    assert removed.returncode == 0, removed.stderr
    assert outsider not in run_cli(project, "workspace", "members", "list").stdout

    last = run_cli(project, "workspace", "members", "remove", team.users["owner"])
    assert last.returncode == _exit_code(ConflictError) and "last owner" in last.stderr
    missing = run_cli(project, "workspace", "members", "set", "nosuchuser", "reader")
    assert missing.returncode == _exit_code(NotFoundError), missing.stderr
    bad_role = run_cli(project, "workspace", "members", "set", outsider, "admin")
    assert bad_role.returncode == _exit_code(ValidationError) and "admin" in bad_role.stderr
    monkeypatch.setenv("MODELYARD_TOKEN", team.tokens["reader"])
    refused = run_cli(project, "workspace", "members", "set", outsider, "owner")
    assert refused.returncode == _exit_code(PermissionDeniedError)
    assert "needs the owner role" in refused.stderr


# -- deleting a workspace -----------------------------------------------------------------


def _folder(server: ServerProcess, name: str) -> Path:
    accounts = server.accounts()
    try:
        return server.settings.workspaces_dir / accounts.get_workspace(name).id
    finally:
        accounts.close()


def _fill(ws: Workspace, tmp_path: Path) -> None:
    """A finished run with a metric and a file, and a registered model."""
    source = tmp_path / "weights.txt"
    source.write_text("w=1")
    run = Experiment(ws, "e").start_logging()
    run.log("loss", 0.5)
    run.upload_file("outputs/weights.txt", str(source))
    run.complete()
    run.register_model("weights", "outputs/weights.txt")


def test_an_owner_deletes_and_the_name_is_made_again_empty(
    team: Team, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = team.server
    ws = team.as_("owner", monkeypatch)
    _fill(ws, tmp_path)
    folder = _folder(server, team.workspace)
    assert (folder / "workspace.json").is_file()
    ws.delete()
    assert not folder.exists()
    with pytest.raises(NotFoundError):
        Workspace.get(team.workspace, server=server.url)
    monkeypatch.setenv("MODELYARD_TOKEN", team.tokens["contributor"])
    with pytest.raises(NotFoundError):  # its members went with it
        Workspace.get(team.workspace, server=server.url)
    listed = server.call("GET", "/api/v1/workspaces", team.tokens["owner"]).json()
    assert team.workspace not in {entry["name"] for entry in listed}

    made = server.call("POST", "/api/v1/workspaces", json={"name": team.workspace})
    assert made.status_code == 201, made.text
    again = RemoteBackend(server.url, team.workspace, server.admin_token)
    assert again.list_experiments() == [] and again.list_models() == []
    members = server.call("GET", f"/api/v1/workspaces/{team.workspace}/members").json()
    assert members == [{"user": "admin", "role": "owner"}]
    # An admin may delete any workspace; deleting it is then done for good.
    assert server.call("DELETE", f"/api/v1/workspaces/{team.workspace}").status_code == 204
    gone = server.call("DELETE", f"/api/v1/workspaces/{team.workspace}")
    assert gone.status_code == 404, gone.text


def test_only_owners_delete_and_outsiders_learn_nothing(team: Team) -> None:
    server, path = team.server, f"/api/v1/workspaces/{team.workspace}"
    for role in ("contributor", "reader"):
        refused = server.call("DELETE", path, team.tokens[role])
        assert refused.status_code == 403, refused.text
        assert f"you are a {role}" in refused.json()["error"]["message"]
    hidden = server.call("DELETE", path, team.tokens["outsider"])
    missing = server.call("DELETE", "/api/v1/workspaces/no-such-ws", team.tokens["outsider"])
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"].replace(team.workspace, "X") == missing.json()[
        "error"
    ]["message"].replace("no-such-ws", "X")
    assert server.call("GET", path, team.tokens["reader"]).status_code == 200


def test_runs_that_have_not_ended_refuse_deletion(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = team.as_("owner", monkeypatch)
    backend = RemoteBackend(team.server.url, team.workspace, team.tokens["owner"])
    backend.create_run("going_on", "e", run_type="script", status=RUNNING)
    backend.create_run("done", "e", run_type="script", status=COMPLETED)
    with pytest.raises(ConflictError, match=r"1 run that have not ended: going_on \(Running\)"):
        ws.delete()
    with pytest.raises(ConflictError, match="cancel them"):
        ws.delete()
    assert backend.get_run("going_on").status == RUNNING  # nothing was removed
    backend.update_run_status("going_on", COMPLETED)
    ws.delete()
    with pytest.raises(NotFoundError):
        backend.get_workspace()


def test_a_deletion_cut_off_half_way_is_finished_by_deleting_again(
    team: Team, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ws = team.as_("owner", monkeypatch)
    _fill(ws, tmp_path)
    folder = _folder(team.server, team.workspace)
    # What a server that died while removing the folder leaves: its record, part of its files.
    (folder / "workspace.json").unlink()
    shutil.rmtree(folder / "artifacts")
    ws.delete()
    assert not folder.exists()
    with pytest.raises(NotFoundError):
        Workspace.get(team.workspace, server=team.server.url)


def test_deleting_on_postgresql_and_s3_drops_the_schema_and_the_files(
    http_server_at_scale: ServerProcess,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    server = http_server_at_scale
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    team = _team(server)
    ws = team.as_("owner", monkeypatch)
    _fill(ws, tmp_path)
    accounts = server.accounts()
    try:
        workspace_id = accounts.get_workspace(team.workspace).id
    finally:
        accounts.close()
    storage_url = server.options[server.options.index("--storage-url") + 1]
    prefix = f"{storage_url.removeprefix('s3://')}/{workspace_id}"
    fs = fsspec.filesystem("s3", **s3_server.storage_options)
    assert fs.find(prefix), "the workspace's files should be in the bucket"
    assert server.database_url is not None
    engine = create_engine(server.database_url)

    def schemas() -> set[str]:
        with engine.connect() as conn:
            query = text("SELECT schema_name FROM information_schema.schemata")
            return {row[0] for row in conn.execute(query)}

    try:
        assert schema_of(workspace_id) in schemas()
        ws.delete()
        assert schema_of(workspace_id) not in schemas()
    finally:
        engine.dispose()
    fs.invalidate_cache()
    assert fs.find(prefix) == []
    assert not (server.settings.workspaces_dir / workspace_id).exists()
    with pytest.raises(NotFoundError):
        Workspace.get(team.workspace, server=server.url)
