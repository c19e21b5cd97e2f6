"""Registered environment versions."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from modelyard.backend.base import check_limit, split_page_key
from modelyard.backend.local.base import (
    LocalBase,
    _now,
    select_version,
    version_phrase,
)
from modelyard.backend.records import (
    EnvironmentRecord,
)
from modelyard.errors import NotFoundError, ValidationError
from modelyard.names import check_name
from modelyard.store import tables as t


class EnvironmentStore(LocalBase):
    """Registered environment versions."""

    @staticmethod
    def _environment_record(row: sa.Row[Any]) -> EnvironmentRecord:
        return EnvironmentRecord(
            row.name, row.version, json.loads(row.definition), row.content_hash, row.created_at
        )

    def register_environment(self, name: str, definition: dict[str, Any]) -> EnvironmentRecord:
        check_name("name", name)
        try:
            text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError) as error:
            raise ValidationError("definition", f"must be JSON data: {error}") from None
        content_hash = hashlib.sha256(text.encode()).hexdigest()
        latest = (
            sa.select(t.environments)
            .where(t.environments.c.name == name)
            .order_by(t.environments.c.version.desc())
            .limit(1)
        )

        def register(conn: Connection) -> EnvironmentRecord:
            row = conn.execute(latest).one_or_none()
            if row is None or row.content_hash != content_hash:
                # A concurrent registration may take the same number: the unique constraint
                # turns the loser into an IntegrityError and _write_racing_for_key retries.
                conn.execute(
                    t.environments.insert().values(
                        name=name,
                        version=(row.version if row is not None else 0) + 1,
                        content_hash=content_hash,
                        definition=text,
                        created_at=_now(),
                    )
                )
                row = conn.execute(latest).one()
            return self._environment_record(row)

        record: EnvironmentRecord = self._write_racing_for_key(register)
        return record

    def get_environment(self, name: str, version: int | None = None) -> EnvironmentRecord:
        with self.db.read() as conn:
            row = conn.execute(select_version(t.environments, name, version)).first()
        if row is None:
            raise NotFoundError(
                f"environment {name!r} ({version_phrase(version)}) is not registered in workspace "
                f"{self.workspace_name!r}; register it with env.register(ws)"
            )
        return self._environment_record(row)

    def list_environments(
        self, name: str | None = None, *, limit: int | None = None, after: str | None = None
    ) -> list[EnvironmentRecord]:
        query = (
            sa.select(t.environments)
            .order_by(t.environments.c.name, t.environments.c.version.desc())
            .limit(check_limit(limit))
        )
        if name is not None:
            query = query.where(t.environments.c.name == name)
        if after is not None:
            after_name, after_version = split_page_key(after, (str, int))
            query = query.where(
                sa.or_(
                    t.environments.c.name > after_name,
                    sa.and_(
                        t.environments.c.name == after_name,
                        t.environments.c.version < after_version,
                    ),
                )
            )
        with self.db.read() as conn:
            return [self._environment_record(row) for row in conn.execute(query)]
