"""A 2-node PyTorch DDP training loop (gloo; a small MLP on random data) through modelyard
against the same loop under Ray Train's ``TorchTrainer``, on the same local cluster.

The cluster is made by modelyard with both nodes up (``min_nodes=2``, nodes of 2 CPUs), so
neither side waits for the autoscaler. The loop is ``cluster_ddp_loop.train`` on both sides:
the same seed, data, model and step count (``--steps``), one thread per process.

- **modelyard**: ``PyTorch(src, "cluster_ddp_loop.py", node_count=2, distributed_training=
  PyTorchConfiguration(communication_backend="gloo", process_count=2, node_count=2))``; wall
  time from just before ``exp.submit`` to the run's status seen Completed (polled every
  ``--poll`` seconds), and the loop time rank 0 prints.
- **Ray Train**: ``TorchTrainer(ray_train_func, scaling_config=ScalingConfig(num_workers=2,
  resources_per_worker={"CPU": 2}), torch_config=TorchConfig(backend="gloo"))``, each worker a
  whole node; wall time from the ``trainer.fit()`` call to its return, and the loop time rank
  0 writes. Ray Train's results go to a temporary folder (``RunConfig(storage_path=...)``).

One unmeasured run of each side first, then ``--trials`` of each, alternating. Printed: each
trial, the medians, and the ratios modelyard / Ray Train of the wall times and of the loop
times; and the final loss of each side (the same number: the same work was done).

Run: .venv/bin/python benchmarks/bench_cluster_ddp.py [--steps 200] [--trials 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import cluster_ddp_loop
from cluster_bench import Cluster, connect_ray, local_cluster, median

from modelyard import Experiment
from modelyard.backend.records import COMPLETED, TERMINAL_STATES
from modelyard.distributed import PyTorchConfiguration
from modelyard.train import PyTorch

NODES = 2
LOOP = Path(cluster_ddp_loop.__file__)
TIMEOUT_S = 600.0


def modelyard_once(
    cluster: Cluster, exp: Experiment, source: Path, steps: int, poll: float
) -> tuple[float, dict[str, Any]]:
    est = PyTorch(
        str(source),
        LOOP.name,
        arguments=[str(steps)],
        compute_target=cluster.target,
        node_count=NODES,
        distributed_training=PyTorchConfiguration(
            communication_backend="gloo", process_count=NODES, node_count=NODES
        ),
    )
    started = time.perf_counter()
    run = exp.submit(est)
    while (status := run.get_status()) not in TERMINAL_STATES:
        if time.perf_counter() - started > TIMEOUT_S:
            raise SystemExit(f"run {run.id} did not end in {TIMEOUT_S:.0f} s")
        time.sleep(poll)
    wall = time.perf_counter() - started
    log = run._backend.read_run_file(run.id, "user_logs/std_log_process_00.txt", 0, 1 << 24)
    if status != COMPLETED:
        raise SystemExit(f"run {run.id} ended {status}: {run.get_details().get('error')}")
    lines = [line for line in log.decode().splitlines() if line.startswith("loop {")]
    if not lines:
        raise SystemExit(f"run {run.id} printed no loop line:\n{log.decode()[-2000:]}")
    return wall, json.loads(lines[-1].removeprefix("loop "))


def ray_once(cluster: Cluster, steps: int, trial: str) -> tuple[float, dict[str, Any]]:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    result_file = cluster.folder / f"ray-{trial}.json"
    trainer = TorchTrainer(
        cluster_ddp_loop.ray_train_func,
        train_loop_config={"steps": steps, "result_file": str(result_file)},
        scaling_config=ScalingConfig(num_workers=NODES, resources_per_worker={"CPU": 2}),
        torch_config=TorchConfig(backend="gloo"),
        run_config=RunConfig(name=f"ddp-{trial}", storage_path=str(cluster.folder / "ray")),
    )
    started = time.perf_counter()
    trainer.fit()
    wall = time.perf_counter() - started
    return wall, json.loads(result_file.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--poll", type=float, default=0.01, help="seconds between looks")
    args = parser.parse_args()
    with local_cluster("bench-ddp", min_nodes=NODES) as cluster:
        source = cluster.folder / "src"
        source.mkdir()
        shutil.copy(LOOP, source / LOOP.name)
        ray = connect_ray(cluster)
        # Ray Train's workers cannot import the loop's module (it is no installed package):
        # send its functions by value, as Ray sends those of a driver script.
        ray.cloudpickle.register_pickle_by_value(cluster_ddp_loop)
        exp = Experiment(cluster.workspace, "ddp")
        # Unmeasured: the first run of each side (page cache, Ray's first workers).
        modelyard_once(cluster, exp, source, args.steps, args.poll)
        ray_once(cluster, args.steps, "warm")
        ours: list[tuple[float, dict[str, Any]]] = []
        theirs: list[tuple[float, dict[str, Any]]] = []
        for trial in range(args.trials):
            ours.append(modelyard_once(cluster, exp, source, args.steps, args.poll))
            theirs.append(ray_once(cluster, args.steps, str(trial)))
            print(
                f"trial {trial + 1}: modelyard wall {ours[-1][0]:.2f} s (loop "
                f"{ours[-1][1]['loop_s']:.2f} s), Ray Train wall {theirs[-1][0]:.2f} s (loop "
                f"{theirs[-1][1]['loop_s']:.2f} s)",
                flush=True,
            )
    wall_ours, wall_theirs = median([w for w, _ in ours]), median([w for w, _ in theirs])
    loop_ours = median([r["loop_s"] for _, r in ours])
    loop_theirs = median([r["loop_s"] for _, r in theirs])
    print(f"final loss: modelyard {ours[-1][1]['loss']!r}, Ray Train {theirs[-1][1]['loss']!r}")
    print(
        f"2-node DDP, {args.steps} steps, median of {len(ours)}: modelyard wall "
        f"{wall_ours:.2f} s, loop {loop_ours:.2f} s; Ray Train wall {wall_theirs:.2f} s, "
        f"loop {loop_theirs:.2f} s"
    )
    print(
        f"ratio modelyard / Ray Train: wall {wall_ours / wall_theirs:.2f}, "
        f"loop {loop_ours / loop_theirs:.2f}"
    )


if __name__ == "__main__":
    main()
