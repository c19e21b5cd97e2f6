"""Submit -> the script's first output line readable by the client, on a warm cluster: modelyard
against ``ray job submit`` of the same script on the same cluster.

The cluster is a local one made by modelyard (``min_nodes=1``: a node is up, so neither side
waits for Ray's autoscaler), with one unmeasured run of each side first. Then, alternating:

- **modelyard**: ``exp.submit(ScriptRunConfig(src, "hello.py", compute_target=target))``; the
  clock stops when ``user_logs/std_log.txt`` of the run (what ``run.wait_for_completion(
  show_output=True)`` streams) holds the line.
- **Ray Jobs**: ``JobSubmissionClient(dashboard_url).submit_job(entrypoint="python hello.py",
  runtime_env={"working_dir": src})``; the clock stops when ``get_job_logs`` holds the line.
  ``python`` is this interpreter, the one modelyard's run uses too (a bare ``python`` here is a
  pyenv shim, a shell script of its own start-up). Ray runs an entrypoint on the head unless it
  asks for CPUs (``--ray-entrypoint-cpus 2`` puts it on the worker node, as modelyard's run is).

Each modelyard run also shows when it was first seen in each status, and Ray's own figure for
its placement group (``placement_group_table()``): the rest is modelyard's (the admission's
poll, starting the run's host and its supervisor on the node).

Both clocks start just before the submit call, and both sides poll every ``--poll`` seconds.
Each side runs ``--runs`` times (each run ends before the next starts); the figures are the
median and the 90th percentile (nearest rank), and the ratio is Ray / modelyard.

Run: .venv/bin/python benchmarks/bench_cluster_submit.py [--runs 10] [--poll 0.01]
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from cluster_bench import (
    Cluster,
    Phases,
    connect_ray,
    local_cluster,
    median,
    percentile,
    run_group_latency,
    seconds,
)

from modelyard import Experiment
from modelyard.errors import NotFoundError
from modelyard.script_run_config import ScriptRunConfig

LINE = "first line"
TIMEOUT_S = 300.0


def modelyard_once(
    cluster: Cluster, exp: Experiment, source: Path, poll: float, ray: ModuleType
) -> tuple[float, Phases, float | None]:
    config = ScriptRunConfig(source, "hello.py", compute_target=cluster.target)
    backend = cluster.workspace._backend
    started = time.perf_counter()
    run = exp.submit(config)
    phases = Phases(started)
    while True:
        phases.note(backend.get_run(run.id).status)
        try:
            if LINE.encode() in backend.read_run_file(run.id, "user_logs/std_log.txt"):
                break
        except NotFoundError:
            pass
        if time.perf_counter() - started > TIMEOUT_S:
            raise SystemExit(f"run {run.id} printed nothing in {TIMEOUT_S:.0f} s")
        time.sleep(poll)
    elapsed = time.perf_counter() - started
    run.wait_for_completion()
    return elapsed, phases, run_group_latency(ray, run.id)


def ray_once(client: Any, source: Path, poll: float, entrypoint_cpus: float) -> float:
    from ray.job_submission import JobStatus

    entrypoint = f"{shlex.quote(sys.executable)} hello.py"
    started = time.perf_counter()
    job = client.submit_job(
        entrypoint=entrypoint,
        runtime_env={"working_dir": str(source)},
        entrypoint_num_cpus=entrypoint_cpus,
    )
    while LINE not in client.get_job_logs(job):
        if time.perf_counter() - started > TIMEOUT_S:
            raise SystemExit(f"Ray job {job} printed nothing in {TIMEOUT_S:.0f} s")
        time.sleep(poll)
    elapsed = time.perf_counter() - started
    deadline = time.monotonic() + TIMEOUT_S
    while not (status := client.get_job_status(job)).is_terminal():
        if time.monotonic() > deadline:
            raise SystemExit(f"Ray job {job} did not end in {TIMEOUT_S:.0f} s")
        time.sleep(0.05)
    if status != JobStatus.SUCCEEDED:
        raise SystemExit(f"Ray job {job} ended {status}:\n{client.get_job_logs(job)}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--poll", type=float, default=0.01, help="seconds between looks")
    parser.add_argument("--ray-entrypoint-cpus", type=float, default=0.0)
    args = parser.parse_args()
    with local_cluster("bench-submit", min_nodes=1) as cluster:
        source = cluster.folder / "src"
        source.mkdir()
        (source / "hello.py").write_text(f"print({LINE!r}, flush=True)\n")
        ray = connect_ray(cluster)  # the job client needs Ray imported with the cluster's token
        from ray.job_submission import JobSubmissionClient

        # Not a line per job about the working folder's upload between the figures.
        logging.getLogger("ray.dashboard.modules.dashboard_sdk").setLevel(logging.WARNING)
        client = JobSubmissionClient(cluster.state.dashboard_url)
        exp = Experiment(cluster.workspace, "submit-latency")
        # Unmeasured: the first run of each side (Ray uploads the working folder once).
        modelyard_once(cluster, exp, source, args.poll, ray)
        ray_once(client, source, args.poll, args.ray_entrypoint_cpus)
        ours: list[float] = []
        theirs: list[float] = []
        all_phases: list[Phases] = []
        for index in range(args.runs):
            elapsed, phases, group = modelyard_once(cluster, exp, source, args.poll, ray)
            ours.append(elapsed)
            all_phases.append(phases)
            theirs.append(ray_once(client, source, args.poll, args.ray_entrypoint_cpus))
            in_ray = "?" if group is None else f"{group:.3f} s"
            print(
                f"run {index + 1}: modelyard {ours[-1]:.3f} s (first seen: {phases}; its "
                f"placement group took {in_ray} in Ray), Ray Jobs {theirs[-1]:.3f} s",
                flush=True,
            )
    print(f"modelyard statuses, median first seen (s): {Phases.medians(all_phases)}")
    print(f"modelyard runs (s): {seconds(ours)}")
    print(f"Ray Jobs runs (s):  {seconds(theirs)}")
    for side, values in (("modelyard", ours), ("Ray Jobs", theirs)):
        print(
            f"{side:<9} submit -> first output line readable, {len(values)} runs: median "
            f"{median(values):.3f} s, p90 {percentile(values, 0.9):.3f} s"
        )
    print(
        f"ratio Ray Jobs / modelyard: median {median(theirs) / median(ours):.2f}, "
        f"p90 {percentile(theirs, 0.9) / percentile(ours, 0.9):.2f}"
    )


if __name__ == "__main__":
    main()
