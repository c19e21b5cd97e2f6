"""Datastore credentials move out of the database into the workspace's secrets file.

Up: every datastore's non-empty ``storage_options`` are written to the secrets file
(``store/secrets.py``, 0600, beside the database in the workspace folder), then the column is
dropped, so an old workspace's database no longer holds a credential. Options the file has
already (a migration that ran there before its commit failed) are kept as the file says.
Down: the column comes back, filled from the secrets file, which stays as it is.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from modelyard.errors import ConfigError
from modelyard.store.secrets import SecretsFile

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _secrets() -> SecretsFile | None:
    path: Path | None = context.config.attributes.get("secrets_path")
    return SecretsFile(path) if path is not None else None


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT name, storage_options FROM datastores")).all()
    moved: dict[str, dict[str, Any]] = {}
    for name, text in rows:
        options = json.loads(text) if text else {}
        if options:
            moved[name] = options
    if moved:
        secrets = _secrets()
        if secrets is None:
            raise ConfigError(
                f"datastores {sorted(moved)} have storage options (credentials) in the "
                "database, and this upgrade moves them into the workspace folder, which it "
                "was not given; open the workspace from its folder (Workspace.get) to upgrade"
            )
        kept = secrets.all()
        secrets.update({name: options for name, options in moved.items() if name not in kept})
    if conn.dialect.name == "sqlite":
        # Zero the pages the old values leave, instead of leaving them readable in the free
        # pages of the file (store/migrate.py then truncates the write-ahead log).
        conn.exec_driver_sql("PRAGMA secure_delete = ON")
    conn.execute(sa.text("UPDATE datastores SET storage_options = '{}'"))
    with op.batch_alter_table("datastores") as batch:
        batch.drop_column("storage_options")


def downgrade() -> None:
    with op.batch_alter_table("datastores") as batch:
        batch.add_column(sa.Column("storage_options", sa.Text, nullable=False, server_default="{}"))
    secrets = _secrets()
    if secrets is None:
        return
    conn = op.get_bind()
    for name, options in secrets.all().items():
        conn.execute(
            sa.text("UPDATE datastores SET storage_options = :options WHERE name = :name"),
            {"options": json.dumps(options, sort_keys=True), "name": name},
        )
