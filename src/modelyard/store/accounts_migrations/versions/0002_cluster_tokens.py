"""Tokens of a cluster's admission: a token may belong to one compute target of a workspace.

Up: ``compute_name`` is added, and a token's owner is now a user, a run of a workspace, or a
compute target of a workspace (exactly one). Down: the cluster tokens are deleted (nothing
could read them) and the column goes.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_OWNER_BEFORE = (
    "(user_name IS NOT NULL AND workspace_id IS NULL AND run_id IS NULL) OR "
    "(user_name IS NULL AND workspace_id IS NOT NULL AND run_id IS NOT NULL)"
)
OWNER = (
    "(user_name IS NOT NULL AND workspace_id IS NULL AND run_id IS NULL "
    "AND compute_name IS NULL) OR "
    "(user_name IS NULL AND workspace_id IS NOT NULL AND run_id IS NOT NULL "
    "AND compute_name IS NULL) OR "
    "(user_name IS NULL AND workspace_id IS NOT NULL AND run_id IS NULL "
    "AND compute_name IS NOT NULL)"
)


def upgrade() -> None:
    with op.batch_alter_table("accounts_tokens") as batch:
        batch.add_column(sa.Column("compute_name", sa.String(255), nullable=True))
        batch.drop_constraint("ck_accounts_tokens_owner", type_="check")
        batch.create_check_constraint("ck_accounts_tokens_owner", OWNER)


def downgrade() -> None:
    op.execute("DELETE FROM accounts_tokens WHERE compute_name IS NOT NULL")
    with op.batch_alter_table("accounts_tokens") as batch:
        batch.drop_constraint("ck_accounts_tokens_owner", type_="check")
        batch.drop_column("compute_name")
        batch.create_check_constraint("ck_accounts_tokens_owner", _OWNER_BEFORE)
