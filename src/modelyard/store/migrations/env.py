"""Alembic environment: runs migrations on the connection that ``store/migrate.py`` hands over."""

from __future__ import annotations

from alembic import context

from modelyard.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=context.config.attributes["version_table"],
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
