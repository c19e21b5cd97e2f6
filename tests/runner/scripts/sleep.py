"""Sleeps; with --ignore-term it survives SIGTERM, so only SIGKILL stops it."""

import signal
import subprocess
import sys
import time

if "--ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
# A grandchild in the same process group: stopping the run must stop it too.
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open("child.pid", "w") as f:
    f.write(str(child.pid))
print("sleeping", child.pid, flush=True)
time.sleep(600)
