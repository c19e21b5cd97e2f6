"""PyTorch DDP over gloo: an allreduce, then one optimiser step; writes the parameters' sum."""

import hashlib
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

dist.init_process_group("gloo")  # env://: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
rank, size = dist.get_rank(), dist.get_world_size()
value = torch.tensor([float(rank + 1)])
dist.all_reduce(value)

torch.manual_seed(rank)  # different starting weights: DDP must broadcast rank 0's
model = DistributedDataParallel(torch.nn.Linear(4, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
generator = torch.Generator().manual_seed(100 + rank)  # different data on each rank
inputs = torch.randn(8, 4, generator=generator)
loss = model(inputs).pow(2).mean()
loss.backward()
optimizer.step()
weights = repr([p.detach().flatten().tolist() for p in model.parameters()])
digest = hashlib.sha256(weights.encode()).hexdigest()[:16]
os.makedirs("outputs", exist_ok=True)
with open(f"outputs/rank_{rank}.txt", "w") as f:
    f.write(f"{value.item()} {digest} {os.environ['LOCAL_RANK']}")
print(f"rank {rank} of {size}: allreduce {value.item()}, parameters {digest}", flush=True)
dist.barrier()
dist.destroy_process_group()
# torch 2.13's gloo threads sometimes abort the interpreter's own teardown after all the work
# is done ("terminate called without an active exception", SIGABRT: seen about once in 20
# runs here); the results are written and flushed, so leave without that teardown.
os._exit(0)
