"""The script `bench_distributed.py` starts: join the framework's process group, do one
allreduce, write the time it returned to OUT/<process number>.txt.

    python distributed_join.py mpi|tensorflow|pytorch OUT
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def join(framework: str) -> int:
    """Join the group and allreduce; returns this process's number."""
    if framework == "mpi":
        from mpi4py import MPI

        assert MPI.COMM_WORLD.allreduce(1) == MPI.COMM_WORLD.Get_size()
        return MPI.COMM_WORLD.Get_rank()
    if framework == "pytorch":
        import torch
        import torch.distributed as dist

        dist.init_process_group("gloo")
        value = torch.ones(1)
        dist.all_reduce(value)
        assert value.item() == dist.get_world_size()
        rank = dist.get_rank()
        dist.destroy_process_group()
        return rank
    if framework == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        total = strategy.run(
            lambda: tf.distribute.get_replica_context().all_reduce("sum", tf.constant(1.0))
        )
        assert float(total) == strategy.num_replicas_in_sync
        return int(json.loads(os.environ["TF_CONFIG"])["task"]["index"])
    raise SystemExit(f"unknown framework {framework!r}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    index = join(sys.argv[1])
    (Path(sys.argv[2]) / f"{index}.txt").write_text(repr(time.time()))
