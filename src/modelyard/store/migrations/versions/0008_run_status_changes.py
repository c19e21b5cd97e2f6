"""Each run's states as they changed: the status each time it changed, and when.

Up: the ``run_status_changes`` table, empty: runs made before keep their created, started and
ended times only. Down: it goes.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_status_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            sa.String(255),
            sa.ForeignKey("runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_run_status_changes_run", "run_status_changes", ["run_id", "id"])


def downgrade() -> None:
    op.drop_table("run_status_changes")
