"""The datastore registry (the data itself is read and written by the client).

A datastore's name, URL and creation time are rows of the ``datastores`` table; its
``storage_options``, which hold credentials, are kept apart in the workspace folder's
``secrets.json`` (``store/secrets.py``), never in the database.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from modelyard.backend.base import check_limit
from modelyard.backend.local.base import (
    DEFAULT_DATASTORE_SETTING,
    LocalBase,
    _now,
)
from modelyard.backend.records import (
    DatastoreRecord,
)
from modelyard.errors import ConfigError, ConflictError, NotFoundError
from modelyard.names import check_name
from modelyard.store import tables as t
from modelyard.store.files import local_url
from modelyard.store.secrets import SECRETS_FILE, SecretsFile


class DatastoreStore(LocalBase):
    """The datastore registry (the data itself is read and written by the client)."""

    def _default_datastore_name(self, conn: Connection) -> str | None:
        return conn.execute(
            sa.select(t.settings.c.value).where(t.settings.c.key == DEFAULT_DATASTORE_SETTING)
        ).scalar()

    @property
    def secrets(self) -> SecretsFile | None:
        """Where the datastores' credentials are kept: None for a backend without a
        workspace folder, which then holds datastores without storage options only."""
        if self.base_dir is None:
            return None
        return SecretsFile(self.base_dir / SECRETS_FILE)

    def _datastore_record(
        self, row: sa.Row[Any], default: str | None, options: dict[str, Any]
    ) -> DatastoreRecord:
        url = row.url
        if "://" not in url and self.base_dir is not None:
            url = local_url(self.base_dir / url)
        return DatastoreRecord(row.name, url, options, row.created_at, row.name == default)

    def register_datastore(
        self, name: str, url: str, storage_options: dict[str, Any], *, overwrite: bool = False
    ) -> DatastoreRecord:
        check_name("datastore_name", name)
        secrets = self.secrets
        if secrets is None and storage_options:
            raise ConfigError(
                f"datastore {name!r}: this workspace has no folder to keep storage options "
                "(credentials) in, and they never go into its database; open the workspace "
                "from its folder (Workspace.get or Workspace.from_config)"
            )
        # As the file will give them back (tuples become lists), to compare with it.
        options: dict[str, Any] = json.loads(json.dumps(storage_options))

        def register(conn: Connection) -> None:
            row = conn.execute(
                sa.select(t.datastores).where(t.datastores.c.name == name)
            ).one_or_none()
            if row is not None:
                kept = secrets.get(name) if secrets is not None else {}
                if row.url == url and kept == options:
                    return
                if not overwrite:
                    raise ConflictError(
                        f"datastore {name!r} exists already with URL {row.url!r}; pass "
                        "overwrite=True to point it elsewhere"
                    )
                conn.execute(t.datastores.delete().where(t.datastores.c.name == name))
            # Written while the database's write lock is held, so registrations of one name
            # happen one after the other; a retry of this function writes the same again.
            if secrets is not None:
                secrets.put(name, options)
            conn.execute(t.datastores.insert().values(name=name, url=url, created_at=_now()))
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
        secrets = self.secrets
        options = secrets.get(row.name) if secrets is not None else {}
        return self._datastore_record(row, default, options)

    def list_datastores(
        self, *, limit: int | None = None, after: str | None = None
    ) -> list[DatastoreRecord]:
        query = sa.select(t.datastores).order_by(t.datastores.c.name).limit(check_limit(limit))
        if after is not None:
            query = query.where(t.datastores.c.name > after)
        with self.db.read() as conn:
            default = self._default_datastore_name(conn)
            rows = conn.execute(query).all()
        secrets = self.secrets
        every = secrets.all() if secrets is not None else {}
        return [self._datastore_record(row, default, every.get(row.name, {})) for row in rows]

    def set_default_datastore(self, name: str) -> None:
        self.get_datastore(name)

        def update(conn: Connection) -> None:
            conn.execute(t.settings.delete().where(t.settings.c.key == DEFAULT_DATASTORE_SETTING))
            conn.execute(t.settings.insert().values(key=DEFAULT_DATASTORE_SETTING, value=name))

        self.db.write(update)
