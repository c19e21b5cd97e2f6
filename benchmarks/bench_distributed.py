"""From Running to every process having joined its group (one allreduce returned), for 2 and 4
processes of each of MPI (mpi4py), PyTorch (gloo) and TensorFlow (MultiWorkerMirroredStrategy),
against the same script started by hand: ``mpirun``, ``torchrun`` and a shell loop setting
``TF_CONFIG``.

What is timed:

- **modelyard**: from the moment the run is Running (this process polls its status every
  2 ms) to the last process's allreduce returning. Submit, the agent and Preparing are not in
  it (``bench_submit_latency.py`` times those).
- **by hand**: from just before the launcher command starts to the last allreduce returning.

Each figure is the median of ``--repeats`` tries; the ratio is modelyard / by hand. Most of
each figure is the framework's own start (TensorFlow imports in 7-13 s per process here, and
several processes import at once on two cores).

Run: .venv/bin/python benchmarks/bench_distributed.py [--repeats 3] [--counts 2,4]
     [--frameworks mpi,pytorch,tensorflow]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modelyard import Experiment, Workspace
from modelyard.backend.records import RUNNING, TERMINAL_STATES
from modelyard.compute.local import stop_agent
from modelyard.distributed import MpiConfiguration, PyTorchConfiguration, TensorflowConfiguration
from modelyard.runner.launchers import free_ports
from modelyard.script_run_config import ScriptRunConfig

JOIN = Path(__file__).with_name("distributed_join.py")
PYTHON = sys.executable
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
TF_LOOP = """
for i in $(seq 0 $((COUNT - 1))); do
  task="{\\"type\\": \\"worker\\", \\"index\\": $i}"
  TF_CONFIG="{\\"cluster\\": {\\"worker\\": $WORKERS}, \\"task\\": $task}" \\
    "$PYTHON" "$JOIN" tensorflow "$OUT" &
done
wait
"""


def joined_at(out: Path, count: int) -> float:
    """When the last process's allreduce returned."""
    times = [float((out / f"{index}.txt").read_text()) for index in range(count)]
    return max(times)


def by_hand(framework: str, count: int, out: Path) -> float:
    env = dict(ENV)
    if framework == "mpi":
        command = ["mpirun", "-np", str(count)]
        if os.geteuid() == 0:
            command.append("--allow-run-as-root")
        if count > (os.cpu_count() or 1):
            command.append("--oversubscribe")
        command += [PYTHON, str(JOIN), "mpi", str(out)]
    elif framework == "pytorch":
        torchrun = str(Path(PYTHON).with_name("torchrun"))
        command = [torchrun, "--standalone", f"--nproc-per-node={count}", str(JOIN), "pytorch"]
        command.append(str(out))
    else:
        workers = [f"127.0.0.1:{port}" for port in free_ports(count)]
        env.update(
            COUNT=str(count),
            WORKERS=json.dumps(workers),
            PYTHON=PYTHON,
            JOIN=str(JOIN),
            OUT=str(out),
        )
        command = ["bash", "-c", TF_LOOP]
    started = time.time()
    subprocess.run(
        command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return joined_at(out, count) - started


def with_modelyard(
    experiment: Experiment, source: Path, framework: str, count: int, out: Path
) -> float:
    config = {
        "mpi": MpiConfiguration(process_count_per_node=count),
        "pytorch": PyTorchConfiguration(process_count=count),
        "tensorflow": TensorflowConfiguration(worker_count=count, parameter_server_count=0),
    }[framework]
    run = experiment.submit(
        ScriptRunConfig(
            source,
            JOIN.name,
            arguments=[framework, str(out)],
            distributed_job_config=config,
        )
    )
    backend = experiment.workspace._backend
    running_at = None
    while running_at is None:
        status = backend.get_run(run.id).status
        if status == RUNNING:
            running_at = time.time()
        elif status in TERMINAL_STATES:
            raise SystemExit(f"run {run.id} ended {status} before it was seen Running")
        else:
            time.sleep(0.002)
    run.wait_for_completion()
    return joined_at(out, count) - running_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--counts", default="2,4")
    parser.add_argument("--frameworks", default="mpi,pytorch,tensorflow")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    frameworks = args.frameworks.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "src"
        source.mkdir()
        shutil.copy(JOIN, source / JOIN.name)
        workspace = Workspace.create("bench", folder=Path(tmp) / "ws")
        experiment = Experiment(workspace, "distributed")
        # Starts the compute agent, and warms the disk cache: not measured.
        warm = Path(tmp) / "warm"
        warm.mkdir()
        with_modelyard(experiment, source, "mpi", 2, warm)
        print(f"{os.cpu_count()} cores; median of {args.repeats} tries; times in seconds")
        print(f"{'framework':<11} {'processes':>9} {'by hand':>9} {'modelyard':>10} {'ratio':>6}")
        for framework in frameworks:
            for count in counts:
                hand, ours = [], []
                for attempt in range(args.repeats):
                    for label, results in (("hand", hand), ("ours", ours)):
                        out = Path(tmp) / f"{framework}-{count}-{attempt}-{label}"
                        out.mkdir()
                        if label == "hand":
                            results.append(by_hand(framework, count, out))
                        else:
                            results.append(
                                with_modelyard(experiment, source, framework, count, out)
                            )
                hand_s, ours_s = statistics.median(hand), statistics.median(ours)
                print(
                    f"{framework:<11} {count:>9} {hand_s:>9.2f} {ours_s:>10.2f} "
                    f"{ours_s / hand_s:>6.2f}",
                    flush=True,
                )
        stop_agent(workspace.folder)


if __name__ == "__main__":
    main()
