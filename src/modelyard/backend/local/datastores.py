"""The datastore registry (the data itself is read and written by the client)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from modelyard.backend.local.base import (
    DEFAULT_DATASTORE_SETTING,
    LocalBase,
    _now,
)
from modelyard.backend.records import (
    DatastoreRecord,
)
from modelyard.errors import ConflictError, NotFoundError
from modelyard.names import check_name
from modelyard.store import tables as t
from modelyard.store.files import local_url


class DatastoreStore(LocalBase):
    """The datastore registry (the data itself is read and written by the client)."""

    def _default_datastore_name(self, conn: Connection) -> str | None:
        return conn.execute(
            sa.select(t.settings.c.value).where(t.settings.c.key == DEFAULT_DATASTORE_SETTING)
        ).scalar()

    def _datastore_record(self, row: sa.Row[Any], default: str | None) -> DatastoreRecord:
        url = row.url
        if "://" not in url and self.base_dir is not None:
            url = local_url(self.base_dir / url)
        return DatastoreRecord(
            row.name,
            url,
            json.loads(row.storage_options),
            row.created_at,
            row.name == default,
        )

    def register_datastore(
        self, name: str, url: str, storage_options: dict[str, Any], *, overwrite: bool = False
    ) -> DatastoreRecord:
        check_name("datastore_name", name)
        options = json.dumps(storage_options, sort_keys=True)

        def register(conn: Connection) -> None:
            row = conn.execute(
                sa.select(t.datastores).where(t.datastores.c.name == name)
            ).one_or_none()
            if row is not None:
                if row.url == url and row.storage_options == options:
                    return
                if not overwrite:
                    raise ConflictError(
                        f"datastore {name!r} exists already with URL {row.url!r}; pass "
                        "overwrite=True to point it elsewhere"
                    )
                conn.execute(t.datastores.delete().where(t.datastores.c.name == name))
            conn.execute(
                t.datastores.insert().values(
                    name=name, url=url, storage_options=options, created_at=_now()
                )
            )
            if self._default_datastore_name(conn) is None:
                conn.execute(t.settings.insert().values(key=DEFAULT_DATASTORE_SETTING, value=name))

        self.db.write(register)
        return self.get_datastore(name)

    def get_datastore(self, name: str | None = None) -> DatastoreRecord:
        with self.db.read() as conn:
            default = self._default_datastore_name(conn)
            wanted = name if name is not None else default
            row = conn.execute(
                sa.select(t.datastores).where(t.datastores.c.name == wanted)
            ).one_or_none()
        if row is None:
            raise NotFoundError(
                f"datastore {wanted!r} does not exist in workspace {self.workspace_name!r}; "
                "register it with Datastore.register"
            )
        return self._datastore_record(row, default)

    def list_datastores(self) -> list[DatastoreRecord]:
        with self.db.read() as conn:
            default = self._default_datastore_name(conn)
            rows = conn.execute(sa.select(t.datastores).order_by(t.datastores.c.name)).all()
        return [self._datastore_record(row, default) for row in rows]

    def set_default_datastore(self, name: str) -> None:
        self.get_datastore(name)

        def update(conn: Connection) -> None:
            conn.execute(t.settings.delete().where(t.settings.c.key == DEFAULT_DATASTORE_SETTING))
            conn.execute(t.settings.insert().values(key=DEFAULT_DATASTORE_SETTING, value=name))

        self.db.write(update)
