"""The tables of a server's accounts database: users, their tokens, workspaces and members.

One database per server (``<data_dir>/server.db``, or the PostgreSQL database it is given,
beside the workspaces' own schemas): every table is named ``accounts_*`` and Alembic records
their revision in ``accounts_alembic_version``, so nothing here meets a workspace's tables.
The schema is made by the migrations in ``store/accounts_migrations``; these definitions are
what the code queries with, and a test checks that the two agree.

A token's secret is never stored: ``secret_hash`` is its SHA-256 (see server/accounts.py).
A token belongs to a user, or, for a run's supervisor, to one run of one workspace, or, for a
cluster's admission, to one compute target of one workspace.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
)

metadata = MetaData()

users = Table(
    "accounts_users",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("admin", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
)

workspaces = Table(
    "accounts_workspaces",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

members = Table(
    "accounts_members",
    metadata,
    Column(
        "workspace_id",
        String(36),
        ForeignKey("accounts_workspaces.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "user_name",
        String(255),
        ForeignKey("accounts_users.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("role", String(16), nullable=False),
    Index("ix_accounts_members_user", "user_name"),
)

tokens = Table(
    "accounts_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(255), nullable=False),
    Column(
        "user_name",
        String(255),
        ForeignKey("accounts_users.name", ondelete="CASCADE"),
        nullable=True,
    ),
    Column(
        "workspace_id",
        String(36),
        ForeignKey("accounts_workspaces.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("run_id", String(255), nullable=True),
    # A cluster's admission's token: the compute target (of ``workspace_id``) it admits for.
    Column("compute_name", String(255), nullable=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("last_used_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    # A user's token, a run's or a cluster's: exactly one owner.
    CheckConstraint(
        "(user_name IS NOT NULL AND workspace_id IS NULL AND run_id IS NULL "
        "AND compute_name IS NULL) OR "
        "(user_name IS NULL AND workspace_id IS NOT NULL AND run_id IS NOT NULL "
        "AND compute_name IS NULL) OR "
        "(user_name IS NULL AND workspace_id IS NOT NULL AND run_id IS NULL "
        "AND compute_name IS NOT NULL)",
        name="ck_accounts_tokens_owner",
    ),
    Index("ix_accounts_tokens_user", "user_name"),
    Index("ix_accounts_tokens_run", "workspace_id", "run_id"),
)
