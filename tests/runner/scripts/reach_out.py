"""Tries, from inside a run, what a script must not do to other runs and to the workspace;
prints one line per attempt. Then ends its own run with run.complete() before writing its
outputs, as some v1 scripts do."""

import argparse
import os
from pathlib import Path

from modelyard import Model, Run
from modelyard.errors import ModelyardError
from modelyard.experiment import Experiment

parser = argparse.ArgumentParser()
parser.add_argument("--other")
parser.add_argument("--other-experiment")
args = parser.parse_args()

run = Run.get_context()
ws = run.experiment.workspace
backend = ws._backend


def attempt(what, call):
    try:
        call()
    except ModelyardError as error:
        print(f"refused: {what}: {type(error).__name__}: {error}", flush=True)
    else:
        print(f"ALLOWED: {what}", flush=True)


attempt("complete another run", lambda: backend.update_run_status(args.other, "Completed"))
attempt("tag another run", lambda: backend.set_run_tags(args.other, {"owned": "yes"}))
attempt("read another run", lambda: backend.get_run(args.other))
attempt("log to another run", lambda: backend.log_metrics(args.other, []))
attempt("delete a model", lambda: backend.delete_model("precious", 1))
attempt("list experiments", lambda: backend.list_experiments())
attempt("another experiment", lambda: Experiment(ws, args.other_experiment))
attempt("list the queue", lambda: backend.list_runs_in_states(["Queued"]))
attempt(
    "read /etc/passwd through the supervisor",
    lambda: backend._call("upload_run_file", (run.id, "stolen.txt", Path("/etc/passwd")), {}),
)
os.symlink("/etc/passwd", "passwd-link")
attempt(
    "read a link out of the folder through the supervisor",
    lambda: backend._call(
        "upload_run_file", (run.id, "stolen2.txt", Path("passwd-link").absolute()), {}
    ),
)
attempt(
    "child run of another run",
    lambda: backend.create_run(
        "sneaky", run.experiment.name, run_type="child", status="Running", parent_id=args.other
    ),
)
attempt(
    "claim another run as a child",
    lambda: backend.create_run(
        args.other, run.experiment.name, run_type="child", status="Running", parent_id=run.id
    ),
)

# What a script may do: its own run, its children, models.
child = run.child_run("inner")
child.log("inner_metric", 5)
child.tag("kind", "child")
child.complete()
run.tag("phase", "train")
print("children:", [c.id == child.id for c in run.get_children()], flush=True)
Path("outside.txt").write_text("mine")
run.upload_file("uploaded/outside.txt", "outside.txt")
print("models seen:", [m.name for m in Model.list(ws)], flush=True)

run.complete()  # before its outputs are written: the supervisor still uploads them
Path("outputs/model").mkdir(parents=True)
Path("outputs/model/weights.txt").write_text("w")
print("done", flush=True)
