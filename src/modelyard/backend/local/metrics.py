"""Metric points, stored as packed chunks (see store/metric_codec.py)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from modelyard.backend.base import check_limit
from modelyard.backend.local.base import (
    LocalBase,
)
from modelyard.backend.records import (
    METRIC_KINDS,
    MetricBatch,
    MetricInfo,
    MetricSeries,
)
from modelyard.errors import ValidationError
from modelyard.names import check_metric_name
from modelyard.store import metric_codec
from modelyard.store import tables as t

# One stored chunk at most: the SDK's batches stay far below (metrics.MAX_BATCH_BYTES), and
# PostgreSQL refuses a bytea value over 1 GiB.
MAX_CHUNK_BYTES = 256 << 20


def _point_processes(chunks: list[tuple[int | None, int]]) -> list[int | None] | None:
    """The process of each point, from (process, point count) per chunk; None when no chunk
    came from a process of a distributed run."""
    if all(process is None for process, _ in chunks):
        return None
    result: list[int | None] = []
    for process, count in chunks:
        result.extend([process] * count)
    return result


def _pack(batch: MetricBatch) -> bytes:
    """The batch packed for storage; ValidationError naming the metric for what cannot be
    stored (the SDK refuses such points when they are logged: this guards other callers)."""
    try:
        payload = metric_codec.encode(batch.values, batch.steps, batch.times)
    except (OverflowError, TypeError, ValueError) as error:
        raise ValidationError(
            "values", f"metric {batch.name!r}: a point cannot be stored ({error})"
        ) from None
    if len(payload) > MAX_CHUNK_BYTES:
        raise ValidationError(
            "values",
            f"metric {batch.name!r}: a batch of {len(payload):,} bytes is over the limit of "
            f"{MAX_CHUNK_BYTES:,}; send it in smaller batches",
        )
    return payload


class MetricStore(LocalBase):
    """Metric points, stored as packed chunks (see store/metric_codec.py)."""

    def log_metrics(self, run_id: str, batches: list[MetricBatch]) -> None:
        for batch in batches:
            check_metric_name("name", batch.name)
            if batch.kind not in METRIC_KINDS:
                raise ValidationError("kind", f"{batch.kind!r} is not a metric kind")
            process = batch.process
            if process is not None and (
                isinstance(process, bool) or not isinstance(process, int) or process < 0
            ):
                raise ValidationError("process", f"{process!r} is not a process number")
        # Pack outside the transaction: it is the expensive part, and the write lock is shared.
        payloads = [_pack(batch) for batch in batches]

        def append(conn: Connection) -> None:
            self._check_run(conn, run_id)
            for batch, payload in zip(batches, payloads, strict=True):
                if not batch.values:
                    continue
                row = conn.execute(
                    sa.select(t.metrics.c.id, t.metrics.c.kind, t.metrics.c.count.label("n")).where(
                        t.metrics.c.run_id == run_id, t.metrics.c.name == batch.name
                    )
                ).one_or_none()
                if row is None:
                    metric_id = conn.execute(
                        t.metrics.insert().values(
                            run_id=run_id,
                            name=batch.name,
                            kind=batch.kind,
                            description=batch.description,
                            count=0,
                        )
                    ).inserted_primary_key[0]  # type: ignore[index]
                    count = 0
                else:
                    if row.kind != batch.kind:
                        raise ValidationError(
                            "name",
                            f"metric {batch.name!r} was logged as {row.kind}; it cannot also "
                            f"be logged as {batch.kind} (use another name)",
                        )
                    metric_id, count = row.id, row.n
                    duplicate = conn.execute(
                        sa.select(t.metric_chunks.c.id).where(
                            t.metric_chunks.c.metric_id == metric_id,
                            t.metric_chunks.c.batch_id == batch.batch_id,
                        )
                    ).scalar()
                    if duplicate is not None:
                        continue
                conn.execute(
                    t.metric_chunks.insert().values(
                        metric_id=metric_id,
                        batch_id=batch.batch_id,
                        first_index=count,
                        count=len(batch.values),
                        payload=payload,
                        process=batch.process,
                    )
                )
                conn.execute(
                    t.metrics.update()
                    .where(t.metrics.c.id == metric_id)
                    .values(
                        count=count + len(batch.values),
                        last_value=json.dumps(batch.values[-1]),
                        last_step=batch.steps[-1],
                    )
                )

        self.db.write(append)

    def list_metrics(self, run_id: str) -> list[MetricInfo]:
        with self.db.read() as conn:
            self._check_run(conn, run_id)
            rows = conn.execute(
                sa.select(t.metrics).where(t.metrics.c.run_id == run_id).order_by(t.metrics.c.id)
            ).all()
        return [
            MetricInfo(
                row.name,
                row.kind,
                row.description,
                row._mapping["count"],
                json.loads(row.last_value) if row.last_value is not None else None,
                row.last_step,
            )
            for row in rows
        ]

    def get_metric_series(
        self,
        run_id: str,
        names: list[str] | None = None,
        *,
        start: int = 0,
        limit: int | None = None,
    ) -> list[MetricSeries]:
        check_limit(limit)
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValidationError("start", f"{start!r} is not a point index: use 0 or more")
        end = None if limit is None else start + limit
        query = (
            sa.select(
                t.metrics.c.name,
                t.metrics.c.kind,
                t.metric_chunks.c.payload,
                t.metric_chunks.c.process,
                t.metric_chunks.c.first_index,
            )
            .select_from(t.metrics.join(t.metric_chunks))
            .where(t.metrics.c.run_id == run_id)
            .order_by(t.metrics.c.id, t.metric_chunks.c.first_index)
        )
        if names is not None:
            query = query.where(t.metrics.c.name.in_(names))
        # Only the chunks that hold points of the page are read and decoded.
        query = query.where(t.metric_chunks.c.first_index + t.metric_chunks.c.count > start)
        if end is not None:
            query = query.where(t.metric_chunks.c.first_index < end)
        series: dict[str, tuple[str, list[Any], list[int], list[float]]] = {}
        # Per metric, the process of each chunk and its point count (distributed runs).
        chunk_processes: dict[str, list[tuple[int | None, int]]] = {}
        with self.db.read() as conn:
            self._check_run(conn, run_id)
            for name, kind, payload, process, first_index in conn.execute(query):
                values, steps, times = metric_codec.decode(payload)
                # The part of the chunk inside [start, end).
                cut = slice(
                    max(start - first_index, 0),
                    None if end is None else end - first_index,
                )
                values, steps, times = values[cut], steps[cut], times[cut]
                chunk_processes.setdefault(name, []).append((process, len(values)))
                if name in series:
                    _, all_values, all_steps, all_times = series[name]
                    all_values.extend(values)
                    all_steps.extend(steps)
                    all_times.extend(times)
                else:
                    series[name] = (kind, values, steps, times)
        return [
            MetricSeries(name, kind, values, steps, times, _point_processes(chunk_processes[name]))
            for name, (kind, values, steps, times) in series.items()
        ]
