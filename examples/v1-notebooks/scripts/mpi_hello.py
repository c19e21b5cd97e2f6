"""An MPI allreduce of the ranks: each rank prints the sum."""

from mpi4py import MPI

comm = MPI.COMM_WORLD
total = comm.allreduce(comm.Get_rank() + 1)
print(f"rank {comm.Get_rank()} of {comm.Get_size()}: sum {total}", flush=True)
assert total == comm.Get_size() * (comm.Get_size() + 1) // 2
