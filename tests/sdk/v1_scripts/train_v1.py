"""A v1-style training script: logs, writes outputs, prints; its arguments are echoed."""

import sys

from modelyard import Run

run = Run.get_context()
run.log("accuracy", 0.9)
print("training with", " ".join(sys.argv[1:]))
print("a line on stderr", file=sys.stderr)
