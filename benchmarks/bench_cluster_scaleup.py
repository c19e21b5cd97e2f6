"""Scale-up from 0 to 2 nodes until a 2-node run is Running: modelyard against Ray's autoscaler
alone bringing up the same nodes.

One local cluster made by modelyard (``min_nodes=0``, ``max_nodes=2``, nodes of 2 CPUs,
``idle_seconds_before_scaledown=5``). Before each trial the cluster is back at 0 nodes (its
compute target says so: ``get_status().current_node_count == 0``, none coming). Then, in turn:

- **modelyard**: from just before ``exp.submit`` of a 2-node run (``Estimator(...,
  node_count=2)``) to its status seen Running (``run.get_status()`` polled every ``--poll``
  seconds). The run's recorded start time is not used: it is when the run became Starting.
  In between: the admission claims the run and asks Ray for a placement group of two whole
  nodes, the autoscaler starts them, the admission places a host on each, and each node's
  supervisor prepares its part and starts its process.
- **Ray's autoscaler alone**: a driver (this process) creates a placement group of 2 bundles
  ``{"CPU": 2}``, ``STRICT_SPREAD``, on the same cluster, from just before the call to Ray
  reporting the group created (``placement_group_table``: its nodes up, its bundles
  reserved). Not ``pg.ready()``, which also waits for a Ray worker to start on a node.

Each trial also shows Ray's own figure for the placement group of either side (from its
creation request to its bundles reserved, ``placement_group_table()``): what is left of
modelyard's time is its own (claiming the run, starting the hosts and the supervisors).

``--trials`` trials of each, alternating; each trial is printed, then the medians, the
difference (target: modelyard within 1 s of Ray) and the ratio modelyard / Ray.

Run: .venv/bin/python benchmarks/bench_cluster_scaleup.py [--trials 3] [--poll 0.01]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from types import ModuleType

from cluster_bench import (
    Cluster,
    Phases,
    connect_ray,
    group_latency,
    local_cluster,
    median,
    run_group_latency,
    seconds,
)

from modelyard import Experiment
from modelyard.backend.records import RUNNING, TERMINAL_STATES
from modelyard.train import Estimator

NODES = 2
BUNDLE = {"CPU": 2.0}  # a whole node of the cluster's VM size, what modelyard asks for too
TIMEOUT_S = 300.0
TARGET_S = 1.0
# The run stays Running for a while, so a poll cannot miss it.
HOLD = "import sys, time\nprint('up', flush=True)\ntime.sleep(float(sys.argv[1]))\n"


def modelyard_once(
    cluster: Cluster, exp: Experiment, source: Path, poll: float, ray: ModuleType
) -> tuple[float, Phases, float | None]:
    est = Estimator(
        str(source), "hold.py", arguments=["2"], compute_target=cluster.target, node_count=NODES
    )
    started = time.perf_counter()
    run = exp.submit(est)
    phases = Phases(started)
    while (status := run.get_status()) != RUNNING:
        phases.note(status)
        if status in TERMINAL_STATES:
            raise SystemExit(f"run {run.id} ended {status} before it was seen Running")
        if time.perf_counter() - started > TIMEOUT_S:
            raise SystemExit(f"run {run.id} was not Running after {TIMEOUT_S:.0f} s")
        time.sleep(poll)
    elapsed = time.perf_counter() - started
    phases.note(status)
    latency = run_group_latency(ray, run.id)
    run.wait_for_completion()
    return elapsed, phases, latency


def ray_once(ray: ModuleType, trial: int, poll: float) -> tuple[float, float | None]:
    from ray.util.placement_group import (
        placement_group,
        placement_group_table,
        remove_placement_group,
    )

    name = f"bench-scaleup-{trial}"
    started = time.perf_counter()
    group = placement_group(
        [dict(BUNDLE) for _ in range(NODES)], strategy="STRICT_SPREAD", name=name
    )
    # Its nodes are up and its bundles reserved once Ray's control service says CREATED;
    # pg.ready() would add the start of a Ray worker on a node (it runs a task there).
    deadline = started + TIMEOUT_S
    while placement_group_table(group).get("state") != "CREATED":
        if time.perf_counter() > deadline:
            raise SystemExit(f"placement group {name} not created within {TIMEOUT_S} s")
        time.sleep(poll)
    elapsed = time.perf_counter() - started
    latency = group_latency(ray, name)
    remove_placement_group(group)
    return elapsed, latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--poll", type=float, default=0.01, help="seconds between looks")
    args = parser.parse_args()
    with local_cluster("bench-scaleup", min_nodes=0, idle_seconds=5) as cluster:
        source = cluster.folder / "src"
        source.mkdir()
        (source / "hold.py").write_text(HOLD)
        ray = connect_ray(cluster)
        exp = Experiment(cluster.workspace, "scale-up")
        ours: list[float] = []
        theirs: list[float] = []
        all_phases: list[Phases] = []
        for trial in range(args.trials):
            cluster.wait_for_nodes(0)
            elapsed, phases, our_group = modelyard_once(cluster, exp, source, args.poll, ray)
            ours.append(elapsed)
            all_phases.append(phases)
            cluster.wait_for_nodes(0)
            elapsed, their_group = ray_once(ray, trial, args.poll)
            theirs.append(elapsed)
            print(
                f"trial {trial + 1}: modelyard {ours[-1]:.2f} s (first seen: {phases}; its "
                f"placement group took {_maybe(our_group)} in Ray), Ray's autoscaler alone "
                f"{theirs[-1]:.2f} s (in Ray: {_maybe(their_group)})",
                flush=True,
            )
    print(f"modelyard statuses, median first seen (s): {Phases.medians(all_phases)}")
    print(f"modelyard trials (s):        {seconds(ours)}")
    print(f"Ray's autoscaler trials (s): {seconds(theirs)}")
    ours_s, theirs_s = median(ours), median(theirs)
    difference = ours_s - theirs_s
    verdict = "ok" if difference <= TARGET_S else "SLOWER THAN TARGET"
    print(
        f"scale-up 0 -> {NODES} nodes until a {NODES}-node run is Running, median of "
        f"{len(ours)}: modelyard {ours_s:.2f} s, Ray's autoscaler alone {theirs_s:.2f} s"
    )
    print(
        f"difference modelyard - Ray {difference:+.2f} s (target <= {TARGET_S:.0f} s: "
        f"{verdict}); ratio modelyard / Ray {ours_s / theirs_s:.2f}"
    )


def _maybe(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f} s"


if __name__ == "__main__":
    main()
