"""The metadata database: engines, transactions and the one place SQLite and PostgreSQL differ.

Everything that talks SQL goes through :class:`Database`: ``read()`` for a consistent snapshot,
``write()`` for a transaction that is retried when another process holds the write lock. On
SQLite the connection runs in WAL mode with foreign keys on and a busy timeout, and write
transactions start with ``BEGIN IMMEDIATE`` so two writers queue on the lock instead of one of
them failing late with "database is locked" when it upgrades a read lock.

Example::

    db = Database("sqlite:///ws/modelyard.db")
    with db.write() as conn:
        conn.execute(tables.experiments.insert().values(name="mnist", created_at=now()))
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Float,
    cast,
    create_engine,
    event,
    extract,
    func,
    make_url,
    text,
)
from sqlalchemy.exc import (
    DatabaseError,
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
)
from sqlalchemy.sql.elements import ColumnElement

from modelyard.errors import StorageError, ValidationError
from modelyard.store.private import create_private_file

T = TypeVar("T")

# SQLite waits this long for a lock before it reports "busy"; our retry loop below then keeps
# trying until WRITE_DEADLINE_S, so a user only sees an error when the database is stuck:
# seconds, not minutes (a write transaction here lasts milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 10_000
WRITE_DEADLINE_S = 30.0
# The key of PostgreSQL's advisory lock that schema migrations of a database hold (any 64-bit
# number no other program on the database uses; these are the bytes of "modelyrd").
MIGRATION_LOCK_KEY = 0x6D6F64656C797264

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _forget_pooled_connections_in_child() -> None:
    # A forked child must not use the parent's pooled connections (two processes on one
    # SQLite handle corrupt its locks); it opens its own. SQLAlchemy's recipe:
    # https://docs.sqlalchemy.org/en/20/core/pooling.html#using-connection-pools-with-multiprocessing-or-os-fork
    for engine in _engines.values():
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_pooled_connections_in_child)


def _identity(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def _configure_sqlite(engine: Engine) -> None:
    path = sqlite_file(engine.url.render_as_string(hide_password=False))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see write()).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # NORMAL is durable across application crashes in WAL mode; only a power loss can drop
        # the last transactions (https://www.sqlite.org/pragma.html#pragma_synchronous).
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

        if path is not None:
            with contextlib.suppress(OSError):
                _record.info["file"] = _identity(path)

    # A workspace folder deleted and created again at the same path has a new database
    # file, but pooled connections still hold the deleted one: what they wrote would be lost.
    # A connection whose file is not the one at the path now is replaced (SQLAlchemy's
    # pessimistic-disconnect recipe: raising DisconnectionError at checkout makes the pool
    # connect again).
    @event.listens_for(engine, "checkout")
    def _on_checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        opened = record.info.get("file")
        if path is None or opened is None:
            return
        try:
            now = _identity(path)
        except OSError:
            return  # gone: the next statement's error says so; no new empty file is made
        if now != opened:
            raise DisconnectionError(f"{path} was replaced since this connection opened it")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.info.get("begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


# PostgreSQL's SQLSTATEs for a transaction that lost a race: serialization_failure,
# deadlock_detected (https://www.postgresql.org/docs/current/errcodes-appendix.html).
_RETRYABLE_SQLSTATES = {"40001", "40P01"}

# What SQLite reports for a file that is not a database, or one cut short or overwritten
# (https://www.sqlite.org/rescode.html#corrupt); it finds both on the first read of a
# connection, which every open of a workspace makes.
_SQLITE_DAMAGED = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
_RESTORE_ADVICE = (
    "restore it from a backup (or move it aside and create a new workspace); modelyard will "
    "not write to it"
)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, or None for another database or an in-memory one."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    name = parsed.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def _bad_value(error: DataError) -> ValidationError:
    """A value the database cannot hold (PostgreSQL: a number beyond its column's range, text
    with a NUL character), which the caller gave: bad input, not a failing store."""
    return ValidationError(
        "value", f"the workspace's database cannot hold a value given ({error.orig}); change it"
    )


def _is_retryable(error: DBAPIError) -> bool:
    if getattr(error.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
        return True
    message = str(error.orig).lower() if error.orig is not None else str(error).lower()
    return "database is locked" in message or "database is busy" in message


class Database:
    """One metadata database, shared by every SDK object of a workspace in this process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.path = sqlite_file(url)
        if self.path is not None:
            # SQLite would create the file with the umask's mode, and give its -wal and -shm
            # files the same; created 0600 here first, all three stay private to the owner.
            try:
                create_private_file(self.path)
            except OSError as error:
                raise StorageError(
                    f"cannot create the metadata database {self.path}: {error.strerror}"
                ) from error
        self.engine = self._engine_for(url)

    def clock(self) -> ColumnElement[float]:
        """The database's clock as a SQL expression, in Unix seconds: for times that workers
        on several machines compare (leases), so that their clocks' skew does not matter.

        Example::

            conn.execute(sa.select(db.clock())).scalar_one()    # 1767225600.123
        """
        if self.is_sqlite:
            # julianday('now') is stable within a statement, to the millisecond; 2440587.5 is
            # the Julian day of 1970-01-01 (https://www.sqlite.org/lang_datefunc.html).
            return (func.julianday("now") - 2440587.5) * 86400.0
        # The start of the current statement: stable within it, unlike clock_timestamp(), and
        # fresh for each statement of a transaction, unlike now().
        return cast(extract("epoch", func.statement_timestamp()), Float)

    def raise_if_damaged(self, error: DBAPIError) -> None:
        """Raise a StorageError naming the file when ``error`` says the database file is
        damaged (SQLite: not a database, or a malformed image); otherwise return."""
        if getattr(error.orig, "sqlite_errorname", None) in _SQLITE_DAMAGED:
            raise StorageError(
                f"the metadata database {self.path or self.url} is damaged ({error.orig}); "
                + _RESTORE_ADVICE
            ) from error

    @staticmethod
    def _engine_for(url: str) -> Engine:
        with _engines_lock:
            engine = _engines.get(url)
            if engine is None:
                if url.startswith("sqlite"):
                    engine = create_engine(url)
                    _configure_sqlite(engine)
                else:
                    # SERIALIZABLE: PostgreSQL then aborts one of two transactions that race
                    # (read a count, write count + n) instead of letting both commit, and
                    # write() retries the loser; SQLite gets the same from BEGIN IMMEDIATE.
                    engine = create_engine(url, pool_pre_ping=True, isolation_level="SERIALIZABLE")
                _engines[url] = engine
            return engine

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection whose reads see one consistent snapshot."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except DataError as error:
            raise _bad_value(error) from error
        except DatabaseError as error:
            # Vendor errors stop here (a damaged file, a lost connection, a read that lost a
            # race on PostgreSQL): the caller gets a StorageError saying what failed.
            self.raise_if_damaged(error)
            raise StorageError(f"reading the metadata database failed: {error.orig}") from error

    @contextmanager
    def _write_once(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.info["begin"] = "IMMEDIATE"
            try:
                with conn.begin():
                    yield conn
            finally:
                # The pooled connection keeps its info: later reads must not begin IMMEDIATE,
                # or each would wait for (and hold up) every other process's writes.
                conn.info.pop("begin", None)

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction, retrying it while the database is busy.

        ``work`` may run more than once, so it must only touch the database. Integrity errors
        (a unique key taken by another process) are not retried here: callers that race for a
        key catch them and decide.
        """
        deadline = time.monotonic() + WRITE_DEADLINE_S
        delay = 0.005
        while True:
            try:
                with self._write_once() as conn:
                    return work(conn)
            except IntegrityError:
                raise  # a key taken by another process: the caller decides (see above)
            except DataError as error:
                raise _bad_value(error) from error
            except DBAPIError as error:
                self.raise_if_damaged(error)
                # Busy is an OperationalError on SQLite; a lost race on PostgreSQL comes as
                # another subclass: the SQLSTATE decides (_is_retryable).
                if not _is_retryable(error) or time.monotonic() > deadline:
                    raise StorageError(
                        f"writing to the metadata database failed: {error.orig}"
                    ) from error
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.5)

    @contextmanager
    def migrating(self) -> Iterator[Connection]:
        """A transaction for changing the schema, holding the database's migration lock: of
        several processes that open a new database at once, one migrates it while the others
        wait, and they then find it at the revision it reached.

        SQLite: the write lock, taken as the transaction begins (``BEGIN IMMEDIATE``).
        PostgreSQL: a transaction-scoped advisory lock, taken by the first statement, in READ
        COMMITTED: each later statement then sees what the process before it committed, where
        the engine's SERIALIZABLE would keep the snapshot of that first statement, from before
        the wait, and the waiter would create the tables a second time.

        Example::

            with db.migrating() as conn:
                alembic_command.upgrade(config_on(conn), "head")
        """
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.info["begin"] = "IMMEDIATE"
            else:
                conn.execution_options(isolation_level="READ COMMITTED")
            try:
                with conn.begin():
                    if not self.is_sqlite:
                        conn.execute(
                            text("SELECT pg_advisory_xact_lock(:key)"),
                            {"key": MIGRATION_LOCK_KEY},
                        )
                    yield conn
            finally:
                # The pooled connection keeps its info: later reads must not begin IMMEDIATE.
                conn.info.pop("begin", None)
            if self.is_sqlite:
                # What a migration replaced (credentials, say) must not stay behind in old
                # frames of the write-ahead log: copy it into the database and empty the log.
                # On the driver's own connection, since SQLite refuses to checkpoint in a
                # transaction; best effort, as busy readers of other processes only put it off.
                driver = conn.connection.driver_connection
                with contextlib.suppress(sqlite3.Error):
                    if driver is not None:
                        driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def schema_revision(self, version_table: str = "alembic_version") -> str | None:
        """The Alembic revision the database is at, or None for an empty database.
        ``version_table`` names the table of the migrations asked about (a database may hold
        several sets, each with its own)."""
        with self.read() as conn:
            has_table = conn.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name=:table"
                    if self.is_sqlite
                    else "SELECT to_regclass(:table)::text"
                ),
                {"table": version_table},
            ).scalar()
            if not has_table:
                return None
            # The name is one of ours, never a user's: it cannot be a bound parameter here.
            return conn.execute(text(f"SELECT version_num FROM {version_table}")).scalar()
