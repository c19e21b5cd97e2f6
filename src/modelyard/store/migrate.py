"""Bring a metadata database to the schema this version of modelyard needs.

Opening a workspace compares the database's Alembic revision with ``HEAD_REVISION`` (a cheap
query) and only loads Alembic when they differ, so opening stays fast.

Example::

    upgrade(Database("sqlite:///ws/modelyard.db"))
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import DatabaseError

from modelyard.errors import StorageError
from modelyard.store.database import Database

# The newest revision in migrations/versions; tests/store/test_migrations.py keeps them equal.
HEAD_REVISION = "0003"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _alembic_config(db: Database):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", db.url)
    return config


def _run(db: Database, command_name: str, revision: str) -> None:
    from alembic import command

    config = _alembic_config(db)
    try:
        with db.engine.connect() as conn:
            if db.is_sqlite:
                # Take the write lock first, so two processes opening a new workspace at once
                # migrate it one after the other; the second then finds nothing to do.
                conn.info["begin"] = "IMMEDIATE"
            with conn.begin():
                config.attributes["connection"] = conn
                getattr(command, command_name)(config, revision)
    except DatabaseError as error:
        db.raise_if_damaged(error)
        raise


def upgrade(db: Database, revision: str = "head") -> None:
    """Migrate ``db`` up to ``revision`` (the newest by default); a no-op when it is there."""
    current = db.schema_revision()
    if revision == "head" and current == HEAD_REVISION:
        return
    if current is not None and current > HEAD_REVISION:
        raise StorageError(
            f"the workspace database is at schema {current}, newer than this modelyard "
            f"({HEAD_REVISION}); upgrade modelyard to open it"
        )
    _run(db, "upgrade", revision)


def downgrade(db: Database, revision: str) -> None:
    """Migrate ``db`` down to ``revision`` (``"base"`` empties it)."""
    _run(db, "downgrade", revision)
