"""An mpi4py allreduce over every rank; each rank writes what it got."""

import os

from mpi4py import MPI

from modelyard import Run

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
total = comm.allreduce(rank + 1, op=MPI.SUM)
assert os.environ["OMPI_COMM_WORLD_RANK"] == str(rank)
os.makedirs("outputs", exist_ok=True)
with open(f"outputs/rank_{rank}.txt", "w") as f:
    f.write(f"{rank} {size} {total} {os.environ['OMPI_COMM_WORLD_LOCAL_RANK']}")
Run.get_context().log("allreduce_sum", total)
print(f"rank {rank} of {size}: allreduce sum {total}", flush=True)
