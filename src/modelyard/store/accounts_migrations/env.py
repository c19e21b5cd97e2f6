"""Alembic environment of the server's accounts: runs migrations on the connection that
``store/migrate.py`` hands over, recording them in their own version table."""

from __future__ import annotations

from alembic import context

from modelyard.store.accounts_tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=context.config.attributes["version_table"],
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
