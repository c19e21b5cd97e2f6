"""Who may use a server: users, their tokens, workspaces and the members of each.

Everything lives in one database (``ServerSettings.accounts_database_url``), migrated when the
store opens. There is no default user, password or token: the first user is made on the
server's machine with ``modelyard admin create-user``.

A token is ``myd_<id>_<secret>``: the prefix makes a leaked one recognisable (secret scanners,
logs), the id finds its row, and the secret is 32 random bytes. It is shown once; the database
keeps only its SHA-256. Roles, each able to do what the one before can, and more:
``reader``, ``contributor``, ``owner``. The records it returns are in ``account_records.py``
(and importable from here).

Example::

    store = AccountStore("sqlite:///srv/modelyard/server.db")
    store.create_user("alice", admin=True)
    record, secret = store.create_token("alice", "laptop")
    store.authenticate(secret)      # Principal(token_id=..., user='alice', admin=True)
    store.create_workspace("team", owner="alice")
    store.role_of("alice", "team")  # 'owner'
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import time
import uuid
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from modelyard.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from modelyard.names import check_name
from modelyard.server.account_records import (
    OWNER,
    ROLES,
    Member,
    Principal,
    TokenRecord,
    UserRecord,
    WorkspaceEntry,
    has_role,
)
from modelyard.server.settings import ServerSettings
from modelyard.store import accounts_tables as t
from modelyard.store.database import Database
from modelyard.store.migrate import ACCOUNTS
from modelyard.store.private import make_private_folder

TOKEN_PREFIX = "myd_"
# 8 random bytes in hex: ids only find a row (the secret is what authenticates), and 2**64 ids
# make a collision among a server's tokens as good as impossible.
_TOKEN_ID_BYTES = 8
# secrets.token_urlsafe(32) gives 43 characters of the URL-safe base64 alphabet.
_SECRET_BYTES = 32
_TOKEN = re.compile(r"myd_([0-9a-f]{16})_([A-Za-z0-9_\-]{43})")
# last_used_at is for people ("used 3 days ago"), not for auditing: it is written at most once
# a minute per token, so a busy client costs no write per call.
LAST_USED_RESOLUTION_S = 60.0
RUN_TOKEN_NAME = "run"
CLUSTER_TOKEN_NAME = "cluster"

_WHAT_TO_DO = (
    "log in again (`modelyard login SERVER`) or set MODELYARD_TOKEN to a token of yours "
    "(`modelyard admin create-token USER` on the server's machine makes one)"
)


def _hash(secret: str) -> str:
    # SHA-256, not a slow password hash (bcrypt, scrypt): those make guessing a low-entropy
    # password expensive, but a secret of 32 random bytes cannot be guessed at any speed, and a
    # fast hash keeps authenticating every call cheap.
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _check_role(role: object) -> str:
    if not isinstance(role, str) or role not in ROLES:
        raise ValidationError("role", f"{role!r} is not a role: use one of {', '.join(ROLES)}")
    return role


def _check_lifetime(expires_in_s: float | None) -> float | None:
    if expires_in_s is None:
        return None
    if not isinstance(expires_in_s, int | float) or not math.isfinite(expires_in_s):
        raise ValidationError("expires_in_s", f"{expires_in_s!r} is not a number of seconds")
    if expires_in_s <= 0:
        raise ValidationError(
            "expires_in_s", f"a token must live some time: {expires_in_s} is not above 0"
        )
    return float(expires_in_s)


def _check_limit(limit: int | None) -> int | None:
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValidationError("limit", f"{limit!r}: give a whole number from 1, or no limit")
    return limit


def _new_token() -> tuple[str, str]:
    token_id = secrets.token_hex(_TOKEN_ID_BYTES)
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"


_TOKEN_COLUMNS = (
    t.tokens.c.id,
    t.tokens.c.name,
    t.tokens.c.user_name,
    t.workspaces.c.name.label("workspace_name"),
    t.tokens.c.run_id,
    t.tokens.c.created_at,
    t.tokens.c.expires_at,
    t.tokens.c.last_used_at,
    t.tokens.c.compute_name,
)


def _token_record(row: Row[*tuple[Any, ...]]) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        name=row.name,
        user=row.user_name,
        workspace=row.workspace_name,
        run_id=row.run_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        compute=row.compute_name,
    )


def _user_record(row: Row[Any]) -> UserRecord:
    return UserRecord(name=row.name, admin=bool(row.admin), created_at=row.created_at)


def _workspace_entry(row: Row[Any]) -> WorkspaceEntry:
    return WorkspaceEntry(id=row.id, name=row.name, created_at=row.created_at)


class AccountStore:
    """Users, tokens, workspaces and members of one server, in its accounts database.

    Every method is one transaction; several server processes may share the database.
    Opening it applies the accounts migrations, safely when several processes open a new
    database at once.
    """

    def __init__(self, database_url: str) -> None:
        self.db = Database(database_url)
        ACCOUNTS.upgrade(self.db)

    @classmethod
    def open(cls, settings: ServerSettings) -> AccountStore:
        """The store of the server ``settings`` describe, its data folder made first, private
        to its owner (0700; the database file and its write-ahead log are 0600).

        Example::

            store = AccountStore.open(ServerSettings(data_dir=Path("/srv/modelyard")))
        """
        make_private_folder(settings.data_dir)
        return cls(settings.accounts_database_url)

    def close(self) -> None:
        """Close the database's connections (a store is not used after this)."""
        self.db.engine.dispose()

    # users

    def create_user(self, name: str, *, admin: bool = False) -> UserRecord:
        """Create user ``name`` (ConflictError when the name is taken). It has no token yet:
        :meth:`create_token` makes one."""
        check_name("name", name)
        record = UserRecord(name=name, admin=bool(admin), created_at=time.time())
        try:
            self.db.write(
                lambda conn: conn.execute(
                    insert(t.users).values(
                        name=name, admin=record.admin, created_at=record.created_at
                    )
                )
            )
        except IntegrityError:
            raise ConflictError(
                f"user {name!r} exists already; choose another name, or give the user a "
                f"new token: `modelyard admin create-token {name}`"
            ) from None
        return record

    def get_user(self, name: str) -> UserRecord:
        """User ``name``; NotFoundError when there is none."""
        with self.db.read() as conn:
            return _user_record(self._user_row(conn, name))

    def list_users(self, limit: int | None = None, after: str | None = None) -> list[UserRecord]:
        """Users by name: at most ``limit``, those after the name ``after`` (the last of the
        page before)."""
        query = select(t.users).order_by(t.users.c.name).limit(_check_limit(limit))
        if after is not None:
            query = query.where(t.users.c.name > after)
        with self.db.read() as conn:
            return [_user_record(row) for row in conn.execute(query)]

    # tokens

    def create_token(
        self, user: str, name: str, *, expires_in_s: float | None = None
    ) -> tuple[TokenRecord, str]:
        """A new token of ``user`` named ``name`` (a label for people; several may share it),
        valid for ``expires_in_s`` seconds or until revoked. Returns its record and its secret,
        which is shown this once: only its hash is kept."""
        check_name("name", name)
        lifetime = _check_lifetime(expires_in_s)
        token_id, secret = _new_token()
        now = time.time()
        expires_at = None if lifetime is None else now + lifetime

        def work(conn: Connection) -> None:
            self._user_row(conn, user)
            self._insert_token(conn, token_id, name, secret, now, expires_at, user_name=user)

        self.db.write(work)
        return TokenRecord(token_id, name, user, None, None, now, expires_at, None), secret

    def create_run_token(
        self, workspace: str, run_id: str, *, expires_in_s: float | None = None
    ) -> tuple[TokenRecord, str]:
        """A token for the supervisor of run ``run_id`` of ``workspace``: it reaches that run
        only, and no user's rights. :meth:`revoke_run_tokens` ends it when the run ends."""
        check_name("run_id", run_id)
        return self._workspace_token(workspace, RUN_TOKEN_NAME, expires_in_s, run_id=run_id)

    def create_cluster_token(self, workspace: str, compute: str) -> tuple[TokenRecord, str]:
        """A token for the admission of cluster ``compute`` of ``workspace``: it lists, claims
        and records that compute target's runs and hands each its run's token, and nothing
        else (``server/cluster_tokens.py``). :meth:`revoke_cluster_tokens` ends it when the
        compute target is deleted."""
        check_name("compute", compute)
        return self._workspace_token(workspace, CLUSTER_TOKEN_NAME, None, compute_name=compute)

    def _workspace_token(
        self, workspace: str, name: str, expires_in_s: float | None, **owner: str
    ) -> tuple[TokenRecord, str]:
        """A token of ``workspace`` owned by ``owner`` (its run_id or compute_name)."""
        lifetime = _check_lifetime(expires_in_s)
        token_id, secret = _new_token()
        now = time.time()
        expires_at = None if lifetime is None else now + lifetime

        def work(conn: Connection) -> None:
            row = self._workspace_row(conn, workspace)
            self._insert_token(
                conn, token_id, name, secret, now, expires_at, workspace_id=row.id, **owner
            )

        self.db.write(work)
        record = TokenRecord(
            token_id,
            name,
            None,
            workspace,
            owner.get("run_id"),
            now,
            expires_at,
            None,
            owner.get("compute_name"),
        )
        return record, secret

    def revoke_cluster_tokens(self, workspace: str, compute: str) -> None:
        """End every token of compute target ``compute`` of ``workspace`` (when it is
        deleted); nothing to end is not an error."""
        workspace_ids = select(t.workspaces.c.id).where(t.workspaces.c.name == workspace)
        self.db.write(
            lambda conn: conn.execute(
                delete(t.tokens).where(
                    t.tokens.c.workspace_id.in_(workspace_ids), t.tokens.c.compute_name == compute
                )
            )
        )

    def list_tokens(self, user: str) -> list[TokenRecord]:
        """The tokens of ``user`` not revoked (expired ones too, with their ``expires_at``),
        oldest first; never a secret nor a hash."""
        query = (
            select(*_TOKEN_COLUMNS)
            .select_from(t.tokens.outerjoin(t.workspaces))
            .where(t.tokens.c.user_name == user, t.tokens.c.revoked_at.is_(None))
            .order_by(t.tokens.c.created_at, t.tokens.c.id)
        )
        with self.db.read() as conn:
            self._user_row(conn, user)
            return [_token_record(row) for row in conn.execute(query)]

    def list_run_tokens(self) -> list[TokenRecord]:
        """The runs' tokens not revoked, of every workspace, oldest first: those whose run
        has ended are revoked by the server's sweep (a cluster's admission records the end
        directly in the workspace, not through the server)."""
        query = (
            select(*_TOKEN_COLUMNS)
            .select_from(t.tokens.join(t.workspaces))
            .where(t.tokens.c.run_id.is_not(None), t.tokens.c.revoked_at.is_(None))
            .order_by(t.tokens.c.created_at, t.tokens.c.id)
        )
        with self.db.read() as conn:
            return [_token_record(row) for row in conn.execute(query)]

    def revoke_token(self, user: str, token_id: str) -> None:
        """Revoke token ``token_id`` of ``user``: calls with it fail from now on, on every
        server process. Revoking it again does nothing; a token that is not the user's (or
        no token at all) is a NotFoundError, saying nothing about other users' tokens."""

        def work(conn: Connection) -> None:
            found = conn.execute(
                select(t.tokens.c.revoked_at).where(
                    t.tokens.c.id == token_id, t.tokens.c.user_name == user
                )
            ).first()
            if found is None:
                raise NotFoundError(
                    f"user {user!r} has no token {token_id!r}; `modelyard token list` shows "
                    "the ids of yours"
                )
            if found.revoked_at is None:
                conn.execute(
                    update(t.tokens).where(t.tokens.c.id == token_id).values(revoked_at=time.time())
                )

        self.db.write(work)

    def revoke_run_tokens(self, workspace: str, run_id: str) -> None:
        """End every token of run ``run_id`` of ``workspace`` (when the run ends); nothing to
        end, or no such workspace, is not an error. They are deleted: nobody lists them."""
        workspace_ids = select(t.workspaces.c.id).where(t.workspaces.c.name == workspace)
        self.db.write(
            lambda conn: conn.execute(
                delete(t.tokens).where(
                    t.tokens.c.workspace_id.in_(workspace_ids), t.tokens.c.run_id == run_id
                )
            )
        )

    def authenticate(self, secret: str) -> Principal:
        """Who holds the token ``secret``; AuthenticationError when it is malformed, unknown,
        revoked or expired (or its user or workspace is gone)."""
        match = _TOKEN.fullmatch(secret) if isinstance(secret, str) else None
        if match is None:
            raise AuthenticationError(
                f"the token given is not a modelyard token (those start with "
                f"{TOKEN_PREFIX!r}, then its id and secret); {_WHAT_TO_DO}"
            )
        token_id = match.group(1)
        query = (
            select(
                t.tokens.c.id,
                t.tokens.c.secret_hash,
                t.tokens.c.user_name,
                t.tokens.c.run_id,
                t.tokens.c.compute_name,
                t.tokens.c.expires_at,
                t.tokens.c.revoked_at,
                t.tokens.c.last_used_at,
                t.users.c.admin,
                t.workspaces.c.name.label("workspace_name"),
            )
            .select_from(t.tokens.outerjoin(t.users).outerjoin(t.workspaces))
            .where(t.tokens.c.id == token_id)
        )
        with self.db.read() as conn:
            row = conn.execute(query).first()
        # Constant-time comparison: how long it takes says nothing of how much of a guessed
        # secret was right.
        if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
            raise AuthenticationError(f"this server does not know the token given; {_WHAT_TO_DO}")
        if row.revoked_at is not None:
            raise AuthenticationError(
                f"token {token_id} was revoked; use another token of yours, or make one "
                "(`modelyard token create`)"
            )
        now = time.time()
        if row.expires_at is not None and row.expires_at <= now:
            raise AuthenticationError(
                f"token {token_id} has expired; make a new one (`modelyard token create`, or "
                "`modelyard admin create-token USER` on the server's machine)"
            )
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION_S:
            self._touch(token_id, now)
        if row.user_name is not None:
            return Principal(token_id=token_id, user=row.user_name, admin=bool(row.admin))
        return Principal(
            token_id=token_id,
            workspace=row.workspace_name,
            run_id=row.run_id,
            compute=row.compute_name,
        )

    # workspaces and members

    def create_workspace(self, name: str, owner: str) -> WorkspaceEntry:
        """Register workspace ``name`` with user ``owner`` as its owner (ConflictError when
        the name is taken, NotFoundError when the user does not exist)."""
        check_name("name", name)
        entry = WorkspaceEntry(id=str(uuid.uuid4()), name=name, created_at=time.time())

        def work(conn: Connection) -> None:
            self._user_row(conn, owner)
            conn.execute(
                insert(t.workspaces).values(id=entry.id, name=name, created_at=entry.created_at)
            )
            conn.execute(
                insert(t.members).values(workspace_id=entry.id, user_name=owner, role=OWNER)
            )

        try:
            self.db.write(work)
        except IntegrityError:
            raise ConflictError(f"workspace {name!r} exists already; choose another name") from None
        return entry

    def get_workspace(self, name: str) -> WorkspaceEntry:
        """Workspace ``name``; NotFoundError when there is none."""
        with self.db.read() as conn:
            return _workspace_entry(self._workspace_row(conn, name))

    def list_workspaces(
        self, user: str | None = None, *, limit: int | None = None, after: str | None = None
    ) -> list[WorkspaceEntry]:
        """Workspaces by name (with ``user``: those the user is a member of), at most
        ``limit``, those after the name ``after``."""
        query = select(t.workspaces).order_by(t.workspaces.c.name).limit(_check_limit(limit))
        if user is not None:
            query = query.join(t.members).where(t.members.c.user_name == user)
        if after is not None:
            query = query.where(t.workspaces.c.name > after)
        with self.db.read() as conn:
            return [_workspace_entry(row) for row in conn.execute(query)]

    def delete_workspace(self, name: str) -> None:
        """Forget workspace ``name``, its members and its runs' tokens; none is not an error.
        (Its folder and data are the caller's to remove.)"""
        self.db.write(
            lambda conn: conn.execute(delete(t.workspaces).where(t.workspaces.c.name == name))
        )

    def set_member(self, workspace: str, user: str, role: str) -> None:
        """Make ``user`` a member of ``workspace`` with ``role``, or change their role.
        Making the last owner anything less is a ConflictError: a workspace keeps an owner."""
        _check_role(role)

        def work(conn: Connection) -> None:
            workspace_id = self._workspace_row(conn, workspace).id
            self._user_row(conn, user)
            current = self._role(conn, workspace_id, user)
            if current == role:
                return
            if current == OWNER:
                self._refuse_last_owner(conn, workspace_id, workspace, user, "make them a " + role)
            if current is None:
                conn.execute(
                    insert(t.members).values(workspace_id=workspace_id, user_name=user, role=role)
                )
            else:
                conn.execute(
                    update(t.members)
                    .where(t.members.c.workspace_id == workspace_id, t.members.c.user_name == user)
                    .values(role=role)
                )

        self.db.write(work)

    def remove_member(self, workspace: str, user: str) -> None:
        """Remove ``user`` from ``workspace``; one who is not a member is not an error. The
        last owner cannot be removed (ConflictError)."""

        def work(conn: Connection) -> None:
            workspace_id = self._workspace_row(conn, workspace).id
            current = self._role(conn, workspace_id, user)
            if current is None:
                return
            if current == OWNER:
                self._refuse_last_owner(conn, workspace_id, workspace, user, "remove them")
            conn.execute(
                delete(t.members).where(
                    t.members.c.workspace_id == workspace_id, t.members.c.user_name == user
                )
            )

        self.db.write(work)

    def list_members(self, workspace: str) -> list[Member]:
        """The members of ``workspace`` by user name; NotFoundError when there is none."""
        with self.db.read() as conn:
            workspace_id = self._workspace_row(conn, workspace).id
            rows = conn.execute(
                select(t.members.c.user_name, t.members.c.role)
                .where(t.members.c.workspace_id == workspace_id)
                .order_by(t.members.c.user_name)
            )
            return [Member(user=row.user_name, role=row.role) for row in rows]

    def role_of(self, user: str, workspace: str) -> str | None:
        """The role of ``user`` in ``workspace``; None when they are not a member, or when
        there is no such workspace (the server answers both alike)."""
        query = (
            select(t.members.c.role)
            .join(t.workspaces)
            .where(t.workspaces.c.name == workspace, t.members.c.user_name == user)
        )
        with self.db.read() as conn:
            role: str | None = conn.execute(query).scalar()
            return role

    # the rows behind them

    @staticmethod
    def _user_row(conn: Connection, name: str) -> Row[Any]:
        row = conn.execute(select(t.users).where(t.users.c.name == name)).first()
        if row is None:
            raise NotFoundError(
                f"user {name!r} does not exist; `modelyard admin list-users` shows the users"
            )
        return row

    @staticmethod
    def _workspace_row(conn: Connection, name: str) -> Row[Any]:
        row = conn.execute(select(t.workspaces).where(t.workspaces.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"workspace {name!r} does not exist on this server")
        return row

    @staticmethod
    def _role(conn: Connection, workspace_id: str, user: str) -> str | None:
        role: str | None = conn.execute(
            select(t.members.c.role).where(
                t.members.c.workspace_id == workspace_id, t.members.c.user_name == user
            )
        ).scalar()
        return role

    @staticmethod
    def _refuse_last_owner(
        conn: Connection, workspace_id: str, workspace: str, user: str, change: str
    ) -> None:
        # Read in the same transaction as the change: two owners removing each other at once
        # are serialised (SQLite's write lock, PostgreSQL's SERIALIZABLE), so one keeps it.
        owners = conn.execute(
            select(func.count())
            .select_from(t.members)
            .where(t.members.c.workspace_id == workspace_id, t.members.c.role == OWNER)
        ).scalar_one()
        if owners <= 1:
            raise ConflictError(
                f"{user!r} is the last owner of workspace {workspace!r}: make another member "
                f"owner first, then {change}"
            )

    @staticmethod
    def _insert_token(
        conn: Connection,
        token_id: str,
        name: str,
        secret: str,
        now: float,
        expires_at: float | None,
        **owner: str,
    ) -> None:
        conn.execute(
            insert(t.tokens).values(
                id=token_id,
                name=name,
                secret_hash=_hash(secret),
                created_at=now,
                expires_at=expires_at,
                **owner,
            )
        )

    def _touch(self, token_id: str, now: float) -> None:
        # Conditional, so that server processes racing for the same token write it once.
        stale = or_(
            t.tokens.c.last_used_at.is_(None),
            t.tokens.c.last_used_at <= now - LAST_USED_RESOLUTION_S,
        )
        self.db.write(
            lambda conn: conn.execute(
                update(t.tokens).where(t.tokens.c.id == token_id, stale).values(last_used_at=now)
            )
        )


__all__ = [
    "OWNER",
    "ROLES",
    "TOKEN_PREFIX",
    "AccountStore",
    "Member",
    "Principal",
    "TokenRecord",
    "UserRecord",
    "WorkspaceEntry",
    "has_role",
]
