"""Users, tokens, workspaces and members of a server (AccountStore), on a real SQLite file
and a real PostgreSQL: tokens shown once and hashed at rest, refused when revoked, expired,
malformed or not the server's; roles; a workspace keeps an owner; pages of users."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelyard.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from modelyard.server.accounts import (
    LAST_USED_RESOLUTION_S,
    ROLES,
    AccountStore,
    Member,
    Principal,
    has_role,
)
from modelyard.server.settings import ServerSettings
from modelyard.store import accounts_tables as t
from tests.accounts import Account
from tests.helpers import wait_for


@pytest.fixture
def store(database_url: str) -> AccountStore:
    return AccountStore(database_url)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> AccountStore:
    return AccountStore.open(ServerSettings(data_dir=tmp_path / "server"))


def _token_of(store: AccountStore, user: str, *, admin: bool = False) -> str:
    store.create_user(user, admin=admin)
    return store.create_token(user, "laptop")[1]


# users


def test_a_new_server_has_no_user_and_accepts_no_token(store: AccountStore) -> None:
    assert store.list_users() == []
    assert store.list_workspaces() == []
    for guess in ("", "admin", "password", "myd_", "myd_0000000000000000_" + "a" * 43):
        with pytest.raises(AuthenticationError):
            store.authenticate(guess)


def test_users_are_created_once_and_found_by_name(store: AccountStore) -> None:
    alice = store.create_user("alice", admin=True)
    store.create_user("bob")

    assert store.get_user("alice") == alice and alice.admin
    assert not store.get_user("bob").admin
    with pytest.raises(ConflictError, match="'alice' exists already"):
        store.create_user("alice")
    with pytest.raises(NotFoundError, match="'carol' does not exist"):
        store.get_user("carol")


@pytest.mark.parametrize("name", ["", "../etc", "a b", "-x", "é", "x" * 256, "a\x00b"])
def test_user_names_outside_the_safe_set_are_refused(store: AccountStore, name: str) -> None:
    with pytest.raises(ValidationError, match="name"):
        store.create_user(name)
    assert store.list_users() == []


def test_users_come_in_pages_by_name(store: AccountStore) -> None:
    for name in ("dave", "alice", "erin", "carol", "bob"):
        store.create_user(name)

    pages, after = [], None
    while page := store.list_users(limit=2, after=after):
        pages.append([user.name for user in page])
        after = page[-1].name
    assert pages == [["alice", "bob"], ["carol", "dave"], ["erin"]]
    with pytest.raises(ValidationError, match="limit"):
        store.list_users(limit=0)


# tokens


def test_a_token_says_who_holds_it(store: AccountStore) -> None:
    admin_secret = _token_of(store, "alice", admin=True)
    secret = _token_of(store, "bob")

    alice = store.authenticate(admin_secret)
    bob = store.authenticate(secret)
    assert (alice.user, alice.admin) == ("alice", True)
    assert (bob.user, bob.admin, bob.workspace, bob.run_id) == ("bob", False, None, None)
    assert bob.token_id == store.list_tokens("bob")[0].id
    assert secret.startswith("myd_" + bob.token_id + "_")
    assert len(secret) >= len("myd_") + 16 + 1 + 43  # 32 random bytes, URL-safe base64


def test_a_revoked_token_is_refused_and_revoking_again_does_nothing(
    store: AccountStore,
) -> None:
    secret = _token_of(store, "alice")
    other = store.create_token("alice", "ci")[1]
    token_id = store.authenticate(secret).token_id

    store.revoke_token("alice", token_id)
    store.revoke_token("alice", token_id)

    with pytest.raises(AuthenticationError, match="revoked"):
        store.authenticate(secret)
    assert store.authenticate(other).user == "alice"  # her other tokens still work
    assert [token.name for token in store.list_tokens("alice")] == ["ci"]


def test_a_token_revoked_in_another_process_is_refused_here(database_url: str) -> None:
    store = AccountStore(database_url)
    secret = _token_of(store, "alice")
    token_id = store.authenticate(secret).token_id
    code = (
        "import sys; from modelyard.server.accounts import AccountStore; "
        "AccountStore(sys.argv[1]).revoke_token('alice', sys.argv[2])"
    )

    subprocess.run([sys.executable, "-c", code, database_url, token_id], check=True)

    with pytest.raises(AuthenticationError, match="revoked"):
        store.authenticate(secret)


def test_another_users_token_cannot_be_revoked_or_listed(store: AccountStore) -> None:
    secret = _token_of(store, "alice")
    store.create_user("mallory")
    token_id = store.authenticate(secret).token_id

    with pytest.raises(NotFoundError, match="'mallory' has no token"):
        store.revoke_token("mallory", token_id)
    assert store.list_tokens("mallory") == []
    assert store.authenticate(secret).user == "alice"
    with pytest.raises(NotFoundError):
        store.revoke_token("alice", "0" * 16)


def test_a_token_is_refused_once_it_expires(store: AccountStore) -> None:
    store.create_user("alice")
    short_lived = store.create_token("alice", "short", expires_in_s=0.2)[1]
    long_lived = store.create_token("alice", "long", expires_in_s=3600)[1]

    def expired() -> bool:
        try:
            store.authenticate(short_lived)
        except AuthenticationError as error:
            assert "expired" in str(error)
            return True
        return False

    wait_for(expired, timeout=30)
    assert store.authenticate(long_lived).user == "alice"
    listed = {token.name: token for token in store.list_tokens("alice")}
    long_expiry = listed["long"].expires_at
    assert long_expiry is not None and long_expiry > listed["long"].created_at + 3500


@pytest.mark.parametrize("expires_in_s", [0, -5, float("inf"), float("nan")])
def test_a_token_must_live_some_finite_time(store: AccountStore, expires_in_s: float) -> None:
    store.create_user("alice")
    with pytest.raises(ValidationError, match="expires_in_s"):
        store.create_token("alice", "t", expires_in_s=expires_in_s)
    assert store.list_tokens("alice") == []


def test_tokens_of_a_user_that_does_not_exist_are_refused(store: AccountStore) -> None:
    with pytest.raises(NotFoundError, match="'ghost'"):
        store.create_token("ghost", "t")
    with pytest.raises(NotFoundError, match="'ghost'"):
        store.list_tokens("ghost")


def _other_forms(secret: str) -> list[str]:
    prefix, token_id, rest = secret.split("_", 2)
    flipped = rest[:-1] + ("A" if rest[-1] != "A" else "B")
    return [
        f"{prefix}_{token_id}_{flipped}",  # its id with another secret
        f"ghp_{token_id}_{rest}",  # another prefix
        f"{prefix}_{token_id}_{rest}x",  # one character more
        secret[:-1],  # one less
        f" {secret}",
        f"{secret}\n",
        f"Bearer {secret}",
        secret.upper(),
        f"{prefix}_{token_id.upper()}_{rest}",
        f"{prefix}_{token_id}_{rest[:-1]}é",
        f"{prefix}_{token_id}_{rest[:-1]}\x00",
        f"{prefix}_{uuid.uuid4().hex[:16]}_{rest}",  # its secret under an unknown id
        secret * 2,
        "x" * 100_000,
    ]


def test_malformed_and_altered_tokens_are_refused(store: AccountStore) -> None:
    secret = _token_of(store, "alice")
    for form in _other_forms(secret):
        with pytest.raises(AuthenticationError) as raised:
            store.authenticate(form)
        assert raised.value.http_status == 401
        assert "modelyard login" in str(raised.value)
        assert secret not in str(raised.value)
    assert store.authenticate(secret).user == "alice"


def test_the_secret_is_stored_nowhere_only_its_hash(sqlite_store: AccountStore) -> None:
    store = sqlite_store
    store.create_user("alice")
    record, secret = store.create_token("alice", "laptop")
    store.authenticate(secret)
    random_part = secret.split("_", 2)[2]  # myd_<id>_<random part, which may hold "_">

    folder = Path(str(store.db.path)).parent
    data = b"".join(path.read_bytes() for path in folder.glob("server.db*"))
    assert record.id.encode() in data  # the file is the one written
    assert random_part.encode() not in data
    assert random_part not in repr(store.list_tokens("alice"))
    with store.db.engine.connect() as conn:
        hashes = conn.execute(sa.select(t.tokens.c.secret_hash)).scalars().all()
    assert len(hashes) == 1 and len(hashes[0]) == 64 and random_part not in hashes[0]


def test_last_use_is_recorded_at_most_once_a_minute(store: AccountStore) -> None:
    secret = _token_of(store, "alice")
    assert store.list_tokens("alice")[0].last_used_at is None

    store.authenticate(secret)
    first = store.list_tokens("alice")[0].last_used_at
    store.authenticate(secret)
    assert first is not None
    assert store.list_tokens("alice")[0].last_used_at == first  # no write per call

    # As if the last use was two minutes ago: the next call records it anew.
    earlier = first - 2 * LAST_USED_RESOLUTION_S
    with store.db.engine.begin() as conn:
        conn.execute(sa.update(t.tokens).values(last_used_at=earlier))
    store.authenticate(secret)
    again = store.list_tokens("alice")[0].last_used_at
    assert again is not None and again > earlier + LAST_USED_RESOLUTION_S


# run tokens


def test_a_run_token_reaches_its_run_only_until_the_run_ends(store: AccountStore) -> None:
    store.create_user("alice")
    store.create_workspace("team", owner="alice")
    record, secret = store.create_run_token("team", "mnist_1_abcd")
    _, other_run = store.create_run_token("team", "mnist_2_abcd")

    principal = store.authenticate(secret)
    assert principal == Principal(
        token_id=record.id, user=None, admin=False, workspace="team", run_id="mnist_1_abcd"
    )
    assert store.list_tokens("alice") == []  # not the user's

    store.revoke_run_tokens("team", "mnist_1_abcd")
    store.revoke_run_tokens("team", "mnist_1_abcd")
    store.revoke_run_tokens("gone", "mnist_1_abcd")

    with pytest.raises(AuthenticationError):
        store.authenticate(secret)
    assert store.authenticate(other_run).run_id == "mnist_2_abcd"


def test_a_run_token_needs_a_workspace_and_a_valid_run_id(store: AccountStore) -> None:
    with pytest.raises(NotFoundError, match="'team'"):
        store.create_run_token("team", "r1")
    store.create_user("alice")
    store.create_workspace("team", owner="alice")
    with pytest.raises(ValidationError, match="run_id"):
        store.create_run_token("team", "../r1")


# workspaces and members


def test_a_workspace_is_created_once_with_its_owner(store: AccountStore) -> None:
    store.create_user("alice")
    entry = store.create_workspace("team", owner="alice")

    assert uuid.UUID(entry.id).version == 4
    assert store.get_workspace("team") == entry
    assert store.list_members("team") == [Member("alice", "owner")]
    with pytest.raises(ConflictError, match="'team' exists already"):
        store.create_workspace("team", owner="alice")
    with pytest.raises(NotFoundError, match="'ghost'"):
        store.create_workspace("other", owner="ghost")
    with pytest.raises(ValidationError, match="name"):
        store.create_workspace("a/b", owner="alice")
    with pytest.raises(NotFoundError, match="'nope'"):
        store.get_workspace("nope")
    assert [ws.name for ws in store.list_workspaces()] == ["team"]


def test_each_user_lists_the_workspaces_they_are_a_member_of(store: AccountStore) -> None:
    for user in ("alice", "bob", "carol"):
        store.create_user(user)
    store.create_workspace("a-team", owner="alice")
    store.create_workspace("b-team", owner="bob")
    store.create_workspace("c-team", owner="alice")
    store.set_member("b-team", "alice", "reader")

    assert [ws.name for ws in store.list_workspaces("alice")] == ["a-team", "b-team", "c-team"]
    assert [ws.name for ws in store.list_workspaces("bob")] == ["b-team"]
    assert store.list_workspaces("carol") == []
    assert [ws.name for ws in store.list_workspaces("alice", limit=2, after="a-team")] == [
        "b-team",
        "c-team",
    ]


def test_roles_are_set_changed_and_read(store: AccountStore) -> None:
    for user in ("alice", "bob"):
        store.create_user(user)
    store.create_workspace("team", owner="alice")

    assert store.role_of("bob", "team") is None
    store.set_member("team", "bob", "reader")
    assert store.role_of("bob", "team") == "reader"
    store.set_member("team", "bob", "contributor")
    assert store.list_members("team") == [Member("alice", "owner"), Member("bob", "contributor")]
    assert store.role_of("bob", "other") is None
    with pytest.raises(ValidationError, match="'admin' is not a role"):
        store.set_member("team", "bob", "admin")
    assert store.role_of("bob", "team") == "contributor"
    with pytest.raises(NotFoundError, match="'ghost'"):
        store.set_member("team", "ghost", "reader")
    with pytest.raises(NotFoundError, match="'other'"):
        store.set_member("other", "bob", "reader")


def test_each_role_can_do_what_the_one_before_can_and_more() -> None:
    assert ROLES == ("reader", "contributor", "owner")
    allowed = {(role, needed) for role in ROLES for needed in ROLES if has_role(role, needed)}
    assert allowed == {
        ("reader", "reader"),
        ("contributor", "reader"),
        ("contributor", "contributor"),
        ("owner", "reader"),
        ("owner", "contributor"),
        ("owner", "owner"),
    }
    assert not has_role(None, "reader")


def test_a_workspace_keeps_its_last_owner(store: AccountStore) -> None:
    for user in ("alice", "bob"):
        store.create_user(user)
    store.create_workspace("team", owner="alice")
    store.set_member("team", "bob", "contributor")

    with pytest.raises(ConflictError, match="last owner"):
        store.remove_member("team", "alice")
    with pytest.raises(ConflictError, match="last owner"):
        store.set_member("team", "alice", "reader")
    assert store.role_of("alice", "team") == "owner"

    store.set_member("team", "bob", "owner")
    store.remove_member("team", "alice")
    store.remove_member("team", "alice")  # not a member any more: nothing to do
    assert store.list_members("team") == [Member("bob", "owner")]
    with pytest.raises(NotFoundError, match="'other'"):
        store.remove_member("other", "bob")


def test_two_owners_removing_each_other_at_once_leave_one(database_url: str) -> None:
    store = AccountStore(database_url)
    for user in ("alice", "bob"):
        store.create_user(user)
    store.create_workspace("team", owner="alice")
    store.set_member("team", "bob", "owner")
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def remove(user: str) -> None:
        start.wait()
        try:
            store.remove_member("team", user)
            outcomes[user] = "removed"
        except ConflictError:
            outcomes[user] = "refused"

    threads = [threading.Thread(target=remove, args=(user,)) for user in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes.values()) == ["refused", "removed"]
    assert [member.role for member in store.list_members("team")] == ["owner"]


def test_a_deleted_workspace_takes_its_members_and_run_tokens(store: AccountStore) -> None:
    store.create_user("alice")
    store.create_workspace("team", owner="alice")
    _, secret = store.create_run_token("team", "r1")

    store.delete_workspace("team")
    store.delete_workspace("team")

    assert store.list_workspaces("alice") == []
    assert store.role_of("alice", "team") is None
    with pytest.raises(AuthenticationError):
        store.authenticate(secret)
    assert store.create_workspace("team", owner="alice").name == "team"


# files


def test_the_server_files_are_private_to_their_owner(tmp_path: Path) -> None:
    old = os.umask(0)  # the loosest umask: only modelyard's own modes keep the files private
    try:
        store = AccountStore.open(ServerSettings(data_dir=tmp_path / "server"))
        _token_of(store, "alice")
    finally:
        os.umask(old)

    folder = tmp_path / "server"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = {path.name: path for path in folder.glob("server.db*")}
    assert {"server.db", "server.db-wal", "server.db-shm"} <= set(files)
    for path in files.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_another_account_cannot_read_the_server_data(mallory: Account) -> None:
    # A folder others may enter, as /srv often is: only the server's own modes keep them out.
    shared = Path(tempfile.mkdtemp(prefix="my-shared-", dir="/tmp"))
    try:
        os.chmod(shared, 0o755)
        store = AccountStore.open(ServerSettings(data_dir=shared / "server"))
        _token_of(store, "alice")
        folder = shared / "server"

        def look() -> None:
            for name in ("server.db", "server.db-wal"):
                with pytest.raises(PermissionError):
                    (folder / name).read_bytes()
            with pytest.raises(PermissionError):
                os.listdir(folder)

        mallory.do(look)
    finally:
        shutil.rmtree(shared, ignore_errors=True)
