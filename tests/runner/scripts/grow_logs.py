"""Prints lines and grows ./logs/progress.txt in two steps, waiting each time until its run's
store holds the file as written (read back through the run), so the supervisor's sync sees
the file new and then grown."""

import os
import sys
import tempfile
import time

from modelyard import Run

FIRST = b"".join(b"step %04d\n" % i for i in range(100))  # 1,000 bytes
SECOND = b"".join(b"more %04d\n" % i for i in range(150))  # 1,500 bytes


def wait_stored(run: Run, expected: bytes) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if "logs/progress.txt" in run.get_file_names():
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "p.txt")
                run.download_file("logs/progress.txt", path)
                with open(path, "rb") as f:
                    if f.read() == expected:
                        return
        time.sleep(0.2)
    sys.exit("logs/progress.txt was not stored within 60 s")


run = Run.get_context()
for i in range(200):
    print(f"output line {i}")
os.makedirs("logs")
with open("progress.tmp", "wb") as f:
    f.write(FIRST)
os.rename("progress.tmp", "logs/progress.txt")  # appears whole: the sync sees it new
wait_stored(run, FIRST)
with open("logs/progress.txt", "ab") as f:
    f.write(SECOND)  # one write, inside one page: the sync sees it grown, once
wait_stored(run, FIRST + SECOND)
print("grown", flush=True)
