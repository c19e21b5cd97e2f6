"""A server workspace's members from a client, on a real server.

Members are listed by any member and set or removed by owners, from the SDK
(``ws.list_members``, ``set_member``, ``remove_member``) and the CLI (``modelyard workspace
members``); the server's refusals arrive as the same errors.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelyard import Workspace
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
from tests.helpers import run_cli
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


def test_an_embedded_workspace_has_no_members(
    workspace: Workspace,
) -> None:
    for call in (
        workspace.list_members,
        lambda: workspace.set_member("bob", "reader"),
        lambda: workspace.remove_member("bob"),
    ):
        with pytest.raises(ConfigError, match="members exist only on a server's workspace"):
            call()


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
