"""Many processes writing to one workspace whose metadata is in a real PostgreSQL: nothing
lost or stored twice, no raw database error, one object per name, contiguous versions.

SQLite's write lock hides these races; PostgreSQL lets transactions run side by side.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from modelyard import Experiment, Model, Run, Workspace
from modelyard.store import tables as t
from tests.helpers import start_together

PROCESSES = 8
RACERS = 10

LOG_SCRIPT = """
import sys
from modelyard import Workspace, Experiment, Run
ws = Workspace.get("pg-ws", location=sys.argv[1])
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
ws = Workspace.get("pg-ws", location=sys.argv[1])
shared_run, me, model_path = sys.argv[2], sys.argv[3], sys.argv[4]
sys.stdin.readline()
exp = Experiment(ws, "raced")                            # ensure_experiment, all at once
run = exp.start_logging()                # create_run: run numbers race
Run(Experiment(ws, "concurrent"), shared_run).tag(f"writer-{me}", me)   # set_run_tags
model = Model.register(ws, model_path, "shared-name", tags={"writer": me})
print(run.number, model.version)
"""


@pytest.fixture
def pg_workspace(tmp_path: Path, postgres_url: str) -> Workspace:
    return Workspace.create("pg-ws", location=tmp_path / "ws", database_url=postgres_url)


@pytest.mark.slow
def test_eight_processes_log_into_one_metric_without_loss_or_reuse(
    pg_workspace: Workspace,
) -> None:
    exp = Experiment(pg_workspace, "concurrent")
    run = exp.start_logging()
    start_together(
        [[LOG_SCRIPT, str(pg_workspace.location), run.id, str(n)] for n in range(PROCESSES)],
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
            [RACE_SCRIPT, str(pg_workspace.location), shared.id, str(n), str(model_file)]
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
