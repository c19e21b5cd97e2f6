"""Tracking speed of an embedded workspace.

Targets: 1,000,000 `run.log` calls logged and flushed in at most 2 s, all retrievable;
`get_metrics` of that 1,000,000-point metric in at most 1 s; `get_runs` over 10,000 runs in
at most 0.2 s.

Run: .venv/bin/python benchmarks/bench_tracking.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from modelyard import Experiment, Workspace
from modelyard.backend.records import RUNNING
from modelyard.run import INTERACTIVE, new_run_id

POINTS = 1_000_000
RUNS = 10_000


def _report(label: str, seconds: float, target: float) -> None:
    verdict = "ok" if seconds <= target else "SLOWER THAN TARGET"
    print(f"{label:<52} {seconds:8.3f} s   (target <= {target} s: {verdict})")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create("bench", folder=Path(tmp) / "ws")
        exp = Experiment(ws, "bench")

        run = exp.start_logging()
        start = time.perf_counter()
        for i in range(POINTS):
            run.log("loss", i * 0.001)
        run.flush()
        _report(f"run.log x {POINTS:,} + flush", time.perf_counter() - start, 2.0)

        timings = []
        for _ in range(3):
            start = time.perf_counter()
            values = run.get_metrics("loss")["loss"]
            timings.append(time.perf_counter() - start)
        assert len(values) == POINTS, len(values)
        _report(f"get_metrics of {POINTS:,} points (median of 3)", statistics.median(timings), 1.0)

        many = Experiment(ws, "many")
        start = time.perf_counter()
        for _ in range(RUNS):
            ws._backend.create_run(new_run_id("many"), "many", run_type=INTERACTIVE, status=RUNNING)
        print(
            f"{'(setup) create ' + format(RUNS, ',') + ' runs, one call each':<52} "
            f"{time.perf_counter() - start:8.3f} s"
        )
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            listed = list(many.get_runs())
            timings.append(time.perf_counter() - start)
        assert len(listed) == RUNS, len(listed)
        _report(f"get_runs over {RUNS:,} runs (median of 5)", statistics.median(timings), 0.2)


if __name__ == "__main__":
    main()
