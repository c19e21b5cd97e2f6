"""Each compute target's node counts as they changed: the counts each time, and when.

Up: the ``compute_node_counts`` table, empty (a cluster's counts from now on). Down: it goes.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compute_node_counts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "compute_name",
            sa.String(255),
            sa.ForeignKey("compute_targets.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("nodes", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_compute_node_counts_compute_at", "compute_node_counts", ["compute_name", "at"]
    )


def downgrade() -> None:
    op.drop_table("compute_node_counts")
