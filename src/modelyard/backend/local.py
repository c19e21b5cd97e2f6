"""The backend of an embedded workspace: a SQL database and a file store in this process.

Example::

    backend = LocalBackend("demo", "sqlite:///ws/modelyard.db", "file:///ws/artifacts")
    backend.ensure_experiment("mnist")
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from modelyard.backend.base import Backend, FileSource
from modelyard.backend.records import (
    CANCEL_REQUESTED,
    METRIC_KINDS,
    RUN_STATES,
    RUNNING,
    STARTING,
    TERMINAL_STATES,
    DatastoreRecord,
    EnvironmentRecord,
    ExperimentRecord,
    FileInfo,
    MetricBatch,
    MetricInfo,
    MetricSeries,
    ModelRecord,
    RunDetails,
    RunRecord,
)
from modelyard.errors import ConflictError, NotFoundError, ValidationError
from modelyard.names import check_metric_name, check_name, check_tags, clean_relpath
from modelyard.store import metric_codec, migrate
from modelyard.store import tables as t
from modelyard.store.database import Database
from modelyard.store.files import FileStore

DEFAULT_DATASTORE_SETTING = "default_datastore"


def _now() -> float:
    return time.time()


def _run_record(row: Any) -> RunRecord:
    return RunRecord(
        id=row.id,
        experiment_name=row.experiment_name,
        number=row.number,
        parent_id=row.parent_id,
        display_name=row.display_name,
        run_type=row.run_type,
        status=row.status,
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        heartbeat_at=row.heartbeat_at,
        error=json.loads(row.error) if row.error else None,
    )


_RUN_COLUMNS = (
    t.runs.c.id,
    t.experiments.c.name.label("experiment_name"),
    t.runs.c.number,
    t.runs.c.parent_id,
    t.runs.c.display_name,
    t.runs.c.run_type,
    t.runs.c.status,
    t.runs.c.created_at,
    t.runs.c.started_at,
    t.runs.c.ended_at,
    t.runs.c.heartbeat_at,
    t.runs.c.error,
)
_RUNS_JOIN = t.runs.join(t.experiments, t.runs.c.experiment_id == t.experiments.c.id)


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


def _point_processes(chunks: list[tuple[int | None, int]]) -> list[int | None] | None:
    """The process of each point, from (process, point count) per chunk; None when no chunk
    came from a process of a distributed run."""
    if all(process is None for process, _ in chunks):
        return None
    result: list[int | None] = []
    for process, count in chunks:
        result.extend([process] * count)
    return result


class LocalBackend(Backend):
    """Metadata in a SQL database (SQLite by default), files in an fsspec file store."""

    def __init__(
        self,
        workspace_name: str,
        database_url: str,
        storage_url: str,
        *,
        base_dir: Path | None = None,
    ) -> None:
        self.workspace_name = workspace_name
        # Datastore URLs without a scheme are folders relative to the workspace, so a
        # workspace folder can be moved or copied whole.
        self.base_dir = base_dir
        self.db = Database(database_url)
        migrate.upgrade(self.db)
        self.files = FileStore(storage_url)

    # -- experiments ---------------------------------------------------------------------

    def _experiment_id(self, conn: Connection, name: str) -> int:
        found = conn.execute(
            sa.select(t.experiments.c.id).where(t.experiments.c.name == name)
        ).scalar()
        if found is None:
            raise NotFoundError(
                f"experiment {name!r} does not exist in workspace {self.workspace_name!r}"
            )
        return int(found)

    def ensure_experiment(self, name: str) -> ExperimentRecord:
        check_name("experiment_name", name)
        select = sa.select(t.experiments).where(t.experiments.c.name == name)
        with self.db.read() as conn:
            row = conn.execute(select).one_or_none()
        if row is None:

            def create(conn: Connection) -> sa.Row[Any]:
                if conn.execute(select).one_or_none() is None:
                    conn.execute(t.experiments.insert().values(name=name, created_at=_now()))
                return conn.execute(select).one()

            row = self.db.write(create)
        return ExperimentRecord(row.id, row.name, row.created_at)

    def list_experiments(self) -> list[ExperimentRecord]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t.experiments).order_by(t.experiments.c.name)).all()
        return [ExperimentRecord(row.id, row.name, row.created_at) for row in rows]

    # -- runs ----------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        experiment_name: str,
        *,
        run_type: str,
        status: str,
        display_name: str | None = None,
        parent_id: str | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
    ) -> RunRecord:
        check_name("run_id", run_id)
        if status not in RUN_STATES:
            raise ValidationError("status", f"{status!r} is not a run state")
        tags = check_tags("tags", tags)
        properties = check_tags("properties", properties)
        experiment = self.ensure_experiment(experiment_name)

        def create(conn: Connection) -> None:
            existing = conn.execute(
                sa.select(t.runs.c.experiment_id).where(t.runs.c.id == run_id)
            ).scalar()
            if existing is not None:
                if existing != experiment.id:
                    raise ConflictError(f"run id {run_id!r} is taken in another experiment")
                return
            if parent_id is not None:
                self._check_run(conn, parent_id)
            now = _now()
            number = conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(t.runs.c.number), 0) + 1).where(
                    t.runs.c.experiment_id == experiment.id
                )
            ).scalar_one()
            conn.execute(
                t.runs.insert().values(
                    id=run_id,
                    experiment_id=experiment.id,
                    number=number,
                    parent_id=parent_id,
                    display_name=display_name or run_id,
                    run_type=run_type,
                    status=status,
                    created_at=now,
                    started_at=now if status == RUNNING else None,
                )
            )
            self._put_key_values(conn, t.run_tags, "run_id", run_id, tags)
            self._put_key_values(conn, t.run_properties, "run_id", run_id, properties)

        self._write_racing_for_key(create)
        return self.get_run(run_id)

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

    def get_run(self, run_id: str) -> RunRecord:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(*_RUN_COLUMNS).select_from(_RUNS_JOIN).where(t.runs.c.id == run_id)
            ).one_or_none()
        if row is None:
            raise NotFoundError(
                f"run {run_id!r} does not exist in workspace {self.workspace_name!r}"
            )
        return _run_record(row)

    def get_run_details(self, run_id: str) -> RunDetails:
        run = self.get_run(run_id)
        with self.db.read() as conn:
            tags = dict(
                conn.execute(
                    sa.select(t.run_tags.c.key, t.run_tags.c.value).where(
                        t.run_tags.c.run_id == run_id
                    )
                ).all()
            )
            properties = dict(
                conn.execute(
                    sa.select(t.run_properties.c.key, t.run_properties.c.value).where(
                        t.run_properties.c.run_id == run_id
                    )
                ).all()
            )
        return RunDetails(run, tags, properties)

    def list_runs(
        self,
        experiment_name: str,
        *,
        tags: dict[str, str | None] | None = None,
        properties: dict[str, str | None] | None = None,
        include_children: bool = False,
        parent_id: str | None = None,
    ) -> list[RunRecord]:
        query = (
            sa.select(*_RUN_COLUMNS)
            .select_from(_RUNS_JOIN)
            .where(t.experiments.c.name == experiment_name)
            .order_by(t.runs.c.created_at.desc(), t.runs.c.number.desc())
        )
        if parent_id is not None:
            query = query.where(t.runs.c.parent_id == parent_id)
        elif not include_children:
            query = query.where(t.runs.c.parent_id.is_(None))
        query = _filter_key_values(query, t.run_tags, t.run_tags.c.run_id, t.runs.c.id, tags)
        query = _filter_key_values(
            query, t.run_properties, t.run_properties.c.run_id, t.runs.c.id, properties
        )
        with self.db.read() as conn:
            return [_run_record(row) for row in conn.execute(query)]

    def update_run_status(
        self, run_id: str, status: str, *, error: dict[str, Any] | None = None
    ) -> RunRecord:
        if status not in RUN_STATES:
            raise ValidationError("status", f"{status!r} is not a run state")

        def update(conn: Connection) -> None:
            current = self._check_run(conn, run_id)
            if current == status:
                return
            if current in TERMINAL_STATES:
                raise ConflictError(
                    f"run {run_id!r} has ended ({current}); it cannot become {status}"
                )
            if current == CANCEL_REQUESTED and status not in TERMINAL_STATES:
                # The supervisor's next step must not hide a cancel request: it sees the
                # status it gets back and stops the run.
                return
            now = _now()
            values: dict[str, Any] = {"status": status, "heartbeat_at": now}
            if status in (STARTING, RUNNING):
                values["started_at"] = sa.func.coalesce(t.runs.c.started_at, now)
            if status in TERMINAL_STATES:
                values["ended_at"] = now
                values["started_at"] = sa.func.coalesce(t.runs.c.started_at, now)
            if error is not None:
                values["error"] = json.dumps(error)
            conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(**values))

        self.db.write(update)
        return self.get_run(run_id)

    def heartbeat_run(self, run_id: str) -> str:
        def beat(conn: Connection) -> str:
            status = self._check_run(conn, run_id)
            conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(heartbeat_at=_now()))
            return status

        return self.db.write(beat)

    def list_runs_in_states(
        self, states: list[str], *, properties: dict[str, str | None] | None = None
    ) -> list[RunRecord]:
        query = (
            sa.select(*_RUN_COLUMNS)
            .select_from(_RUNS_JOIN)
            .where(t.runs.c.status.in_(states))
            .order_by(t.runs.c.created_at, t.runs.c.number)
        )
        query = _filter_key_values(
            query, t.run_properties, t.run_properties.c.run_id, t.runs.c.id, properties
        )
        with self.db.read() as conn:
            return [_run_record(row) for row in conn.execute(query)]

    def set_run_tags(self, run_id: str, tags: dict[str, str]) -> None:
        tags = check_tags("tags", tags)

        def update(conn: Connection) -> None:
            self._check_run(conn, run_id)
            self._put_key_values(conn, t.run_tags, "run_id", run_id, tags)

        self.db.write(update)

    def add_run_properties(self, run_id: str, properties: dict[str, str]) -> None:
        properties = check_tags("properties", properties)

        def update(conn: Connection) -> None:
            self._check_run(conn, run_id)
            existing = dict(
                conn.execute(
                    sa.select(t.run_properties.c.key, t.run_properties.c.value).where(
                        t.run_properties.c.run_id == run_id,
                        t.run_properties.c.key.in_(list(properties)),
                    )
                ).all()
            )
            for key, value in properties.items():
                if key in existing and existing[key] != value:
                    raise ConflictError(
                        f"property {key!r} of run {run_id!r} is {existing[key]!r} already; "
                        "properties cannot change (use tags for values that change)"
                    )
            new = {key: value for key, value in properties.items() if key not in existing}
            self._put_key_values(conn, t.run_properties, "run_id", run_id, new)

        self.db.write(update)

    # -- metrics -------------------------------------------------------------------------

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
        payloads = [
            metric_codec.encode(batch.values, batch.steps, batch.times) for batch in batches
        ]

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

    def get_metric_series(self, run_id: str, names: list[str] | None = None) -> list[MetricSeries]:
        query = (
            sa.select(
                t.metrics.c.name,
                t.metrics.c.kind,
                t.metric_chunks.c.payload,
                t.metric_chunks.c.process,
            )
            .select_from(t.metrics.join(t.metric_chunks))
            .where(t.metrics.c.run_id == run_id)
            .order_by(t.metrics.c.id, t.metric_chunks.c.first_index)
        )
        if names is not None:
            query = query.where(t.metrics.c.name.in_(names))
        series: dict[str, tuple[str, list[Any], list[int], list[float]]] = {}
        # Per metric, the process of each chunk and its point count (distributed runs).
        chunk_processes: dict[str, list[tuple[int | None, int]]] = {}
        with self.db.read() as conn:
            self._check_run(conn, run_id)
            for name, kind, payload, process in conn.execute(query):
                values, steps, times = metric_codec.decode(payload)
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

    # -- files ---------------------------------------------------------------------------

    def _put(self, relpath: str, source: FileSource) -> None:
        if isinstance(source, Path):
            self.files.put_file(source, relpath)
        else:
            with self.files.open_write(relpath) as dst:
                shutil.copyfileobj(source, dst, 8 << 20)

    def upload_run_file(self, run_id: str, name: str, source: FileSource) -> None:
        name = clean_relpath("name", name)
        with self.db.read() as conn:
            self._check_run(conn, run_id)
        self._put(f"runs/{run_id}/{name}", source)

    def append_run_file(self, run_id: str, name: str, offset: int, data: bytes) -> None:
        name = clean_relpath("name", name)
        self.files.append(f"runs/{run_id}/{name}", offset, data)

    def read_run_file(self, run_id: str, name: str, offset: int = 0, size: int = 1 << 20) -> bytes:
        name = clean_relpath("name", name)
        try:
            return self.files.read_range(f"runs/{run_id}/{name}", offset, size)
        except NotFoundError:
            raise NotFoundError(f"run {run_id!r} has no file {name!r} yet") from None

    def list_run_files(self, run_id: str, prefix: str = "") -> list[FileInfo]:
        prefix = clean_relpath("prefix", prefix, allow_root=True)
        with self.db.read() as conn:
            self._check_run(conn, run_id)
        root = f"runs/{run_id}"
        files = self.files.list(f"{root}/{prefix}" if prefix else root)
        start = len(root) + 1
        return [FileInfo(info.path[start:], info.size) for info in files]

    def open_run_file(self, run_id: str, name: str) -> IO[bytes]:
        name = clean_relpath("name", name)
        with self.db.read() as conn:
            self._check_run(conn, run_id)
        try:
            return self.files.open_read(f"runs/{run_id}/{name}")
        except NotFoundError:
            raise NotFoundError(f"run {run_id!r} has no file {name!r}") from None

    # -- datastores ----------------------------------------------------------------------

    def _default_datastore_name(self, conn: Connection) -> str | None:
        return conn.execute(
            sa.select(t.settings.c.value).where(t.settings.c.key == DEFAULT_DATASTORE_SETTING)
        ).scalar()

    def _datastore_record(self, row: sa.Row[Any], default: str | None) -> DatastoreRecord:
        url = row.url
        if "://" not in url and self.base_dir is not None:
            url = (self.base_dir / url).as_uri()
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

    # -- models --------------------------------------------------------------------------

    @staticmethod
    def _staging_path(model_name: str, upload_id: str) -> str:
        check_name("model_name", model_name)
        check_name("upload_id", upload_id)
        return f"models/{model_name}/{upload_id}"

    def upload_model_file(
        self, model_name: str, upload_id: str, relpath: str, source: FileSource
    ) -> None:
        relpath = clean_relpath("model_path", relpath)
        self._put(f"{self._staging_path(model_name, upload_id)}/{relpath}", source)

    def stage_model_from_run(
        self, model_name: str, upload_id: str, run_id: str, run_path: str
    ) -> str:
        run_path = clean_relpath("model_path", run_path)
        staging = self._staging_path(model_name, upload_id)
        files = self.list_run_files(run_id, run_path)
        exact = [info for info in files if info.path == run_path]
        inside = [info for info in files if info.path.startswith(run_path + "/")]
        if not exact and not inside:
            raise NotFoundError(
                f"run {run_id!r} has no file or folder {run_path!r}; run.get_file_names() "
                "lists what it has"
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
        query = sa.select(t.models).where(t.models.c.name == name)
        if version is None:
            query = query.order_by(t.models.c.version.desc()).limit(1)
        else:
            query = query.where(t.models.c.version == version)
        row = conn.execute(query).first()
        if row is None:
            which = "any version" if version is None else f"version {version}"
            raise NotFoundError(
                f"model {name!r} ({which}) does not exist in workspace {self.workspace_name!r}"
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
    ) -> list[ModelRecord]:
        query = sa.select(t.models).order_by(t.models.c.created_at.desc(), t.models.c.id.desc())
        if name is not None:
            query = query.where(t.models.c.name == name)
        query = _filter_key_values(
            query, t.model_tags, t.model_tags.c.model_id, t.models.c.id, tags
        )
        with self.db.read() as conn:
            records = [self._model_record(conn, row) for row in conn.execute(query).all()]
        if latest:
            newest: dict[str, ModelRecord] = {}
            for record in records:
                if record.name not in newest or record.version > newest[record.name].version:
                    newest[record.name] = record
            records = [r for r in records if newest[r.name] is r]
        return records

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
        def delete(conn: Connection) -> str:
            row = self._find_model_row(conn, name, version)
            conn.execute(t.models.delete().where(t.models.c.id == row.id))
            return str(row.storage_path)

        storage_path = self.db.write(delete)
        # Files go after the row: a crash in between leaves unreferenced files, never a
        # version whose files are gone.
        self.files.delete(storage_path)

    def list_model_files(self, name: str, version: int) -> list[FileInfo]:
        record = self.get_model(name, version)
        start = len(record.storage_path) + 1
        return [
            FileInfo(info.path[start:], info.size) for info in self.files.list(record.storage_path)
        ]

    def open_model_file(self, name: str, version: int, relpath: str) -> IO[bytes]:
        record = self.get_model(name, version)
        relpath = clean_relpath("name", relpath)
        return self.files.open_read(f"{record.storage_path}/{relpath}")

    # -- environments --------------------------------------------------------------------

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
        query = sa.select(t.environments).where(t.environments.c.name == name)
        if version is None:
            query = query.order_by(t.environments.c.version.desc()).limit(1)
        else:
            query = query.where(t.environments.c.version == version)
        with self.db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            which = "any version" if version is None else f"version {version}"
            raise NotFoundError(
                f"environment {name!r} ({which}) is not registered in workspace "
                f"{self.workspace_name!r}; register it with env.register(ws)"
            )
        return self._environment_record(row)

    def list_environments(self, name: str | None = None) -> list[EnvironmentRecord]:
        query = sa.select(t.environments).order_by(
            t.environments.c.name, t.environments.c.version.desc()
        )
        if name is not None:
            query = query.where(t.environments.c.name == name)
        with self.db.read() as conn:
            return [self._environment_record(row) for row in conn.execute(query)]
