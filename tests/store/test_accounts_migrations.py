"""The accounts migrations run up and down on SQLite and PostgreSQL, end at the schema the code
queries, keep to their own version table, and share a database with a workspace's."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from modelyard.server.accounts import AccountStore
from modelyard.store import migrate
from modelyard.store.accounts_tables import metadata
from modelyard.store.database import Database

VERSION_TABLE = "accounts_alembic_version"


def test_head_revision_constant_matches_the_migrations() -> None:
    config = Config()
    config.set_main_option("script_location", str(migrate.ACCOUNTS_MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == migrate.ACCOUNTS.head


def test_upgrade_gives_the_schema_the_code_uses(database_url: str) -> None:
    db = Database(database_url)
    migrate.ACCOUNTS.upgrade(db)
    assert db.schema_revision(VERSION_TABLE) == migrate.ACCOUNTS_HEAD_REVISION
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []
    names = sa.inspect(db.engine).get_table_names()
    assert all(name.startswith("accounts_") for name in names), names


def test_down_to_base_and_up_again_keeps_nothing_behind(database_url: str) -> None:
    store = AccountStore(database_url)
    store.create_user("alice")
    migrate.ACCOUNTS.downgrade(store.db, "base")
    assert sa.inspect(store.db.engine).get_table_names() == [VERSION_TABLE]
    migrate.ACCOUNTS.upgrade(store.db)
    assert AccountStore(database_url).list_users() == []


def test_accounts_and_a_workspace_share_one_database(database_url: str) -> None:
    db = Database(database_url)
    migrate.upgrade(db)
    store = AccountStore(database_url)
    store.create_user("alice")

    assert db.schema_revision() == migrate.HEAD_REVISION
    assert db.schema_revision(VERSION_TABLE) == migrate.ACCOUNTS_HEAD_REVISION
    # Taking either set down leaves the other as it was.
    migrate.downgrade(db, "base")
    assert [user.name for user in AccountStore(database_url).list_users()] == ["alice"]
    migrate.upgrade(db)
    migrate.ACCOUNTS.downgrade(db, "base")
    assert "runs" in sa.inspect(db.engine).get_table_names()
    assert db.schema_revision() == migrate.HEAD_REVISION
