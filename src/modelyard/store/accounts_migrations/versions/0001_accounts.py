"""The first accounts schema: users, tokens, workspaces and their members.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts_users",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "accounts_workspaces",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "accounts_members",
        sa.Column(
            "workspace_id",
            sa.String(36),
            sa.ForeignKey("accounts_workspaces.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_name",
            sa.String(255),
            sa.ForeignKey("accounts_users.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("role", sa.String(16), nullable=False),
    )
    op.create_index("ix_accounts_members_user", "accounts_members", ["user_name"])
    op.create_table(
        "accounts_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column(
            "user_name",
            sa.String(255),
            sa.ForeignKey("accounts_users.name", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(
            "workspace_id",
            sa.String(36),
            sa.ForeignKey("accounts_workspaces.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("run_id", sa.String(255), nullable=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("last_used_at", sa.Float, nullable=True),
        sa.Column("revoked_at", sa.Float, nullable=True),
        sa.CheckConstraint(
            "(user_name IS NOT NULL AND workspace_id IS NULL AND run_id IS NULL) OR "
            "(user_name IS NULL AND workspace_id IS NOT NULL AND run_id IS NOT NULL)",
            name="ck_accounts_tokens_owner",
        ),
    )
    op.create_index("ix_accounts_tokens_user", "accounts_tokens", ["user_name"])
    op.create_index("ix_accounts_tokens_run", "accounts_tokens", ["workspace_id", "run_id"])


def downgrade() -> None:
    op.drop_table("accounts_tokens")
    op.drop_table("accounts_members")
    op.drop_table("accounts_workspaces")
    op.drop_table("accounts_users")
