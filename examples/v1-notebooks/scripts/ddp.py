"""PyTorch DDP over gloo: one step on each rank; rank 0 logs the loss."""

import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from modelyard import Run

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
model = DistributedDataParallel(torch.nn.Linear(4, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
inputs = torch.randn(16, 4, generator=torch.Generator().manual_seed(rank))
loss = model(inputs).pow(2).mean()
loss.backward()
optimizer.step()
if rank == 0:
    run = Run.get_context()
    run.log("loss", loss.item())
    run.flush()  # os._exit below skips the flush at exit
print(f"rank {rank} of {dist.get_world_size()}: loss {loss.item():.4f}", flush=True)
dist.barrier()
dist.destroy_process_group()
# torch 2.13's gloo threads sometimes abort the interpreter's teardown after the work is done
# (SIGABRT, about once in 20 runs here); everything is logged and flushed, so skip it.
os._exit(0)
