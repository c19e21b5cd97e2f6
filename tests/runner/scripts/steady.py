"""Logs metric points and flushes them, writes an output and a log, then waits: until the
file named by --until exists (and ends well), or for ten minutes. A grandchild in its process
group; with --ignore-term it survives SIGTERM, so only SIGKILL stops it."""

import argparse
import os
import signal
import subprocess
import sys
import time

from modelyard import Run

parser = argparse.ArgumentParser()
parser.add_argument("--points", type=int, default=100)
parser.add_argument("--until", default=None)
parser.add_argument("--ignore-term", action="store_true")
args = parser.parse_args()
if args.ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
run = Run.get_context()
for i in range(args.points):
    run.log("value", i)
run.flush()  # every point above is stored once this returns
os.makedirs("outputs", exist_ok=True)
with open("outputs/partial.txt", "w") as f:
    f.write("half-way")
os.makedirs("logs", exist_ok=True)
with open("logs/progress.txt", "w") as f:
    f.write(f"{args.points} points")
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open("child.pid", "w") as f:
    f.write(str(child.pid))
print("flushed", args.points, flush=True)
deadline = time.monotonic() + 600
while time.monotonic() < deadline:
    if args.until and os.path.exists(args.until):
        break
    time.sleep(0.05)
child.kill()
print("done", flush=True)
