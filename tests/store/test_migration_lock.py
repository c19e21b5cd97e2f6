"""Several processes opening one new database at once, as several server processes (or
`--workers N`) do at start: every one of them succeeds, and the schema is at its head. SQLite
holds its write lock while migrating; PostgreSQL an advisory lock (Database.migrating)."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from modelyard.store import migrate
from modelyard.store.database import Database
from tests.helpers import start_together

PROCESSES = 6

WORKSPACE_SCRIPT = """
import sys
from modelyard.store import migrate
from modelyard.store.database import Database
sys.stdin.readline()                    # start together
migrate.upgrade(Database(sys.argv[1]))
print("ok")
"""

ACCOUNTS_SCRIPT = """
import sys
from modelyard.server.accounts import AccountStore
sys.stdin.readline()
store = AccountStore(sys.argv[1])
print(len(store.list_users()))
"""


@pytest.mark.slow
def test_processes_migrating_a_new_workspace_database_at_once_all_succeed(
    database_url: str,
) -> None:
    outputs = start_together([[WORKSPACE_SCRIPT, database_url]] * PROCESSES)

    assert outputs == ["ok"] * PROCESSES
    db = Database(database_url)
    assert db.schema_revision() == migrate.HEAD_REVISION
    with db.engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    assert versions == [(migrate.HEAD_REVISION,)]


@pytest.mark.slow
def test_processes_opening_a_new_accounts_database_at_once_all_succeed(
    database_url: str,
) -> None:
    outputs = start_together([[ACCOUNTS_SCRIPT, database_url]] * PROCESSES)

    assert outputs == ["0"] * PROCESSES
    db = Database(database_url)
    assert db.schema_revision("accounts_alembic_version") == migrate.ACCOUNTS_HEAD_REVISION


def test_a_migration_leaves_no_write_lock_behind_for_later_reads(tmp_path: object) -> None:
    # A read on the pooled connection a migration used must not begin as a writer, or every
    # read of the process would queue behind other processes' writes.
    db = Database(f"sqlite:///{tmp_path}/m.db")
    migrate.upgrade(db)
    with db.engine.connect() as conn:
        assert conn.info.get("begin", "DEFERRED") == "DEFERRED"


def test_a_read_after_a_write_does_not_wait_for_another_process_s_write(
    tmp_path: object,
) -> None:
    # WAL lets readers go on while another connection writes; a read that began IMMEDIATE, as
    # the pooled connection of an earlier write would make it, waits for the lock and fails.
    db = Database(f"sqlite:///{tmp_path}/r.db")
    db.write(lambda conn: conn.execute(sa.text("CREATE TABLE t (x INTEGER)")))
    db.write(lambda conn: conn.execute(sa.text("INSERT INTO t VALUES (1)")))
    other = sqlite3.connect(f"{tmp_path}/r.db", isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t VALUES (2)")
        with db.read() as conn:
            assert conn.execute(sa.text("SELECT x FROM t")).scalars().all() == [1]
    finally:
        other.execute("ROLLBACK")
        other.close()
