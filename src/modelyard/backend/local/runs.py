"""Experiments, runs, their tags and properties, and their files."""

from __future__ import annotations

import json
import math
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy import Connection

from modelyard.backend.base import FileSource, check_limit, split_page_key
from modelyard.backend.local.base import (
    LocalBase,
    _file_page,
    _filter_key_values,
    _now,
)
from modelyard.backend.records import (
    CANCEL_REQUESTED,
    CLAIM_STATES,
    FAILED,
    FINALIZING,
    NOT_RESPONDING,
    PREPARING,
    PROVISIONING,
    QUEUED,
    RUN_STATES,
    RUNNING,
    STARTING,
    TERMINAL_STATES,
    ExperimentRecord,
    FileInfo,
    RunDetails,
    RunRecord,
    StatusChange,
    iso_utc,
)
from modelyard.errors import ConflictError, NotFoundError, ValidationError
from modelyard.names import check_experiment_name, check_name, check_tags, clean_relpath
from modelyard.store import tables as t


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
        lease_holder=row.lease_holder,
        lease_expires_at=row.lease_expires_at,
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
    t.runs.c.lease_holder,
    t.runs.c.lease_expires_at,
)


_RUNS_JOIN = t.runs.join(t.experiments, t.runs.c.experiment_id == t.experiments.c.id)

# The states a lease keeps a run in: from its claim (which moves it to Preparing, or to
# Provisioning on a cluster) until it ends.
_LEASED_STATES = (PREPARING, PROVISIONING, STARTING, RUNNING, FINALIZING, CANCEL_REQUESTED)


def _check_lease_seconds(lease_seconds: object) -> float:
    if (
        isinstance(lease_seconds, bool)
        or not isinstance(lease_seconds, int | float)
        or not math.isfinite(lease_seconds)
        or lease_seconds <= 0
    ):
        raise ValidationError(
            "lease_seconds",
            f"{lease_seconds!r} is not a lease: give a number of seconds above 0, such as 30",
        )
    return float(lease_seconds)


def _record_status(conn: Connection, run_id: str, status: str, at: float) -> None:
    """Keep that run ``run_id`` became ``status`` at ``at``, in the change's transaction."""
    conn.execute(t.run_status_changes.insert().values(run_id=run_id, status=status, at=at))


def _expiry_reason(holder: str, expires_at: float) -> str:
    return (
        f"the run's lease held by {holder} expired at {iso_utc(expires_at)}: "
        "its supervisor or node stopped answering"
    )


