"""The first schema: experiments, runs, tags, properties, metrics, datastores, models.

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


def _key_value(name: str, owner_column: sa.Column) -> None:  # type: ignore[type-arg]
    op.create_table(
        name,
        owner_column,
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("parent_id", sa.String(255), sa.ForeignKey("runs.id"), nullable=True),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("run_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("heartbeat_at", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.UniqueConstraint("experiment_id", "number", name="uq_runs_experiment_number"),
    )
    op.create_index("ix_runs_experiment_created", "runs", ["experiment_id", "created_at"])
    op.create_index("ix_runs_parent", "runs", ["parent_id"])
    for name in ("run_tags", "run_properties"):
        _key_value(
            name,
            sa.Column(
                "run_id",
                sa.String(255),
                sa.ForeignKey("runs.id", ondelete="CASCADE"),
                primary_key=True,
            ),
        )
        op.create_index(f"ix_{name}_key_value", name, ["key", "value"])
    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id", sa.String(255), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("last_value", sa.Text, nullable=True),
        sa.Column("last_step", sa.Integer, nullable=True),
        sa.UniqueConstraint("run_id", "name", name="uq_metrics_run_name"),
    )
    op.create_table(
        "metric_chunks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "metric_id",
            sa.Integer,
            sa.ForeignKey("metrics.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("first_index", sa.Integer, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("metric_id", "batch_id", name="uq_metric_chunks_batch"),
    )
    op.create_index("ix_metric_chunks_metric_first", "metric_chunks", ["metric_id", "first_index"])
    op.create_table(
        "datastores",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("storage_options", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "model_names",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("last_version", sa.Integer, nullable=False),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("storage_path", sa.Text, nullable=False, unique=True),
        sa.Column("root_name", sa.Text, nullable=False),
        sa.Column(
            "run_id", sa.String(255), sa.ForeignKey("runs.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_models_name_version"),
    )
    for name in ("model_tags", "model_properties"):
        _key_value(
            name,
            sa.Column(
                "model_id",
                sa.Integer,
                sa.ForeignKey("models.id", ondelete="CASCADE"),
                primary_key=True,
            ),
        )


def downgrade() -> None:
    for name in (
        "model_properties",
        "model_tags",
        "models",
        "model_names",
        "datastores",
        "metric_chunks",
        "metrics",
        "run_properties",
        "run_tags",
        "runs",
        "experiments",
        "settings",
    ):
        op.drop_table(name)
