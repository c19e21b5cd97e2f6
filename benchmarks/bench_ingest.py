"""Metric ingest into one metric of one run, from 1 and from 8 processes, on SQLite and on
PostgreSQL.

Each process opens the workspace, logs its points with ``run.log`` and flushes every
``--flush-every`` points (many small transactions, racing for the metric's row), then once at
the end; the figure is every point stored over the wall time from the common start to the
last process's end, checked by reading the metric back. PostgreSQL is the tests' throwaway
cluster (tests/postgres.py: Debian's postgresql, on a Unix socket).

Run: .venv/bin/python benchmarks/bench_ingest.py [--points 200000] [--flush-every 10000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modelyard import Experiment, Run, Workspace
from tests.postgres import PostgresServer

LOGGER = """
import sys
from modelyard import Experiment, Run, Workspace
ws = Workspace.get("bench", folder=sys.argv[1])
run = Run(Experiment(ws, "ingest"), sys.argv[2])
points, every, base = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print("ready", flush=True)
sys.stdin.readline()                   # start together
for i in range(points):
    run.log("value", float(base + i))
    if i % every == every - 1:
        run.flush()
run.flush()
"""


def measure(ws: Workspace, processes: int, points: int, every: int) -> float:
    run = Experiment(ws, "ingest").start_logging()
    per_process = points // processes
    started = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                LOGGER,
                str(ws.folder),
                run.id,
                str(per_process),
                str(every),
                str(n * per_process),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    for process in started:  # every interpreter has imported modelyard and opened the run
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
    start = time.perf_counter()
    for process in started:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in started:
        assert process.wait() == 0
    seconds = time.perf_counter() - start
    values = Run(Experiment(ws, "ingest"), run.id).get_metrics("value")["value"]
    assert sorted(values) == [float(i) for i in range(per_process * processes)], "points lost"
    return per_process * processes / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--flush-every", type=int, default=10_000)
    args = parser.parse_args()
    server = PostgresServer.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workspaces = {
                "SQLite": Workspace.create("bench", folder=Path(tmp) / "sqlite"),
                "PostgreSQL": Workspace.create(
                    "bench", folder=Path(tmp) / "pg", database_url=server.new_database()
                ),
            }
            for name, ws in workspaces.items():
                for processes in (1, 8):
                    rate = measure(ws, processes, args.points, args.flush_every)
                    print(
                        f"{name:<11} {processes} process{'es' if processes > 1 else '  '}: "
                        f"{rate:>10,.0f} points/s stored ({args.points:,} points, a flush "
                        f"every {args.flush_every:,})"
                    )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
