"""Every process writes its pid and sleeps: for tests that stop a distributed run."""

import os
import time

index = int(os.environ["MODELYARD_PROCESS_INDEX"])
os.makedirs("pids", exist_ok=True)
with open(f"pids/{index}.pid", "w") as f:
    f.write(str(os.getpid()))
print(f"process {index} sleeping", flush=True)
time.sleep(600)