class RunStore(LocalBase):
    """Experiments, runs, their tags and properties, and their files."""

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
        check_experiment_name("experiment_name", name)
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

    def list_experiments(
        self, *, limit: int | None = None, after: str | None = None
    ) -> list[ExperimentRecord]:
        query = sa.select(t.experiments).order_by(t.experiments.c.name).limit(check_limit(limit))
        if after is not None:
            query = query.where(t.experiments.c.name > after)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [ExperimentRecord(row.id, row.name, row.created_at) for row in rows]

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
            _record_status(conn, run_id, status, now)
            self._put_key_values(conn, t.run_tags, "run_id", run_id, tags)
            self._put_key_values(conn, t.run_properties, "run_id", run_id, properties)

        self._write_racing_for_key(create)
        return self.get_run(run_id)

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

    def get_run_status_history(self, run_id: str) -> list[StatusChange]:
        changes = t.run_status_changes
        with self.db.read() as conn:
            self._check_run(conn, run_id)
            rows = conn.execute(
                sa.select(changes.c.status, changes.c.at)
                .where(changes.c.run_id == run_id)
                .order_by(changes.c.id)
            ).all()
        return [StatusChange(row.status, row.at) for row in rows]

    def list_runs(
        self,
        experiment_name: str,
        *,
        tags: dict[str, str | None] | None = None,
        properties: dict[str, str | None] | None = None,
        include_children: bool = False,
        parent_id: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[RunRecord]:
        query = (
            sa.select(*_RUN_COLUMNS)
            .select_from(_RUNS_JOIN)
            .where(t.experiments.c.name == experiment_name)
            .order_by(t.runs.c.created_at.desc(), t.runs.c.number.desc())
            .limit(check_limit(limit))
        )
        if after is not None:
            created_at, number = split_page_key(after, (float, int))
            query = query.where(
                sa.or_(
                    t.runs.c.created_at < created_at,
                    sa.and_(t.runs.c.created_at == created_at, t.runs.c.number < number),
                )
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
            _record_status(conn, run_id, status, now)

        self.db.write(update)
        return self.get_run(run_id)

    # -- run leases: every decision is one conditional UPDATE whose row count says who won,
    # atomic on SQLite (one writer at a time) and on PostgreSQL (the row lock; a racing
    # SERIALIZABLE transaction that loses is retried by db.write and then matches no row).
    # Lease times are the database's clock (db.clock()), which every machine sharing the
    # database reads alike; heartbeat and end times stay this process's, like the others.

    def claim_run(
        self, run_id: str, worker_id: str, lease_seconds: float, *, status: str = PREPARING
    ) -> RunRecord | None:
        check_name("worker_id", worker_id)
        lease = _check_lease_seconds(lease_seconds)
        if status not in CLAIM_STATES:
            raise ValidationError(
                "status",
                f"{status!r} is not a state to claim a run into: give {PREPARING} (to start "
                f"it now) or {PROVISIONING} (to wait for a cluster's nodes first)",
            )
        runs = t.runs
        now = self.db.clock()
        claimable = sa.or_(
            sa.and_(
                runs.c.status == QUEUED,
                sa.or_(
                    runs.c.lease_holder.is_(None),
                    runs.c.lease_holder == worker_id,
                    runs.c.lease_expires_at < now,
                ),
            ),
            # The holder's retry, or a claim of a run it holds already: a renewal.
            sa.and_(runs.c.status.in_(_LEASED_STATES), runs.c.lease_holder == worker_id),
        )

        # The claim moves the run on (to ``status``) in the same statement: a run that stayed
        # Queued until its supervisor moved it on could be claimed again by a second worker
        # while a slow first one still meant to start it, and both would.
        def claim(conn: Connection) -> bool:
            before = conn.execute(sa.select(runs.c.status).where(runs.c.id == run_id)).scalar()
            taken = conn.execute(
                runs.update()
                .where(runs.c.id == run_id, claimable)
                .values(
                    # A renewal leaves the status alone: the run may have moved on since.
                    status=sa.case((runs.c.status == QUEUED, status), else_=runs.c.status),
                    lease_holder=worker_id,
                    lease_expires_at=now + lease,
                    heartbeat_at=_now(),
                )
            ).rowcount
            if taken == 0:
                self._check_run(conn, run_id)  # NotFoundError for a run that does not exist
            elif before == QUEUED:
                _record_status(conn, run_id, status, _now())
            return bool(taken == 1)

        if not self.db.write(claim):
            return None
        return self.get_run(run_id)

    def renew_lease(self, run_id: str, worker_id: str, lease_seconds: float) -> str:
        check_name("worker_id", worker_id)
        lease = _check_lease_seconds(lease_seconds)
        runs = t.runs

        def renew(conn: Connection) -> str:
            conn.execute(
                runs.update()
                .where(
                    runs.c.id == run_id,
                    runs.c.lease_holder == worker_id,
                    runs.c.status.in_(_LEASED_STATES),
                )
                .values(lease_expires_at=self.db.clock() + lease, heartbeat_at=_now())
            )
            row = conn.execute(
                sa.select(runs.c.status, runs.c.lease_holder).where(runs.c.id == run_id)
            ).one_or_none()
            if row is None:
                raise NotFoundError(
                    f"run {run_id!r} does not exist in workspace {self.workspace_name!r}"
                )
            if row.lease_holder is None:
                raise ConflictError(
                    f"run {run_id!r} is not held by worker {worker_id!r}, nor by any: "
                    "claim it (claim_run) before renewing its lease"
                )
            if row.lease_holder != worker_id:
                raise ConflictError(
                    f"run {run_id!r} is held by worker {row.lease_holder!r}, not "
                    f"{worker_id!r}: leave it to its holder"
                )
            return str(row.status)

        return self.db.write(renew)

    def expire_leases(self) -> list[RunRecord]:
        runs = t.runs
        expired = sa.and_(
            runs.c.lease_holder.is_not(None), runs.c.lease_expires_at < self.db.clock()
        )
        with self.db.read() as conn:
            candidates = (
                conn.execute(
                    sa.select(runs.c.id)
                    .where(runs.c.status.in_((*_LEASED_STATES, NOT_RESPONDING)), expired)
                    .order_by(runs.c.created_at, runs.c.id)
                )
                .scalars()
                .all()
            )
        failed = [run_id for run_id in candidates if self._fail_expired(run_id, expired)]
        return [self.get_run(run_id) for run_id in failed]

    def _fail_expired(self, run_id: str, expired: sa.ColumnElement[bool]) -> bool:
        """Move one run whose lease expired to NotResponding, then (a second transaction, so
        that watchers of the run see it) to Failed; True when this call made it Failed."""
        runs = t.runs

        def stop_answering(conn: Connection) -> None:
            stopped = conn.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status.in_(_LEASED_STATES), expired)
                .values(status=NOT_RESPONDING)
            ).rowcount
            if stopped == 1:
                _record_status(conn, run_id, NOT_RESPONDING, _now())

        def fail(conn: Connection) -> bool:
            still = sa.and_(runs.c.id == run_id, runs.c.status == NOT_RESPONDING, expired)
            row = conn.execute(
                sa.select(runs.c.lease_holder, runs.c.lease_expires_at).where(still)
            ).one_or_none()
            if row is None:
                return False  # renewed in time, or another watcher failed it first
            now = _now()
            error = {"message": _expiry_reason(row.lease_holder, row.lease_expires_at)}
            failed = conn.execute(
                runs.update()
                .where(still)
                .values(
                    status=FAILED,
                    ended_at=now,
                    started_at=sa.func.coalesce(runs.c.started_at, now),
                    error=json.dumps(error),
                )
            ).rowcount
            if failed == 1:
                _record_status(conn, run_id, FAILED, now)
            return bool(failed == 1)

        self.db.write(stop_answering)
        return self.db.write(fail)

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

    def list_run_files(
        self, run_id: str, prefix: str = "", *, limit: int | None = None, after: str | None = None
    ) -> list[FileInfo]:
        prefix = clean_relpath("prefix", prefix, allow_root=True)
        with self.db.read() as conn:
            self._check_run(conn, run_id)
        root = f"runs/{run_id}"
        files = self.files.list(f"{root}/{prefix}" if prefix else root)
        start = len(root) + 1
        return _file_page([FileInfo(info.path[start:], info.size) for info in files], limit, after)

    def open_run_file(self, run_id: str, name: str) -> IO[bytes]:
        name = clean_relpath("name", name)
        with self.db.read() as conn:
            self._check_run(conn, run_id)
        try:
            return self.files.open_read(f"runs/{run_id}/{name}")
        except NotFoundError:
            raise NotFoundError(f"run {run_id!r} has no file {name!r}") from None
