"""Writes what a process of a distributed run sees, and logs a metric per process."""

import json
import os
import sys

from modelyard import Run

NAMES = (
    "TF_CONFIG",
    "MASTER_ADDR",
    "MASTER_PORT",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "NODE_RANK",
    "GROUP_RANK",
    "GROUP_WORLD_SIZE",
    "ROLE_RANK",
    "ROLE_WORLD_SIZE",
    "OMP_NUM_THREADS",
    "OMPI_COMM_WORLD_RANK",
    "OMPI_COMM_WORLD_SIZE",
    "OMPI_COMM_WORLD_LOCAL_RANK",
    "MODELYARD_PROCESS_INDEX",
    "MODELYARD_PROCESS_COUNT",
    "MY_SETTING",
)
index = int(os.environ["MODELYARD_PROCESS_INDEX"])
os.makedirs("outputs", exist_ok=True)
with open(f"outputs/env_{index}.json", "w") as f:
    json.dump({name: os.environ.get(name) for name in NAMES}, f)
run = Run.get_context()
run.log("index", index)
run.log("index", index * 10)
print(f"hello from process {index}", flush=True)
print(f"stderr of process {index}", file=sys.stderr, flush=True)
