"""The model registry: versions, their tags and properties, and their files.

A version's files are staged under ``models/<name>/<upload id>`` and its row written last;
the staging of an upload whose process died first is deleted by the next upload or the next
open of the workspace (see :mod:`modelyard.backend.local.staging`).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy import Connection

from modelyard.backend.base import FileSource, check_limit, split_page_key
from modelyard.backend.local.base import (
    LocalBase,
    _file_page,
    _filter_key_values,
    _now,
    select_version,
    version_phrase,
)
from modelyard.backend.local.staging import StagingLocks
from modelyard.backend.records import (
    FileInfo,
    ModelRecord,
)
from modelyard.errors import NotFoundError, StorageError, ValidationError
from modelyard.names import check_name, check_tags, clean_relpath
from modelyard.store import tables as t

# How many of a run's files a message names when a model path is not among them.
_FILES_NAMED = 5


class ModelStore(LocalBase):
    """The model registry: versions, their tags and properties, and their files."""

    @staticmethod
    def _staging_path(model_name: str, upload_id: str) -> str:
        check_name("model_name", model_name)
        check_name("upload_id", upload_id)
        return f"models/{model_name}/{upload_id}"

    def _staging_locks(self) -> StagingLocks | None:
        if not self.files.is_local:
            return None
        return StagingLocks(Path(self.files.root) / "models" / ".staging")

    def _begin_upload(self, model_name: str, upload_id: str) -> str:
        """The staging folder of the upload, marked alive for as long as this process lives
        (the first call of an upload also sweeps abandoned ones)."""
        staging = self._staging_path(model_name, upload_id)
        locks = self._staging_locks()
        if locks is not None and not locks.holds(upload_id):
            self.delete_abandoned_uploads()
            locks.hold(upload_id, staging)
        return staging

    def delete_abandoned_uploads(self) -> None:
        """Delete the staged files of model uploads whose process died before their version
        was written. Uploads still running (in this process or another) are left alone; a
        staging folder that cannot be deleted now is tried again next time."""
        locks = self._staging_locks()
        if locks is None:
            return
        for staging, forget in locks.abandoned():
            _, _, rest = staging.partition("models/")
            model_name, _, upload_id = rest.partition("/")
            try:
                valid = self._staging_path(model_name, upload_id) == staging
            except ValidationError:
                valid = False  # not a lock file of ours: drop it, delete nothing
            try:
                if valid and not self._is_registered(staging):
                    self.files.delete(staging)
            except StorageError:
                continue
            forget()

    def _is_registered(self, staging: str) -> bool:
        query = sa.select(t.models.c.id).where(t.models.c.storage_path == staging)
        with self.db.read() as conn:
            return conn.execute(query).first() is not None

    def upload_model_file(
        self, model_name: str, upload_id: str, relpath: str, source: FileSource
    ) -> None:
        relpath = clean_relpath("model_path", relpath)
        staging = self._begin_upload(model_name, upload_id)
        self._put(f"{staging}/{relpath}", source, "model_path")

    def stage_model_from_run(
        self, model_name: str, upload_id: str, run_id: str, run_path: str
    ) -> str:
        run_path = clean_relpath("model_path", run_path)
        staging = self._begin_upload(model_name, upload_id)
        files = self.list_run_files(run_id, run_path)
        exact = [info for info in files if info.path == run_path]
        inside = [info for info in files if info.path.startswith(run_path + "/")]
        if not exact and not inside:
            # Its files, rather than the call that lists them: the SDK and the command line
            # each have their own, and this message reaches both.
            names = [info.path for info in self.list_run_files(run_id, limit=_FILES_NAMED + 1)]
            has = ", ".join(names[:_FILES_NAMED]) + (" ..." if len(names) > _FILES_NAMED else "")
            raise NotFoundError(
                f"run {run_id!r} has no file or folder {run_path!r}; "
                + (f"its files: {has}" if names else "it has no files")
            )
        root_name = run_path.rsplit("/", 1)[-1]
        if exact:
            self.files.copy(f"runs/{run_id}/{run_path}", f"{staging}/{root_name}")
        for info in inside:
            rest = info.path[len(run_path) + 1 :]
            self.files.copy(f"runs/{run_id}/{info.path}", f"{staging}/{root_name}/{rest}")
        return root_name

    def _model_record(self, conn: Connection, row: sa.Row[Any]) -> ModelRecord:
        tags = dict(
            conn.execute(
                sa.select(t.model_tags.c.key, t.model_tags.c.value).where(
                    t.model_tags.c.model_id == row.id
                )
            ).all()
        )
        properties = dict(
            conn.execute(
                sa.select(t.model_properties.c.key, t.model_properties.c.value).where(
                    t.model_properties.c.model_id == row.id
                )
            ).all()
        )
        return ModelRecord(
            row.name,
            row.version,
            row.storage_path,
            row.root_name,
            row.run_id,
            row.description,
            row.created_at,
            tags,
            properties,
        )

    def create_model(
        self,
        model_name: str,
        upload_id: str,
        root_name: str,
        *,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
    ) -> ModelRecord:
        staging = self._staging_path(model_name, upload_id)
        root_name = clean_relpath("model_path", root_name)
        tags = check_tags("tags", tags)
        properties = check_tags("properties", properties)

        def create(conn: Connection) -> ModelRecord:
            row = conn.execute(
                sa.select(t.models).where(t.models.c.storage_path == staging)
            ).one_or_none()
            if row is None:
                if run_id is not None:
                    self._check_run(conn, run_id)
                version = self._next_model_version(conn, model_name)
                model_id = conn.execute(
                    t.models.insert().values(
                        name=model_name,
                        version=version,
                        storage_path=staging,
                        root_name=root_name,
                        run_id=run_id,
                        description=description,
                        created_at=_now(),
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
                self._put_key_values(conn, t.model_tags, "model_id", model_id, tags)
                self._put_key_values(conn, t.model_properties, "model_id", model_id, properties)
                row = conn.execute(sa.select(t.models).where(t.models.c.id == model_id)).one()
            return self._model_record(conn, row)

        record: ModelRecord = self._write_racing_for_key(create)
        locks = self._staging_locks()
        if locks is not None:
            locks.release(upload_id)
        return record

    @staticmethod
    def _next_model_version(conn: Connection, model_name: str) -> int:
        # UPDATE first: it takes the row lock (PostgreSQL) before reading the number.
        bumped = conn.execute(
            t.model_names.update()
            .where(t.model_names.c.name == model_name)
            .values(last_version=t.model_names.c.last_version + 1)
        ).rowcount
        if not bumped:
            # A concurrent first registration makes this insert fail on the primary key;
            # _write_racing_for_key then runs the whole transaction again.
            conn.execute(t.model_names.insert().values(name=model_name, last_version=1))
            return 1
        return int(
            conn.execute(
                sa.select(t.model_names.c.last_version).where(t.model_names.c.name == model_name)
            ).scalar_one()
        )

    def _find_model_row(self, conn: Connection, name: str, version: int | None) -> sa.Row[Any]:
        row = conn.execute(select_version(t.models, name, version)).first()
        if row is None:
            raise NotFoundError(
                f"model {name!r} ({version_phrase(version)}) does not exist in workspace "
                f"{self.workspace_name!r}"
            )
        return row

    def get_model(self, name: str, version: int | None = None) -> ModelRecord:
        with self.db.read() as conn:
            return self._model_record(conn, self._find_model_row(conn, name, version))

    def list_models(
        self,
        name: str | None = None,
        *,
        tags: dict[str, str | None] | None = None,
        latest: bool = False,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[ModelRecord]:
        query = (
            sa.select(t.models)
            .order_by(
                t.models.c.created_at.desc(), t.models.c.name.desc(), t.models.c.version.desc()
            )
            .limit(check_limit(limit))
        )
        if name is not None:
            query = query.where(t.models.c.name == name)
        query = _filter_key_values(
            query, t.model_tags, t.model_tags.c.model_id, t.models.c.id, tags
        )
        if latest:
            # In the query, not after it, so that a page holds ``limit`` newest versions.
            other = t.models.alias("other")
            newest = sa.select(sa.func.max(other.c.version)).where(other.c.name == t.models.c.name)
            newest = _filter_key_values(
                newest, t.model_tags, t.model_tags.c.model_id, other.c.id, tags
            )
            query = query.where(t.models.c.version == newest.scalar_subquery())
        if after is not None:
            created_at, after_name, version = split_page_key(after, (float, str, int))
            query = query.where(
                sa.tuple_(t.models.c.created_at, t.models.c.name, t.models.c.version)
                < sa.tuple_(created_at, after_name, version)
            )
        with self.db.read() as conn:
            return [self._model_record(conn, row) for row in conn.execute(query).all()]

    def update_model_tags(
        self, name: str, version: int, *, add: dict[str, str], remove: list[str]
    ) -> ModelRecord:
        add = check_tags("tags", add)

        def update(conn: Connection) -> ModelRecord:
            row = self._find_model_row(conn, name, version)
            if remove:
                conn.execute(
                    t.model_tags.delete().where(
                        t.model_tags.c.model_id == row.id, t.model_tags.c.key.in_(remove)
                    )
                )
            self._put_key_values(conn, t.model_tags, "model_id", row.id, add)
            return self._model_record(conn, row)

        record: ModelRecord = self.db.write(update)
        return record

    def delete_model(self, name: str, version: int) -> None:
        def delete(conn: Connection) -> str | None:
            row = conn.execute(
                sa.select(t.models.c.id, t.models.c.storage_path).where(
                    t.models.c.name == name, t.models.c.version == version
                )
            ).one_or_none()
            if row is None:
                return None  # gone already: a retried delete is not an error
            conn.execute(t.models.delete().where(t.models.c.id == row.id))
            return str(row.storage_path)

        storage_path = self.db.write(delete)
        # Files go after the row: a crash in between leaves unreferenced files, never a
        # version whose files are gone.
        if storage_path is not None:
            self.files.delete(storage_path)

    def list_model_files(
        self, name: str, version: int, *, limit: int | None = None, after: str | None = None
    ) -> list[FileInfo]:
        record = self.get_model(name, version)
        start = len(record.storage_path) + 1
        files = [
            FileInfo(info.path[start:], info.size) for info in self.files.list(record.storage_path)
        ]
        return _file_page(files, limit, after)

    def open_model_file(self, name: str, version: int, relpath: str) -> IO[bytes]:
        record = self.get_model(name, version)
        relpath = clean_relpath("name", relpath)
        return self.files.open_read(f"{record.storage_path}/{relpath}")
