"""Process 1 fails with exit code 3; the others wait (forever, unless stopped)."""

import os
import sys
import time

index = int(os.environ["MODELYARD_PROCESS_INDEX"])
os.makedirs("pids", exist_ok=True)
with open(f"pids/{index}.pid", "w") as f:
    f.write(str(os.getpid()))
print(f"process {index} up", flush=True)
if index == 1:
    # Once every process is up, so the test can see them all stopped.
    deadline = time.monotonic() + 60
    while len(os.listdir("pids")) < int(os.environ["MODELYARD_PROCESS_COUNT"]):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    print("rank 1 breaks down", file=sys.stderr, flush=True)
    sys.exit(3)
time.sleep(600)
