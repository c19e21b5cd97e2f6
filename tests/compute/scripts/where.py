"""Prints where it runs (its node's working folder), logs a metric, sleeps when asked."""

import os
import sys
import time

from modelyard import Run

run = Run.get_context()
print(
    f"hello from {os.getcwd()} process {os.environ.get('MODELYARD_PROCESS_INDEX', '0')}", flush=True
)
run.log("answer", 42)
os.makedirs("outputs", exist_ok=True)
with open(f"outputs/where_{os.environ.get('MODELYARD_PROCESS_INDEX', '0')}.txt", "w") as f:
    f.write(os.getcwd())
# What of the cluster's settings reached the script: nothing (its token above all).
with open("outputs/ray_variables.txt", "w") as f:
    f.write(" ".join(sorted(name for name in os.environ if name.startswith("RAY_"))))
if len(sys.argv) > 1:
    time.sleep(float(sys.argv[1]))
print("done", flush=True)
