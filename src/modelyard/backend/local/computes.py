"""The workspace's compute targets: one row each in ``compute_targets``.

The row holds what the SDK said about the cluster: its type, its provisioning configuration
and the errors as JSON text (the way ``environments.definition`` and ``runs.error`` hold
theirs), and the state and address its owner records as the cluster comes up and goes.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from modelyard.backend.base import NODE_HISTORY_LIMIT, check_limit
from modelyard.backend.local.base import LocalBase, _now
from modelyard.backend.records import COMPUTE_CREATING, LOCAL_COMPUTE, ComputeRecord, NodeCounts
from modelyard.errors import ComputeTargetException, ConflictError, ValidationError
from modelyard.hints import say
from modelyard.names import check_name
from modelyard.store import tables as t

# A provisioning configuration is a few dozen settings (~1 KiB); the cap keeps a mistaken
# one (a data set passed by accident) out of a table every listing reads.
MAX_PROVISIONING_BYTES = 64 << 10
# The errors of a compute target are a handful of messages; the same cap, for the same reason.
MAX_ERRORS_BYTES = 64 << 10
MAX_STATE_LENGTH = 64
# How long a compute target's node count changes are kept (a busy cluster changes its idle and
# running counts with every run it starts and ends).
NODE_HISTORY_DAYS = 30
MAX_ADDRESS_LENGTH = 1024


def _json_text(field: str, value: object, limit: int) -> str:
    """``value`` as canonical JSON text (sorted keys, no spaces: equal content, equal text),
    or ValidationError when it is not JSON data or is over ``limit`` bytes."""
    try:
        # allow_nan=False: NaN and Infinity are not JSON, and another client could not read them.
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValidationError(
            field, f"must be JSON data (dicts, lists, strings, numbers): {error}"
        ) from None
    size = len(text.encode())
    if size > limit:
        raise ValidationError(
            field, f"is {size:,} bytes as JSON, over the limit of {limit:,}: keep only settings"
        )
    return text


def _check_compute_name(name: object) -> str:
    name = check_name("name", name)
    if name.lower() == LOCAL_COMPUTE:
        raise ValidationError(
            "name",
            f"{name!r} is taken: compute target {LOCAL_COMPUTE!r} is this machine and always "
            "exists; give the cluster another name",
        )
    return name


def _check_text(field: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
        raise ValidationError(
            field, f"{value!r} is not valid: give 1 to {limit} printable characters"
        )
    return value


def _check_errors(errors: object) -> str:
    if not isinstance(errors, list) or not all(isinstance(item, dict) for item in errors):
        raise ValidationError("errors", "must be a list of dicts, such as [{'message': ...}]")
    return _json_text("errors", errors, MAX_ERRORS_BYTES)


def _check_nodes(nodes: object) -> str:
    if not isinstance(nodes, dict) or not all(
        isinstance(key, str)
        and isinstance(count, int)
        and not isinstance(count, bool)
        and count >= 0
        for key, count in nodes.items()
    ):
        raise ValidationError("nodes", "must be a dict of node counts, such as {'current': 2}")
    return _json_text("nodes", nodes, MAX_ERRORS_BYTES)


def _compute_record(row: sa.Row[Any]) -> ComputeRecord:
    return ComputeRecord(
        name=row.name,
        compute_type=row.compute_type,
        provisioning=json.loads(row.provisioning),
        state=row.state,
        address=row.address,
        errors=json.loads(row.errors),
        created_at=row.created_at,
        updated_at=row.updated_at,
        nodes=json.loads(row.nodes),
    )


class ComputeStore(LocalBase):
    """The workspace's compute targets (the clusters themselves are the compute side's)."""

    def _missing_compute(self, name: str) -> ComputeTargetException:
        return ComputeTargetException(
            f"compute target {name!r} does not exist in workspace {self.workspace_name!r}; "
            "create it with "
            + say(
                "ComputeTarget.create(ws, {name!r}, AmlCompute.provisioning_configuration(...))",
                name=name,
            )
            + f", or list the workspace's with {say('ComputeTarget.list(ws)')}"
        )

    def create_compute(
        self, name: str, compute_type: str, provisioning: dict[str, Any]
    ) -> ComputeRecord:
        name = _check_compute_name(name)
        check_name("compute_type", compute_type)
        if not isinstance(provisioning, dict):
            raise ValidationError(
                "provisioning", f"must be a dict of settings, not {type(provisioning).__name__}"
            )
        text = _json_text("provisioning", provisioning, MAX_PROVISIONING_BYTES)
        select = sa.select(t.compute_targets).where(t.compute_targets.c.name == name)

        def create(conn: Connection) -> sa.Row[Any]:
            row = conn.execute(select).one_or_none()
            if row is None:
                now = _now()
                # Two creations of one name at once on PostgreSQL: the primary key turns the
                # loser into an IntegrityError, _write_racing_for_key runs this again, and
                # it finds the winner's row.
                conn.execute(
                    t.compute_targets.insert().values(
                        name=name,
                        compute_type=compute_type,
                        provisioning=text,
                        state=COMPUTE_CREATING,
                        address=None,
                        errors="[]",
                        nodes="{}",
                        created_at=now,
                        updated_at=now,
                    )
                )
                return conn.execute(select).one()
            if row.compute_type != compute_type or row.provisioning != text:
                raise ConflictError(
                    f"a compute target named {name!r} exists already in workspace "
                    f"{self.workspace_name!r} ({row.compute_type}, with another "
                    "configuration); delete it first (ComputeTarget(ws, name).delete()) or "
                    "pick another name"
                )
            return row

        row: sa.Row[Any] = self._write_racing_for_key(create)
        return _compute_record(row)

    def get_compute(self, name: str) -> ComputeRecord:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(t.compute_targets).where(t.compute_targets.c.name == name)
            ).one_or_none()
        if row is None:
            raise self._missing_compute(name)
        return _compute_record(row)

    def list_computes(
        self, *, limit: int | None = None, after: str | None = None
    ) -> list[ComputeRecord]:
        query = (
            sa.select(t.compute_targets)
            .order_by(t.compute_targets.c.name)
            .limit(check_limit(limit))
        )
        if after is not None:
            query = query.where(t.compute_targets.c.name > after)
        with self.db.read() as conn:
            return [_compute_record(row) for row in conn.execute(query)]

    def update_compute(
        self,
        name: str,
        *,
        state: str | None = None,
        address: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        nodes: dict[str, int] | None = None,
    ) -> ComputeRecord:
        values: dict[str, Any] = {}
        if state is not None:
            values["state"] = _check_text("state", state, MAX_STATE_LENGTH)
        if address is not None:
            values["address"] = _check_text("address", address, MAX_ADDRESS_LENGTH)
        if errors is not None:
            values["errors"] = _check_errors(errors)
        if nodes is not None:
            values["nodes"] = _check_nodes(nodes)
        select = sa.select(t.compute_targets).where(t.compute_targets.c.name == name)

        def update(conn: Connection) -> sa.Row[Any]:
            before = conn.execute(
                sa.select(t.compute_targets.c.nodes).where(t.compute_targets.c.name == name)
            ).scalar()
            now = _now()
            changed = conn.execute(
                t.compute_targets.update()
                .where(t.compute_targets.c.name == name)
                .values(**values, updated_at=now)
            ).rowcount
            if changed == 0:
                raise self._missing_compute(name)
            if "nodes" in values and values["nodes"] != before:
                _record_nodes(conn, name, values["nodes"], now)
            return conn.execute(select).one()

        return _compute_record(self.db.write(update))

    def get_compute_node_history(self, name: str, since: float = 0.0) -> list[NodeCounts]:
        if not isinstance(since, int | float) or since != since:
            raise ValidationError("since", f"{since!r} is not a Unix time")
        counts = t.compute_node_counts
        columns = (counts.c.at, counts.c.nodes)
        mine = counts.c.compute_name == name
        with self.db.read() as conn:
            if (
                conn.execute(
                    sa.select(t.compute_targets.c.name).where(t.compute_targets.c.name == name)
                ).first()
                is None
            ):
                raise self._missing_compute(name)
            start = conn.execute(
                sa.select(*columns)
                .where(mine, counts.c.at < since)
                .order_by(counts.c.at.desc(), counts.c.id.desc())
                .limit(1)
            ).all()
            latest = conn.execute(
                sa.select(*columns)
                .where(mine, counts.c.at >= since)
                .order_by(counts.c.at.desc(), counts.c.id.desc())
                .limit(NODE_HISTORY_LIMIT)
            ).all()
        rows = [*start, *reversed(latest)]
        return [NodeCounts(row.at, json.loads(row.nodes)) for row in rows]

    def delete_compute(self, name: str) -> None:
        def delete(conn: Connection) -> None:
            conn.execute(t.compute_targets.delete().where(t.compute_targets.c.name == name))

        self.db.write(delete)


def _record_nodes(conn: Connection, name: str, nodes: str, at: float) -> None:
    """Keep compute target ``name``'s new node counts (``nodes``, JSON), and forget those
    older than NODE_HISTORY_DAYS, in the change's transaction."""
    counts = t.compute_node_counts
    conn.execute(counts.insert().values(compute_name=name, at=at, nodes=nodes))
    conn.execute(
        counts.delete().where(
            counts.c.compute_name == name, counts.c.at < at - NODE_HISTORY_DAYS * 86400
        )
    )
