"""1,000,000 `run.log` calls inside a submitted script, against MLflow logging the same way.

Target: the calls add at most 2 s to the script, and all
1,000,000 points are in the store when the run completes. The same logging with MLflow
(`mlflow.log_metric`, synchronous and asynchronous, to a local SQLite store) is measured in the
same run and reported as ratios. MLflow is not a dependency of modelyard: it runs from a
virtual environment of its own, made on the first run (benchmarks/mlflow_env.py).

Run: .venv/bin/python benchmarks/bench_script_logging.py
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from mlflow_env import mlflow_python

from modelyard import Experiment, Workspace
from modelyard.compute.local import stop_agent
from modelyard.script_run_config import ScriptRunConfig

POINTS = 1_000_000
MLFLOW_SYNC_POINTS = 3_000  # at a few hundred points/s, a million would take an hour
MLFLOW_ASYNC_POINTS = 20_000  # its asynchronous mode measured slower than synchronous here

SCRIPT = """
import sys, time
from modelyard import Run
run = Run.get_context()
log = sys.argv[1] == "log"
start = time.perf_counter()
total = 0.0
for i in range(int(sys.argv[2])):
    value = i * 0.5
    if log:
        run.log("value", value)
    else:
        total += value
run.flush()
print(f"LOOP {time.perf_counter() - start:.4f}")
"""

MLFLOW_SCRIPT = """
import sys, time, mlflow
mlflow.set_tracking_uri(f"sqlite:///{sys.argv[1]}")
mode, count = sys.argv[2], int(sys.argv[3])
with mlflow.start_run():
    start = time.perf_counter()
    for i in range(count):
        mlflow.log_metric("value", i * 0.5, step=i, synchronous=(mode == "sync"))
    if mode == "async":
        mlflow.flush_async_logging()
    elapsed = time.perf_counter() - start
    run_id = mlflow.active_run().info.run_id
stored = len(mlflow.MlflowClient().get_metric_history(run_id, "value"))
print(f"MLFLOW {elapsed:.4f} {stored}")
"""


def _submitted(exp: Experiment, source: Path, mode: str) -> tuple[float, float, str]:
    start = time.perf_counter()
    run = exp.submit(ScriptRunConfig(source, "log_many.py", arguments=[mode, POINTS]))
    run.wait_for_completion()
    wall = time.perf_counter() - start
    log = run._backend.read_run_file(run.id, "user_logs/std_log.txt").decode()
    loop = float(log.split("LOOP ")[1].split()[0])
    return wall, loop, run.id


def main() -> None:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        source = Path(tmp) / "src"
        source.mkdir()
        (source / "log_many.py").write_text(SCRIPT)
        ws = Workspace.create("bench", folder=Path(tmp) / "ws")
        exp = Experiment(ws, "logging")
        _submitted(exp, source, "none")  # warm the agent and the page cache
        base_wall, base_loop, _ = _submitted(exp, source, "none")
        wall, loop, run_id = _submitted(exp, source, "log")
        stored = len(exp.workspace._backend.get_metric_series(run_id, ["value"])[0].values)
        stop_agent(ws.folder)
        added = wall - base_wall
        verdict = "ok" if added <= 2.0 and stored == POINTS else "MISSES TARGET"
        print(
            f"modelyard: {POINTS:,} run.log calls in a submitted script: loop {loop:.2f} s "
            f"(without logging {base_loop:.2f} s); run wall {wall:.2f} s vs {base_wall:.2f} s "
            f"-> adds {added:.2f} s; {stored:,} points stored "
            f"(target <= 2 s added, all stored: {verdict})"
        )
        rate = POINTS / max(loop - base_loop, 1e-9)

        try:
            python = mlflow_python()
        except RuntimeError as error:
            print(f"no comparison with MLflow: {error}")
            return
        env = {**os.environ, "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}
        for mode, count in (("sync", MLFLOW_SYNC_POINTS), ("async", MLFLOW_ASYNC_POINTS)):
            db = Path(tmp) / f"mlflow-{mode}.db"
            out = subprocess.run(
                [python, "-c", MLFLOW_SCRIPT, str(db), mode, str(count)],
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp,
            )
            if out.returncode != 0:
                print(f"MLflow {mode} failed: {out.stderr[-500:]}")
                continue
            seconds, mlflow_stored = out.stdout.split("MLFLOW ")[1].split()
            mlflow_rate = count / float(seconds)
            print(
                f"MLflow log_metric ({mode}): {count:,} points in {float(seconds):.2f} s = "
                f"{mlflow_rate:,.0f} points/s ({mlflow_stored} stored); a million would take "
                f"{POINTS / mlflow_rate:,.0f} s. modelyard logs and stores {rate:,.0f} points/s: "
                f"{rate / mlflow_rate:,.0f}x"
            )


if __name__ == "__main__":
    main()
