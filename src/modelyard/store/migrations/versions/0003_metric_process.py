"""Metric points remember the process of a distributed run that logged them.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("metric_chunks", sa.Column("process", sa.Integer, nullable=True))


def downgrade() -> None:
    # SQLite before 3.35 cannot drop a column in place; batch mode copies the table.
    with op.batch_alter_table("metric_chunks") as batch:
        batch.drop_column("process")
