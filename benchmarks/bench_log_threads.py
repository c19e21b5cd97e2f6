"""`run.log` throughput from one thread and from eight threads into one run.

The metric buffer takes a lock on every `run.log` so that threads cannot lose points; this
measures what that costs. Each measurement logs, flushes, then reads the metric back and counts
what was stored (and whether each thread's points kept their order).

With ``--against REF`` the same measurements run, interleaved, on the source tree of git
commit REF (checked out into a temporary worktree), and the ratios are printed: the target is
single-thread throughput at least 0.9 of REF's.

Run: .venv/bin/python benchmarks/bench_log_threads.py [--against REF] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SINGLE_POINTS = 1_000_000
THREADS = 8
POINTS_PER_THREAD = 100_000


def measure(threads: int, points_per_thread: int) -> dict[str, float | int | bool]:
    """Log ``points_per_thread`` points from each of ``threads`` threads into one metric."""
    from modelyard import Experiment, Workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create("bench", folder=Path(tmp) / "ws")
        run = Experiment(ws, "bench").start_logging()
        barrier = threading.Barrier(threads + 1)

        def log(thread: int) -> None:
            base = thread * points_per_thread
            barrier.wait()
            for i in range(points_per_thread):
                run.log("value", float(base + i))

        workers = [threading.Thread(target=log, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        barrier.wait()
        start = time.perf_counter()
        for worker in workers:
            worker.join()
        try:
            run.flush()
        except Exception as error:  # an older tree may report its lost points here
            print(f"  (flush raised {type(error).__name__}: {error})", file=sys.stderr)
        seconds = time.perf_counter() - start
        values = run.get_metrics("value").get("value", [])
        values = values if isinstance(values, list) else [values]
        in_order = True
        last: dict[int, float] = {}
        for value in values:
            thread = int(value) // points_per_thread
            if value <= last.get(thread, -1.0):
                in_order = False
            last[thread] = value
        run.complete()
    return {
        "seconds": seconds,
        "logged": threads * points_per_thread,
        "stored": len(values),
        "in_order": in_order,
    }


def _measure_in(src: Path, threads: int, points: int) -> dict[str, float | int | bool]:
    """Run :func:`measure` in a fresh interpreter importing modelyard from ``src``."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2]);"
        "from bench_log_threads import measure;"
        "print(json.dumps(measure(int(sys.argv[3]), int(sys.argv[4]))))"
    )
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(Path(__file__).parent),
            str(src),
            str(threads),
            str(points),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float | int | bool] = json.loads(out.strip().splitlines()[-1])
    return result


def _line(label: str, result: dict[str, float | int | bool]) -> str:
    rate = float(result["logged"]) / float(result["seconds"])
    lost = int(result["logged"]) - int(result["stored"])
    order = "in order" if result["in_order"] else "OUT OF ORDER"
    kept = float(result["stored"]) / float(result["seconds"])
    return (
        f"{label:<34} {rate / 1e6:6.3f} M logged/s, {kept / 1e6:6.3f} M stored/s   stored "
        f"{int(result['stored']):>9,} of {int(result['logged']):,} ({lost:,} lost, {order})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", help="a git commit to measure in the same run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    trees = {"this tree": ROOT / "src"}
    with tempfile.TemporaryDirectory() as tmp:
        if args.against:
            worktree = Path(tmp) / "against"
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(ROOT),
                    "worktree",
                    "add",
                    "--detach",
                    str(worktree),
                    args.against,
                ],
                check=True,
                capture_output=True,
            )
            trees[args.against] = worktree / "src"
        try:
            cases = {
                "1 thread": (1, SINGLE_POINTS),
                f"{THREADS} threads": (THREADS, POINTS_PER_THREAD),
            }
            results: dict[tuple[str, str], list[dict[str, float | int | bool]]] = {}
            for _ in range(args.rounds):  # interleaved, so load on the machine hits both alike
                for case, (threads, points) in cases.items():
                    for tree, src in trees.items():
                        results.setdefault((tree, case), []).append(
                            _measure_in(src, threads, points)
                        )
            medians = {}
            for (tree, case), runs in results.items():
                best = sorted(runs, key=lambda r: float(r["seconds"]))[len(runs) // 2]
                medians[(tree, case)] = best
                print(_line(f"{tree}, {case} (median of {len(runs)})", best))
            if args.against:
                for case in cases:
                    new = medians[("this tree", case)]
                    old = medians[(args.against, case)]
                    ratio = (float(new["logged"]) / float(new["seconds"])) / (
                        float(old["logged"]) / float(old["seconds"])
                    )
                    target = "  (target >= 0.9)" if case == "1 thread" else ""
                    print(f"throughput ratio, {case}: {ratio:.3f} of {args.against}{target}")
            else:
                rates = [
                    float(r["logged"]) / float(r["seconds"])
                    for r in results[("this tree", "1 thread")]
                ]
                print(f"1-thread rates: {', '.join(f'{r / 1e6:.3f}' for r in rates)} M/s")
                print(f"spread: {statistics.pstdev(rates) / statistics.mean(rates):.1%}")
        finally:
            if args.against:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                    capture_output=True,
                )


if __name__ == "__main__":
    main()
