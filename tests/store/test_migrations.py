"""Migrations run up and down, end at the schema the code queries, and HEAD_REVISION is true."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from modelyard.store import migrate
from modelyard.store.database import Database
from modelyard.store.tables import metadata


def _db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'm.db'}")


def test_head_revision_constant_matches_the_migrations() -> None:
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == migrate.HEAD_REVISION


def test_upgrade_gives_the_schema_the_code_uses(tmp_path: Path) -> None:
    db = _db(tmp_path)
    migrate.upgrade(db)
    assert db.schema_revision() == migrate.HEAD_REVISION
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_down_to_base_and_up_again(tmp_path: Path) -> None:
    db = _db(tmp_path)
    migrate.upgrade(db)
    migrate.downgrade(db, "base")
    assert sa.inspect(db.engine).get_table_names() == ["alembic_version"]
    migrate.upgrade(db)
    assert "runs" in sa.inspect(db.engine).get_table_names()


def test_upgrade_twice_is_a_no_op(tmp_path: Path) -> None:
    db = _db(tmp_path)
    migrate.upgrade(db)
    migrate.upgrade(db)
    assert db.schema_revision() == migrate.HEAD_REVISION
