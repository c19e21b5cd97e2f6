"""Logs a metric, writes an output, then holds until the file named by its argument exists
(the test's signal; a deadline, so that a test that failed does not leave it running)."""

import os
import sys
import time

from modelyard import Run

run = Run.get_context()
run.log("answer", 42)
os.makedirs("outputs", exist_ok=True)
with open("outputs/result.txt", "w") as f:
    f.write("held and released")
print("holding", flush=True)
deadline = time.monotonic() + 300
while not os.path.exists(sys.argv[1]):
    if time.monotonic() > deadline:
        sys.exit("never released")
    time.sleep(0.1)
print("released", flush=True)
