"""Many processes writing to one workspace whose metadata is in a real PostgreSQL: nothing
lost or stored twice, no raw database error, one object per name, contiguous versions; and
agents sharing one database (PostgreSQL, and SQLite too) that claim each run once.

SQLite's write lock hides these races; PostgreSQL lets transactions run side by side.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from modelyard import Experiment, Model, Run, Workspace
from modelyard.backend.local import LocalBackend
from modelyard.backend.records import FAILED, PREPARING, QUEUED
from modelyard.store import tables as t
from tests.helpers import start_together

PROCESSES = 8
RACERS = 10
AGENTS = 3
QUEUED_RUNS = 20

LOG_SCRIPT = """
import sys
from modelyard import Workspace, Experiment, Run
ws = Workspace.get("pg-ws", folder=sys.argv[1])
run = Run(Experiment(ws, "concurrent"), sys.argv[2])
base = int(sys.argv[3]) * 10_000
sys.stdin.readline()                    # start together
for i in range(10_000):
    run.log("points", base + i)
    if i % 1000 == 999:
        run.flush()                     # many small transactions, racing for the metric
run.flush()
"""

RACE_SCRIPT = """
import sys
from modelyard import Workspace, Experiment, Model, Run
ws = Workspace.get("pg-ws", folder=sys.argv[1])
shared_run, me, model_path = sys.argv[2], sys.argv[3], sys.argv[4]
sys.stdin.readline()
exp = Experiment(ws, "raced")                            # ensure_experiment, all at once
run = exp.start_logging()                # create_run: run numbers race
Run(Experiment(ws, "concurrent"), shared_run).tag(f"writer-{me}", me)   # set_run_tags
model = Model.register(ws, model_path, "shared-name", tags={"writer": me})
print(run.number, model.version)
"""


# What an agent does with its compute target's queue: try to claim each queued run, oldest
# first, until none is left; it prints each run it got (and would start).
CLAIM_SCRIPT = """
import sys, time
from modelyard.backend.local import LocalBackend
backend = LocalBackend("ws", sys.argv[1], sys.argv[2])
me = sys.argv[3]
sys.stdin.readline()                    # start together
deadline = time.monotonic() + 120
while queue := backend.list_runs_in_states(["Queued"]):
    if time.monotonic() > deadline:
        sys.exit(f"runs still queued: {[run.id for run in queue]}")
    for run in queue:
        if backend.claim_run(run.id, me, 600.0) is not None:
            print(run.id, flush=True)
"""

# What every agent does besides: fail the runs whose lease ran out, until all have ended.
EXPIRE_SCRIPT = """
import sys, time
from modelyard.backend.local import LocalBackend
backend = LocalBackend("ws", sys.argv[1], sys.argv[2])
runs = sys.argv[3:]
sys.stdin.readline()
deadline = time.monotonic() + 120
while not all(backend.get_run(r).status == "Failed" for r in runs):
    if time.monotonic() > deadline:
        sys.exit("runs still active after 120 s")
    for run in backend.expire_leases():
        print(run.id, flush=True)
"""


@pytest.fixture
def pg_workspace(tmp_path: Path, postgres_url: str) -> Workspace:
    return Workspace.create("pg-ws", folder=tmp_path / "ws", database_url=postgres_url)


@pytest.mark.slow
def test_eight_processes_log_into_one_metric_without_loss_or_reuse(
    pg_workspace: Workspace,
) -> None:
    exp = Experiment(pg_workspace, "concurrent")
    run = exp.start_logging()
    start_together(
        [[LOG_SCRIPT, str(pg_workspace.folder), run.id, str(n)] for n in range(PROCESSES)],
        forbidden=("sqlalchemy", "psycopg"),
    )
    values = Run(exp, run.id).get_metrics("points")["points"]
    assert sorted(values) == list(range(PROCESSES * 10_000))
    # Every chunk starts where the one before it ended: positions unique and without a gap.
    with pg_workspace._backend.db.read() as conn:  # type: ignore[attr-defined]
        metric = conn.execute(
            sa.select(t.metrics.c.id, t.metrics.c.count).where(t.metrics.c.run_id == run.id)
        ).one()
        chunks = conn.execute(
            sa.select(t.metric_chunks.c.first_index, t.metric_chunks.c.count)
            .where(t.metric_chunks.c.metric_id == metric.id)
            .order_by(t.metric_chunks.c.first_index)
        ).all()
    assert metric.count == PROCESSES * 10_000
    position = 0
    for first_index, count in chunks:
        assert first_index == position
        position += count
    assert position == PROCESSES * 10_000


@pytest.mark.slow
def test_ten_processes_race_for_names_numbers_tags_and_versions(
    pg_workspace: Workspace, tmp_path: Path
) -> None:
    shared = Experiment(pg_workspace, "concurrent").start_logging()
    model_file = tmp_path / "model.txt"
    model_file.write_text("weights")
    outputs = start_together(
        [
            [RACE_SCRIPT, str(pg_workspace.folder), shared.id, str(n), str(model_file)]
            for n in range(RACERS)
        ],
        forbidden=("sqlalchemy", "psycopg"),
    )
    numbers = sorted(int(line.split()[0]) for line in outputs)
    versions = sorted(int(line.split()[1]) for line in outputs)
    assert numbers == list(range(1, RACERS + 1))
    assert versions == list(range(1, RACERS + 1))
    assert [e for e in pg_workspace.experiments] == ["concurrent", "raced"]
    assert shared.get_tags() == {f"writer-{n}": str(n) for n in range(RACERS)}
    models = Model.list(pg_workspace, name="shared-name")
    assert sorted(m.tags["writer"] for m in models) == sorted(str(n) for n in range(RACERS))


def _queue(database_url: str, files_url: str, count: int) -> tuple[LocalBackend, list[str]]:
    backend = LocalBackend("ws", database_url, files_url)
    runs = [f"queued-{n:02}" for n in range(count)]
    for run_id in runs:
        backend.create_run(run_id, "agents", run_type="script", status=QUEUED)
    return backend, runs


def test_agents_sharing_a_database_claim_each_queued_run_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    files = (tmp_path / "files").as_uri()
    backend, runs = _queue(database_url, files, QUEUED_RUNS)

    outputs = start_together(
        [[CLAIM_SCRIPT, database_url, files, f"agent-{n}"] for n in range(AGENTS)],
        forbidden=("sqlalchemy", "psycopg"),
    )

    claimed = {f"agent-{n}": out.split() for n, out in enumerate(outputs)}
    # Each run claimed (started) once: by one agent only, never twice by the same one.
    assert sorted(run_id for mine in claimed.values() for run_id in mine) == runs
    for agent, mine in claimed.items():
        for run_id in mine:
            record = backend.get_run(run_id)
            assert (record.status, record.lease_holder) == (PREPARING, agent)


def test_watchers_sharing_a_database_fail_each_expired_run_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    files = (tmp_path / "files").as_uri()
    backend, runs = _queue(database_url, files, QUEUED_RUNS)
    for run_id in runs:
        backend.claim_run(run_id, "vanished-agent", 0.05)  # and then it stopped answering

    outputs = start_together(
        [[EXPIRE_SCRIPT, database_url, files, *runs] for _ in range(AGENTS)],
        forbidden=("sqlalchemy", "psycopg"),
    )

    reported = sorted(run_id for out in outputs for run_id in out.split())
    assert reported == runs  # each run failed by one watcher, once
    for run_id in runs:
        record = backend.get_run(run_id)
        assert record.status == FAILED and record.error is not None
        assert "lease held by vanished-agent expired" in record.error["message"]
