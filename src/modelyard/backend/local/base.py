"""What the parts of the local backend share: the database, the file store and a few
helpers for writes that race for a key and for key/value tables.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from modelyard.backend.base import Backend, FileSource, check_limit
from modelyard.backend.records import FileInfo
from modelyard.errors import NotFoundError
from modelyard.store import tables as t
from modelyard.store.database import Database
from modelyard.store.files import FileStore

DEFAULT_DATASTORE_SETTING = "default_datastore"


def _now() -> float:
    return time.time()


def select_version(table: sa.Table, name: str, version: int | None) -> sa.Select[Any]:
    """The row of ``name`` at ``version``, or at its latest version when ``version`` is None:
    models, environments and datasets are each a name with numbered versions.

    Example::

        conn.execute(select_version(t.models, "tf-dnn-mnist", None)).first()   # the newest
    """
    query = sa.select(table).where(table.c.name == name)
    if version is None:
        return query.order_by(table.c.version.desc()).limit(1)
    return query.where(table.c.version == version)


def version_phrase(version: int | None) -> str:
    """How a not-found message names the version asked for: "version 3", or "any version"."""
    return "any version" if version is None else f"version {version}"


def _filter_key_values(
    query: Any,
    table: sa.Table,
    owner_column: sa.Column[Any],
    owner_key: sa.Column[Any],
    wanted: dict[str, str | None] | None,
) -> Any:
    """Keep rows whose owner has every key in ``wanted`` (with that value unless None)."""
    for key, value in (wanted or {}).items():
        condition = sa.and_(owner_column == owner_key, table.c.key == key)
        if value is not None:
            condition = sa.and_(condition, table.c.value == value)
        query = query.where(sa.exists().where(condition))
    return query


def _file_page(files: list[FileInfo], limit: int | None, after: str | None) -> list[FileInfo]:
    """One page of a file listing (the file store lists a folder whole; the page is cut
    here, by path, the listing's order)."""
    check_limit(limit)
    files = sorted(files, key=lambda info: info.path)
    if after is not None:
        files = [info for info in files if info.path > after]
    return files if limit is None else files[:limit]


class LocalBase(Backend):
    """The state every part of :class:`~modelyard.backend.local.LocalBackend` uses."""

    workspace_name: str
    base_dir: Path | None
    db: Database
    files: FileStore

    def _write_racing_for_key(self, work: Any) -> Any:
        """Run a write that takes the next free number: on PostgreSQL two transactions may
        pick the same one, and the unique constraint turns the loser into an IntegrityError;
        it then simply tries again (SQLite's write lock makes this never happen there)."""
        for _attempt in range(20):
            try:
                return self.db.write(work)
            except IntegrityError:
                continue
        return self.db.write(work)

    @staticmethod
    def _put_key_values(
        conn: Connection, table: sa.Table, owner: str, owner_id: Any, values: dict[str, str]
    ) -> None:
        if values:
            conn.execute(
                table.delete().where(table.c[owner] == owner_id, table.c.key.in_(list(values)))
            )
        if values:
            conn.execute(
                table.insert(),
                [{owner: owner_id, "key": key, "value": value} for key, value in values.items()],
            )

    def _check_run(self, conn: Connection, run_id: str) -> str:
        status = conn.execute(sa.select(t.runs.c.status).where(t.runs.c.id == run_id)).scalar()
        if status is None:
            raise NotFoundError(
                f"run {run_id!r} does not exist in workspace {self.workspace_name!r}"
            )
        return str(status)

    def _put(self, relpath: str, source: FileSource, field: str = "name") -> None:
        """Store ``source`` as ``relpath``; ``field`` is the argument that named the file,
        for the ValidationError of a name the file system refuses."""
        if isinstance(source, Path):
            self.files.put_file(source, relpath, field)
        else:
            with self.files.open_write(relpath, field) as dst:
                shutil.copyfileobj(source, dst, 8 << 20)
