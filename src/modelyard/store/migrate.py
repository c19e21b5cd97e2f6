"""Bring a metadata database to the schema this version of modelyard needs.

Opening a workspace compares the database's Alembic revision with ``HEAD_REVISION`` (a cheap
query) and only loads Alembic when they differ, so opening stays fast.

Example::

    upgrade(Database("sqlite:///ws/modelyard.db"))
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from sqlalchemy.exc import DatabaseError

from modelyard.errors import StorageError
from modelyard.store.database import Database

# The newest revision in migrations/versions; tests/store/test_migrations.py keeps them equal.
HEAD_REVISION = "0007"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _alembic_config(db: Database):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", db.url)
    return config


def _run(db: Database, command_name: str, revision: str, secrets_path: Path | None) -> None:
    from alembic import command

    config = _alembic_config(db)
    # Where migration 0004 moves datastore credentials to (the workspace's secrets file).
    config.attributes["secrets_path"] = secrets_path
    try:
        with db.engine.connect() as conn:
            if db.is_sqlite:
                # Take the write lock first, so two processes opening a new workspace at once
                # migrate it one after the other; the second then finds nothing to do.
                conn.info["begin"] = "IMMEDIATE"
            with conn.begin():
                config.attributes["connection"] = conn
                getattr(command, command_name)(config, revision)
            if db.is_sqlite:
                # What a migration replaced (credentials, say) must not stay behind in old
                # frames of the write-ahead log: copy it into the database and empty the log.
                # On the driver's own connection, since SQLite refuses to checkpoint in a
                # transaction; best effort, as busy readers of other processes only put it off.
                driver = conn.connection.driver_connection
                with contextlib.suppress(sqlite3.Error):
                    if driver is not None:
                        driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except DatabaseError as error:
        db.raise_if_damaged(error)
        raise


def upgrade(db: Database, revision: str = "head", *, secrets_path: Path | None = None) -> None:
    """Migrate ``db`` up to ``revision`` (the newest by default); a no-op when it is there.

    ``secrets_path`` is the workspace's datastore credentials file (``store/secrets.py``),
    which migrations that move credentials out of the database write.
    """
    current = db.schema_revision()
    if revision == "head" and current == HEAD_REVISION:
        return
    if current is not None and current > HEAD_REVISION:
        raise StorageError(
            f"the workspace database is at schema {current}, newer than this modelyard "
            f"({HEAD_REVISION}); upgrade modelyard to open it"
        )
    _run(db, "upgrade", revision, secrets_path)


def downgrade(db: Database, revision: str, *, secrets_path: Path | None = None) -> None:
    """Migrate ``db`` down to ``revision`` (``"base"`` empties it)."""
    _run(db, "downgrade", revision, secrets_path)
