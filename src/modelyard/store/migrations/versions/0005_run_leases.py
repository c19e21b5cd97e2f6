"""Runs remember which worker claimed them and until when (claim_run's lease).

Up: two nullable columns on ``runs`` and an index for the watchers' search for expired
leases; existing runs are unclaimed (NULL). Down: they go again.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("lease_holder", sa.String(255), nullable=True))
    op.add_column("runs", sa.Column("lease_expires_at", sa.Float, nullable=True))
    op.create_index("ix_runs_status_lease", "runs", ["status", "lease_expires_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_status_lease", table_name="runs")
    # In place (ALTER TABLE ... DROP COLUMN, SQLite 3.35 and later), not in batch mode:
    # batch mode copies the table and drops the old one, and with foreign keys on, dropping
    # ``runs`` deletes the tags, properties and metrics that refer to it.
    op.drop_column("runs", "lease_expires_at")
    op.drop_column("runs", "lease_holder")
