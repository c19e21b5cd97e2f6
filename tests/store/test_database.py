from __future__ import annotations

import contextlib
from pathlib import Path

import sqlalchemy as sa

from modelyard.store.database import SQLITE_BUSY_TIMEOUT_MS, Database


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS


def test_write_commits_and_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'w.db'}")
    db.write(lambda conn: conn.exec_driver_sql("CREATE TABLE t (x INTEGER)"))
    db.write(lambda conn: conn.exec_driver_sql("INSERT INTO t VALUES (1)"))

    def half(conn: sa.Connection) -> None:
        conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        raise RuntimeError("boom")

    with contextlib.suppress(RuntimeError):
        db.write(half)
    with db.read() as conn:
        assert conn.exec_driver_sql("SELECT x FROM t").scalars().all() == [1]
