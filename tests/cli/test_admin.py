"""`modelyard admin create-user|list-users|create-token` end to end, as a shell runs them on a
server's machine: the token printed once works, nothing of it is kept but its hash, the data
folder is private, and mistakes end with the error tree's exit codes."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from modelyard.cli.admin import server_data_options
from modelyard.cli.main import cli
from modelyard.errors import AuthenticationError, ConflictError, NotFoundError
from modelyard.server.accounts import AccountStore
from modelyard.server.settings import DEFAULT_DATA_DIR, ServerSettings
from tests.helpers import run_cli

TOKEN = re.compile(r"^  (myd_\S+)$", re.M)


def _store(data_dir: Path, database_url: str | None = None) -> AccountStore:
    return AccountStore.open(ServerSettings(data_dir=data_dir, database_url=database_url))


def _data_bytes(data_dir: Path) -> bytes:
    return b"".join(path.read_bytes() for path in data_dir.glob("server.db*"))


def test_create_user_prints_a_first_token_once_that_authenticates(tmp_path: Path) -> None:
    data_dir = tmp_path / "srv"

    done = run_cli(
        tmp_path, "admin", "create-user", "alice", "--admin", "--data-dir", str(data_dir)
    )

    assert done.returncode == 0, done.stderr
    assert "Created user 'alice' (an admin)." in done.stdout
    assert "shown this once" in done.stdout
    assert "modelyard login SERVER" in done.stdout and "MODELYARD_TOKEN" in done.stdout
    secret = TOKEN.findall(done.stdout)
    assert len(secret) == 1
    principal = _store(data_dir).authenticate(secret[0])
    assert (principal.user, principal.admin) == ("alice", True)
    assert secret[0].split("_", 2)[2].encode() not in _data_bytes(data_dir)


def test_the_default_data_folder_is_in_the_current_folder_and_private(tmp_path: Path) -> None:
    script = (
        "import os, sys; from modelyard.cli.main import main; os.umask(0); "
        "sys.argv = ['modelyard', 'admin', 'create-user', 'bob']; main()"
    )

    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    data_dir = tmp_path / DEFAULT_DATA_DIR
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    files = list(data_dir.glob("server.db*"))
    assert files and all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in files)
    assert [user.name for user in _store(data_dir).list_users()] == ["bob"]


def test_create_token_gives_a_lost_token_s_owner_a_new_one(tmp_path: Path) -> None:
    data_dir = tmp_path / "srv"
    first = run_cli(tmp_path, "admin", "create-user", "alice", "--data-dir", str(data_dir))
    assert first.returncode == 0, first.stderr
    lost = TOKEN.findall(first.stdout)[0]

    done = run_cli(
        tmp_path,
        *("admin", "create-token", "alice", "--name", "laptop", "--expires-in", "30"),
        *("--data-dir", str(data_dir), "--json"),
    )

    assert done.returncode == 0, done.stderr
    token = json.loads(done.stdout)
    assert (token["user"], token["name"]) == ("alice", "laptop")
    store = _store(data_dir)
    assert store.authenticate(token["secret"]).user == "alice"
    assert store.authenticate(lost).user == "alice"  # revoking it is the user's to do
    listed = {record.name: record for record in store.list_tokens("alice")}
    expires_at = listed["laptop"].expires_at
    assert expires_at is not None
    assert abs(expires_at - (time.time() + 30 * 86_400)) < 3_600
    assert token["secret"].split("_", 2)[2].encode() not in _data_bytes(data_dir)


def test_a_token_made_with_create_token_is_refused_once_revoked(tmp_path: Path) -> None:
    data_dir = tmp_path / "srv"
    _store(data_dir).create_user("alice")
    done = run_cli(tmp_path, "admin", "create-token", "alice", "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    secret = TOKEN.findall(done.stdout)[0]
    store = _store(data_dir)

    store.revoke_token("alice", store.authenticate(secret).token_id)

    with pytest.raises(AuthenticationError):
        store.authenticate(secret)


def test_mistakes_end_with_the_error_s_exit_code_and_no_token(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "srv")
    assert (
        run_cli(tmp_path, "admin", "create-user", "alice", "--data-dir", data_dir).returncode == 0
    )

    taken = run_cli(tmp_path, "admin", "create-user", "alice", "--data-dir", data_dir)
    unknown = run_cli(tmp_path, "admin", "create-token", "bob", "--data-dir", data_dir)
    bad_name = run_cli(tmp_path, "admin", "create-user", "../x", "--data-dir", data_dir)
    bad_days = run_cli(
        tmp_path, "admin", "create-token", "alice", "--expires-in", "0", "--data-dir", data_dir
    )

    assert taken.returncode == ConflictError.exit_code
    assert "exists already" in taken.stderr and "create-token alice" in taken.stderr
    assert unknown.returncode == NotFoundError.exit_code and "'bob'" in unknown.stderr
    assert bad_name.returncode == 2 and "name" in bad_name.stderr
    assert bad_days.returncode == 2 and "--expires-in" in bad_days.stderr
    for done in (taken, unknown, bad_name, bad_days):
        assert "myd_" not in done.stdout + done.stderr
    assert len(_store(tmp_path / "srv").list_tokens("alice")) == 1


def test_list_users_pages_through_the_users(tmp_path: Path) -> None:
    data_dir = tmp_path / "srv"
    store = _store(data_dir)
    for name in ("carol", "alice", "bob"):
        store.create_user(name, admin=name == "alice")
    runner = CliRunner()

    def names(*args: str) -> list[str]:
        result = runner.invoke(
            cli, ["admin", "list-users", "--data-dir", str(data_dir), "--json", *args]
        )
        assert result.exit_code == 0, result.output
        return [user["name"] for user in json.loads(result.stdout)]

    assert names() == ["alice", "bob", "carol"]
    assert names("--limit", "2") == ["alice", "bob"]
    assert names("--limit", "2", "--after", "bob") == ["carol"]
    table = runner.invoke(cli, ["admin", "list-users", "--data-dir", str(data_dir)])
    assert re.search(r"^alice\s+yes\s", table.stdout, re.M)
    assert re.search(r"^bob\s+\d{4}-", table.stdout, re.M)
    empty = runner.invoke(cli, ["admin", "list-users", "--data-dir", str(tmp_path / "new")])
    assert "no users yet" in empty.stdout


def test_the_admin_commands_work_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    done = run_cli(
        tmp_path,
        *("admin", "create-user", "alice", "--data-dir", str(tmp_path / "srv")),
        *("--database-url", postgres_url),
    )

    assert done.returncode == 0, done.stderr
    store = AccountStore(postgres_url)
    assert store.authenticate(TOKEN.findall(done.stdout)[0]).user == "alice"
    assert not (tmp_path / "srv" / "server.db").exists()


def test_the_data_options_decorator_gives_any_command_the_same_two_options() -> None:
    seen: dict[str, object] = {}

    @click.command()
    @server_data_options
    def server(data_dir: Path, database_url: str | None) -> None:
        seen.update(data_dir=data_dir, database_url=database_url)

    runner = CliRunner()
    assert runner.invoke(server, []).exit_code == 0
    assert seen == {"data_dir": DEFAULT_DATA_DIR, "database_url": None}
    assert runner.invoke(server, ["--data-dir", "d", "--database-url", "sqlite://"]).exit_code == 0
    assert seen == {"data_dir": Path("d"), "database_url": "sqlite://"}
    assert "--data-dir" in runner.invoke(server, ["--help"]).output
    assert os.fspath(DEFAULT_DATA_DIR) in runner.invoke(server, ["--help"]).output
