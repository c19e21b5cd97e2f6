"""A small training script for the runner tests: logs, tags, writes outputs and logs."""

import os
import sys

print("started", flush=True)

from modelyard import Run  # noqa: E402

run = Run.get_context()
for step in range(3):
    run.log("loss", 1.0 / (step + 1))
run.log_row("table", a=1, b=2)
run.tag("phase", "train")
run.add_properties({"seed": "7"})
child = run.child_run("inner")
child.log("inner_metric", 5)
child.complete()
os.makedirs("outputs/model", exist_ok=True)
with open("outputs/model/weights.txt", "w") as f:
    f.write("w=1")
os.makedirs("logs", exist_ok=True)
with open("logs/events.txt", "w") as f:
    f.write("event")
with open("extra.txt", "w") as f:
    f.write("via upload_file")
run.upload_file("uploaded/extra.txt", "extra.txt")
print("args:", " ".join(sys.argv[1:]))
print("cwd has:", ",".join(sorted(os.listdir("."))))
print("metrics:", sorted(run.get_metrics()))
print("has context:", "MODELYARD_RUN_CONTEXT" in os.environ)
print("database in env:", any("sqlite" in v or "modelyard.db" in v for v in os.environ.values()))
print("stderr line", file=sys.stderr)
