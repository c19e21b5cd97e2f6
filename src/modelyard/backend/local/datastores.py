"""The datastore registry, and the datastores' files, read and written here.

A datastore's name, URL and creation time are rows of the ``datastores`` table; its
``storage_options``, which hold credentials, are kept apart in the workspace folder's
``secrets.json`` (``store/secrets.py``), never in the database, and never leave the backend:
the records it returns carry the options' names with ``"***"`` for every value
(``secrets.redact``), and the files travel through the contract's datastore-file calls,
which open the store here with the options.

Registration checks the URL and the options first (``datastore_urls.py``: no http(s), no
link-local or metadata endpoint, and on a backend with ``allowed_local_roots`` only a few
schemes and folders inside those roots), then opens the store once, so that a datastore that
cannot be opened is refused before anything is written.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy import Connection

from modelyard.backend.base import FileSource, check_limit
from modelyard.backend.local.base import (
    DEFAULT_DATASTORE_SETTING,
    LocalBase,
    _file_page,
    _now,
)
from modelyard.backend.local.datastore_urls import check_datastore_location
from modelyard.backend.records import DatastoreRecord, FileInfo
from modelyard.errors import ConfigError, ConflictError, NotFoundError, ValidationError
from modelyard.names import check_name, clean_relpath
from modelyard.store import local_tree, transfer
from modelyard.store import tables as t
from modelyard.store.files import FileStore, local_url
from modelyard.store.secrets import SECRETS_FILE, SecretsFile, open_datastore, redact

# Copying a stream into a file: bytes per read, enough that the call costs nothing beside it.
_STREAM_CHUNK = 8 << 20
# Datastore stores kept open (see local_datastore_store): more than a workspace uses at once.
_MAX_OPENED_STORES = 64


class DatastoreStore(LocalBase):
    """The datastore registry and the datastores' files (see the module docstring).

    ``allowed_local_roots``: None for an embedded workspace (any folder, any fsspec
    filesystem); a server's backend gives the folders its datastores may be in (``[]``: none
    but those of the workspace folder) and then accepts only the schemes of
    ``datastore_urls.SERVER_SCHEMES``.
    """

    allowed_local_roots: Sequence[str] | None = None

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

    def _full_url(self, url: str) -> str:
        """A stored URL as the store opens it: a folder relative to the workspace made whole."""
        if "://" not in url and self.base_dir is not None:
            return local_url(self.base_dir / url)
        return url

    def _datastore_record(
        self, row: sa.Row[Any], default: str | None, options: dict[str, Any]
    ) -> DatastoreRecord:
        # The options' names only: the values (credentials) stay here.
        return DatastoreRecord(
            row.name, self._full_url(row.url), redact(options), row.created_at, row.name == default
        )

    def register_datastore(
        self, name: str, url: str, storage_options: dict[str, Any], *, overwrite: bool = False
    ) -> DatastoreRecord:
        check_name("datastore_name", name)
        if not isinstance(url, str) or not url or "\x00" in url:
            raise ValidationError("url", f"{url!r} is not a URL or a folder path")
        if not isinstance(storage_options, dict):
            raise ValidationError("storage_options", "give the storage options as a dict")
        try:
            # As the file will give them back (tuples become lists), to compare with it.
            options: dict[str, Any] = json.loads(json.dumps(storage_options))
        except (TypeError, ValueError) as error:
            raise ValidationError(
                "storage_options", f"values must be JSON strings, numbers, lists or dicts: {error}"
            ) from None
        check_datastore_location(url, options, self.allowed_local_roots)
        secrets = self.secrets
        if secrets is None and storage_options:
            raise ConfigError(
                f"datastore {name!r}: this workspace has no folder to keep storage options "
                "(credentials) in, and they never go into its database; open the workspace "
                "from its folder (Workspace.get or Workspace.from_config)"
            )
        if "://" in url or self.base_dir is not None:
            open_datastore(self._full_url(url), options)  # fails here, not at the first upload

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

    # -- the datastores' files -------------------------------------------------------------

    def local_datastore_store(self, name: str) -> FileStore:
        check_name("name", name)
        with self.db.read() as conn:
            url = conn.execute(
                sa.select(t.datastores.c.url).where(t.datastores.c.name == name)
            ).scalar()
        if url is None:
            raise NotFoundError(
                f"datastore {name!r} does not exist in workspace {self.workspace_name!r}; "
                "register it with Datastore.register"
            )
        secrets = self.secrets
        options = secrets.get(name) if secrets is not None else {}
        # Opening costs 0.4 ms of the 1.2 ms that a small file's upload call takes (fsspec's
        # url_to_fs, measured here), so stores are kept, by URL and options: a datastore
        # registered again elsewhere gets a new key, and is never written with old ones.
        key = (self._full_url(url), json.dumps(options, sort_keys=True))
        opened: dict[tuple[str, str], FileStore] = self.__dict__.setdefault("_opened_stores", {})
        store = opened.get(key)
        if store is None:
            # Its errors never quote the options: they may become a run's error, seen by all.
            store = open_datastore(key[0], options)
            if len(opened) >= _MAX_OPENED_STORES:
                opened.clear()
            opened[key] = store
        return store

    def list_datastore_files(
        self, name: str, prefix: str = "", *, limit: int | None = None, after: str | None = None
    ) -> list[FileInfo]:
        check_limit(limit)
        clean = clean_relpath("prefix", prefix, allow_root=True)
        return _file_page(self.local_datastore_store(name).list(clean), limit, after)

    def upload_datastore_file(
        self, name: str, relpath: str, source: FileSource, *, overwrite: bool = False
    ) -> bool:
        clean = clean_relpath("relpath", relpath)
        store = self.local_datastore_store(name)
        if store.is_local:
            if isinstance(source, Path):
                with _open_source(source) as stream:
                    return _write_local(store, clean, stream, overwrite)
            return _write_local(store, clean, source, overwrite)
        # One look at this name: transfer.upload without overwrite would list the whole
        # datastore for each file.
        if not overwrite and store.exists(clean):
            return False
        if isinstance(source, Path):
            # In parts on S3 when large.
            transfer.upload(
                [(source, clean)], store, "", overwrite=True, show_progress=False, field="relpath"
            )
            return True
        with store.open_write(clean, "relpath") as out:
            shutil.copyfileobj(source, out, _STREAM_CHUNK)
        return True

    def open_datastore_file(self, name: str, relpath: str) -> IO[bytes]:
        clean = clean_relpath("relpath", relpath)
        return self.local_datastore_store(name).open_read(clean, "relpath")


def _open_source(path: Path) -> IO[bytes]:
    try:
        return open(path, "rb")
    except OSError as error:
        raise ValidationError("source", f"cannot read {path}: {error.strerror}") from None


def _write_local(store: FileStore, relpath: str, source: IO[bytes], overwrite: bool) -> bool:
    """Write ``source`` to ``relpath`` of a folder store, reaching no folder through a link,
    and put it in place only if nothing stands there unless ``overwrite``."""
    parent, _, base = relpath.rpartition("/")
    root_fd = local_tree.open_root(store.root, create=True)
    try:
        folder_fd = local_tree.open_folder(
            root_fd, parent, create=True, field="relpath", where=store.url
        )
    finally:
        os.close(root_fd)
    assert folder_fd is not None  # create=True makes it
    try:
        info = local_tree.lstat(folder_fd, base)
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise ValidationError("relpath", f"{relpath!r} is a folder in {store.url}")
        if info is not None and not overwrite:
            return False
        temp, fd = local_tree.create_temp(folder_fd)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(_STREAM_CHUNK):
                    out.write(chunk)
            return local_tree.place(folder_fd, temp, base, overwrite)
        except BaseException:
            local_tree.remove(folder_fd, temp)
            raise
    finally:
        os.close(folder_fd)
