"""From `exp.submit` returning to the script's first line of output being readable by the user.

Target: median at most 0.5 s over 20 runs of a small script.
The clock stops when the line can be read from the run's `user_logs/std_log.txt`, the file
`run.wait_for_completion(show_output=True)` streams, so it includes shipping the output.
Measured on a workspace whose metadata is in SQLite (the default) and on one whose metadata is
in PostgreSQL (a throwaway cluster of Debian's postgresql on a Unix socket, tests/postgres.py).

Run: .venv/bin/python benchmarks/bench_submit_latency.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.postgres

from modelyard import Experiment, Workspace
from modelyard.compute.local import stop_agent
from modelyard.errors import NotFoundError
from modelyard.script_run_config import ScriptRunConfig
from tests.postgres import PostgresServer

RUNS = 20


def main() -> None:
    server = PostgresServer.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "src"
            source.mkdir()
            (source / "hello.py").write_text("print('first line', flush=True)\n")
            measure("SQLite", Workspace.create("bench", folder=Path(tmp) / "sqlite"), source)
            pg = Workspace.create(
                "bench", folder=Path(tmp) / "pg", database_url=server.new_database()
            )
            measure("PostgreSQL", pg, source)
    finally:
        server.stop()


def measure(name: str, ws: Workspace, source: Path) -> None:
    latencies = first_line_latencies(ws, source, RUNS)
    stop_agent(ws.folder)
    median = statistics.median(latencies)
    verdict = "ok" if median <= 0.5 else "SLOWER THAN TARGET"
    print(
        f"{name:<10} submit returned -> first output line readable, {RUNS} runs: "
        f"median {median:.3f} s, min {min(latencies):.3f} s, max {max(latencies):.3f} s "
        f"(target median <= 0.5 s: {verdict})"
    )


def first_line_latencies(ws: Workspace, source: Path, runs: int) -> list[float]:
    """Seconds from ``exp.submit`` returning to ``source/hello.py``'s first line being
    readable, for each of ``runs`` runs (after one unmeasured run that starts the agent)."""
    exp = Experiment(ws, "latency")
    config = ScriptRunConfig(source, "hello.py")
    exp.submit(config).wait_for_completion()  # starts the compute agent: not measured
    latencies = []
    for _ in range(runs):
        run = exp.submit(config)
        returned = time.perf_counter()
        while True:
            try:
                if ws._backend.read_run_file(run.id, "user_logs/std_log.txt"):
                    break
            except NotFoundError:
                pass
            time.sleep(0.002)
        latencies.append(time.perf_counter() - returned)
        run.wait_for_completion()
    return latencies


if __name__ == "__main__":
    main()
