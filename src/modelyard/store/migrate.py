"""Bring a database to the schema this version of modelyard needs.

Two sets of migrations live here: a workspace's metadata (``migrations/``, version table
``alembic_version``) and a server's accounts (``accounts_migrations/``, version table
``accounts_alembic_version``, so that both can share one PostgreSQL database). Opening compares
the database's revision with the set's head (a cheap query) and only loads Alembic when they
differ, so opening stays fast. Migrating holds the database's migration lock
(:meth:`Database.migrating`), so several processes may open a new database at once.

Example::

    upgrade(Database("sqlite:///ws/modelyard.db"))
    ACCOUNTS.upgrade(Database("sqlite:///srv/server.db"))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DatabaseError

from modelyard.errors import StorageError
from modelyard.store.database import Database

# The newest revision in migrations/versions; tests/store/test_migrations.py keeps them equal.
HEAD_REVISION = "0009"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The same for the server's accounts; tests/store/test_accounts_migrations.py keeps them equal.
ACCOUNTS_HEAD_REVISION = "0002"
ACCOUNTS_MIGRATIONS_DIR = Path(__file__).parent / "accounts_migrations"


@dataclass(frozen=True)
class Migrations:
    """One set of Alembic migrations: its folder, its newest revision, the table that records
    where a database is, and what the database is called in messages."""

    folder: Path
    head: str
    version_table: str
    what: str

    def _config(self, db: Database):  # type: ignore[no-untyped-def]
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(self.folder))
        # Escaped for configparser, which reads a % as the start of an interpolation.
        config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
        config.attributes["version_table"] = self.version_table
        return config

    def run(self, db: Database, command_name: str, revision: str, **attributes: Any) -> None:
        """Run Alembic's ``command_name`` (upgrade, downgrade) to ``revision`` under the
        migration lock; ``attributes`` reach the migrations as ``config.attributes``."""
        from alembic import command

        config = self._config(db)
        config.attributes.update(attributes)
        try:
            with db.migrating() as conn:
                config.attributes["connection"] = conn
                getattr(command, command_name)(config, revision)
        except DatabaseError as error:
            db.raise_if_damaged(error)
            raise

    def upgrade(self, db: Database, revision: str = "head", **attributes: Any) -> None:
        """Migrate ``db`` up to ``revision`` (the newest by default); a no-op when it is there."""
        current = db.schema_revision(self.version_table)
        if revision == "head" and current == self.head:
            return
        if current is not None and current > self.head:
            raise StorageError(
                f"{self.what} is at schema {current}, newer than this modelyard "
                f"({self.head}); upgrade modelyard to open it"
            )
        self.run(db, "upgrade", revision, **attributes)

    def downgrade(self, db: Database, revision: str, **attributes: Any) -> None:
        """Migrate ``db`` down to ``revision`` (``"base"`` empties it)."""
        self.run(db, "downgrade", revision, **attributes)


WORKSPACE = Migrations(MIGRATIONS_DIR, HEAD_REVISION, "alembic_version", "the workspace database")
ACCOUNTS = Migrations(
    ACCOUNTS_MIGRATIONS_DIR,
    ACCOUNTS_HEAD_REVISION,
    "accounts_alembic_version",
    "the server's accounts database",
)


def upgrade(db: Database, revision: str = "head", *, secrets_path: Path | None = None) -> None:
    """Migrate the workspace database ``db`` up to ``revision`` (the newest by default); a
    no-op when it is there.

    ``secrets_path`` is the workspace's datastore credentials file (``store/secrets.py``),
    which migrations that move credentials out of the database write.
    """
    WORKSPACE.upgrade(db, revision, secrets_path=secrets_path)


def downgrade(db: Database, revision: str, *, secrets_path: Path | None = None) -> None:
    """Migrate the workspace database ``db`` down to ``revision`` (``"base"`` empties it)."""
    WORKSPACE.downgrade(db, revision, secrets_path=secrets_path)
