"""The training loop ``bench_cluster_ddp.py`` times on both sides: a small MLP on random data,
DistributedDataParallel over the process group the caller set up (gloo).

As a modelyard run's script (each of the run's processes; modelyard sets ``MASTER_ADDR``,
``RANK``, ``WORLD_SIZE``, ...)::

    python cluster_ddp_loop.py STEPS

prints, from rank 0, one line ``loop {"loop_s": ..., "steps": ..., "loss": ..., ...}``. Under
Ray Train, :func:`ray_train_func` is the ``train_func`` of a ``TorchTrainer``, which sets the
process group up itself; rank 0 writes the same result as JSON to ``config["result_file"]``.

Both sides run :func:`train` with the same seed, so the same data and the same first weights:
the final loss is the same number on both, the check that they did the same work.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

SEED = 0
BATCH = 64
BATCHES = 16  # the random data set: BATCHES batches per rank, cycled over the steps
FEATURES = 64
HIDDEN = 256
CLASSES = 10
# Two processes share this machine's two cores: one thread each, on both sides (Ray sets
# OMP_NUM_THREADS from a worker's CPUs, modelyard leaves it to the script).
THREADS = 1


def train(steps: int, seed: int = SEED) -> dict[str, Any]:
    """``steps`` DDP steps in the initialised process group; returns the loop's wall time
    (data and model made before the clock starts) and the final loss."""
    torch.set_num_threads(THREADS)
    rank, size = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(seed)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, CLASSES),
    )
    model = DistributedDataParallel(mlp)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(seed + 1 + rank)  # each rank its own shard
    inputs = torch.randn(BATCHES, BATCH, FEATURES, generator=generator)
    labels = torch.randint(0, CLASSES, (BATCHES, BATCH), generator=generator)
    loss = torch.zeros(())
    dist.barrier()
    started = time.perf_counter()
    for step in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(
            model(inputs[step % BATCHES]), labels[step % BATCHES]
        )
        loss.backward()
        optimizer.step()
    dist.barrier()
    loop_s = time.perf_counter() - started
    return {"loop_s": loop_s, "steps": steps, "loss": loss.item(), "rank": rank, "size": size}


def ray_train_func(config: dict[str, Any]) -> None:
    """Ray Train's side: the same loop; rank 0 writes its result to ``result_file``."""
    result = train(int(config["steps"]))
    if result["rank"] == 0:
        Path(config["result_file"]).write_text(json.dumps(result))


if __name__ == "__main__":
    dist.init_process_group("gloo")  # env://, as modelyard's PyTorch launcher sets it
    result = train(int(sys.argv[1]))
    if result["rank"] == 0:
        print(f"loop {json.dumps(result)}", flush=True)
    dist.barrier()
    dist.destroy_process_group()
    # torch 2.13's gloo threads sometimes abort the interpreter's teardown after the work is
    # done (SIGABRT, tests/runner/distributed_scripts/torch_ddp.py): leave without it.
    os._exit(0)
