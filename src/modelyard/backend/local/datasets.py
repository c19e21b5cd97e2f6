"""Registered dataset versions."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from modelyard.backend.base import check_limit, split_page_key
from modelyard.backend.local.base import LocalBase, _now, select_version, version_phrase
from modelyard.backend.records import DatasetRecord
from modelyard.errors import ConflictError, NotFoundError, ValidationError
from modelyard.names import check_name, check_tags
from modelyard.store import tables as t

# A definition names patterns and steps, never the files themselves: 256 KiB of JSON is
# thousands of paths, far past what a notebook writes by hand.
MAX_DEFINITION_BYTES = 256 * 1024
MAX_DESCRIPTION_LENGTH = 5000


def _definition_text(definition: object) -> str:
    if not isinstance(definition, dict):
        raise ValidationError("definition", f"expected a dict, got {type(definition).__name__}")
    try:
        text = json.dumps(definition, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValidationError("definition", f"must be JSON data: {error}") from None
    if len(text.encode()) > MAX_DEFINITION_BYTES:
        raise ValidationError(
            "definition",
            f"is {len(text.encode()):,} bytes as JSON; at most {MAX_DEFINITION_BYTES:,}",
        )
    return text


def _check_description(description: object) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str) or "\x00" in description:
        raise ValidationError("description", "expected a string without NUL characters")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise ValidationError("description", f"may be at most {MAX_DESCRIPTION_LENGTH} characters")
    return description


class DatasetStore(LocalBase):
    """Registered dataset versions."""

    @staticmethod
    def _dataset_record(row: sa.Row[Any]) -> DatasetRecord:
        return DatasetRecord(
            row.id,
            row.name,
            row.version,
            json.loads(row.definition),
            row.content_hash,
            row.description,
            row.created_at,
            json.loads(row.tags),
        )

    def create_dataset(
        self,
        name: str,
        definition: dict[str, Any],
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        create_new_version: bool = False,
    ) -> DatasetRecord:
        check_name("name", name)
        text = _definition_text(definition)
        clean_tags = check_tags("tags", tags)
        clean_description = _check_description(description)
        if not isinstance(create_new_version, bool):
            raise ValidationError("create_new_version", "expected True or False")
        content_hash = hashlib.sha256(text.encode()).hexdigest()
        latest = (
            sa.select(t.datasets)
            .where(t.datasets.c.name == name)
            .order_by(t.datasets.c.version.desc())
            .limit(1)
        )

        def create(conn: Connection) -> DatasetRecord:
            row = conn.execute(latest).one_or_none()
            if row is not None and row.content_hash == content_hash:
                return self._dataset_record(row)
            if row is not None and not create_new_version:
                raise ConflictError(
                    f"dataset {name!r} is registered already (version {row.version}) with "
                    "another definition; pass create_new_version=True to register this one "
                    "as its next version, or choose another name"
                )
            # A concurrent registration may take the same number: the unique constraint
            # turns the loser into an IntegrityError and _write_racing_for_key retries.
            conn.execute(
                t.datasets.insert().values(
                    id=str(uuid.uuid4()),
                    name=name,
                    version=(row.version if row is not None else 0) + 1,
                    content_hash=content_hash,
                    definition=text,
                    description=clean_description,
                    tags=json.dumps(clean_tags, sort_keys=True),
                    created_at=_now(),
                )
            )
            return self._dataset_record(conn.execute(latest).one())

        record: DatasetRecord = self._write_racing_for_key(create)
        return record

    def get_dataset(self, name: str, version: int | None = None) -> DatasetRecord:
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or version < 1
        ):
            raise ValidationError("version", f"{version!r} is not a version: use 1, 2, ...")
        with self.db.read() as conn:
            row = conn.execute(select_version(t.datasets, name, version)).first()
        if row is None:
            raise NotFoundError(
                f"dataset {name!r} ({version_phrase(version)}) is not registered in workspace "
                f"{self.workspace_name!r}; register it with ds.register(ws, {name!r})"
            )
        return self._dataset_record(row)

    def get_dataset_by_id(self, dataset_id: str) -> DatasetRecord:
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.datasets).where(t.datasets.c.id == dataset_id)).first()
        if row is None:
            raise NotFoundError(
                f"no dataset has the id {dataset_id!r} in workspace {self.workspace_name!r}"
            )
        return self._dataset_record(row)

    def list_datasets(
        self,
        name: str | None = None,
        *,
        latest: bool = False,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[DatasetRecord]:
        d = t.datasets
        query = sa.select(d).order_by(d.c.name, d.c.version.desc()).limit(check_limit(limit))
        if name is not None:
            query = query.where(d.c.name == name)
        if latest:
            newer = d.alias("newer")
            query = query.where(
                ~sa.exists().where(newer.c.name == d.c.name, newer.c.version > d.c.version)
            )
        if after is not None:
            after_name, after_version = split_page_key(after, (str, int))
            query = query.where(
                sa.or_(
                    d.c.name > after_name,
                    sa.and_(d.c.name == after_name, d.c.version < after_version),
                )
            )
        with self.db.read() as conn:
            return [self._dataset_record(row) for row in conn.execute(query)]
