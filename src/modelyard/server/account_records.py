"""What the server's account store returns: users, tokens (never their secrets), workspaces,
members and the principal behind a call, as plain frozen records; and the roles' order.

Example::

    has_role("contributor", "reader")     # True: each role can do what the one before can
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("reader", "contributor", "owner")
OWNER = "owner"


@dataclass(frozen=True)
class UserRecord:
    """A user of the server; ``admin`` users manage users and every workspace."""

    name: str
    admin: bool
    created_at: float


@dataclass(frozen=True)
class TokenRecord:
    """A token as its owner may see it: never its secret, nor its hash. A user's token has
    ``user``; a run's (held by the run's supervisor) has ``workspace`` and ``run_id``; a
    cluster's (held by its admission) has ``workspace`` and ``compute``."""

    id: str
    name: str
    user: str | None
    workspace: str | None
    run_id: str | None
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    compute: str | None = None


@dataclass(frozen=True)
class WorkspaceEntry:
    """A workspace the server holds: ``id`` (a uuid4) names its storage, ``name`` its URLs."""

    id: str
    name: str
    created_at: float


@dataclass(frozen=True)
class Member:
    """A user's role in a workspace."""

    user: str
    role: str


@dataclass(frozen=True)
class Principal:
    """Who made a call: a user (``user``, ``admin``), a run's supervisor (``workspace`` and
    ``run_id``, with ``user`` None) or a cluster's admission (``workspace`` and ``compute``),
    identified by the token they gave."""

    token_id: str
    user: str | None = None
    admin: bool = False
    workspace: str | None = None
    run_id: str | None = None
    compute: str | None = None


def has_role(role: str | None, needed: str) -> bool:
    """Whether a member of ``role`` (None: not a member) may do what ``needed`` may.

    Example::

        has_role("owner", "contributor")    # True
        has_role("reader", "contributor")   # False
    """
    return role is not None and ROLES.index(role) >= ROLES.index(needed)
