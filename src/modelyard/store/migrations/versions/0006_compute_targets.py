"""Compute targets (clusters) become workspace objects: one row each, by name.

Up: the ``compute_targets`` table, empty. Down: it goes, with the records in it (the
clusters themselves are not touched: an older modelyard does not know them).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compute_targets",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("compute_type", sa.String(255), nullable=False),
        sa.Column("provisioning", sa.Text, nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("address", sa.Text, nullable=True),
        sa.Column("errors", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("nodes", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("compute_targets")
