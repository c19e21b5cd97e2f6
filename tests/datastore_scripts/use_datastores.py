"""Uses, from inside a run, the datastore it was given and one it was not; prints one line
per attempt, and LEAKED if a credential of either is anywhere the script can see."""

import argparse
import os
from pathlib import Path

from modelyard import Run
from modelyard.datastore import Datastore
from modelyard.errors import ModelyardError

parser = argparse.ArgumentParser()
parser.add_argument("--data")
parser.add_argument("--secret")
args = parser.parse_args()

run = Run.get_context()
ws = run.experiment.workspace

# Everything but the arguments, which hold the test's copy of the secret to look for.
seen = [*os.environ.values()]
context_file = os.environ.get("MODELYARD_RUN_CONTEXT")
if context_file:
    seen.append(Path(context_file).read_text())
raw = Datastore.get(ws, "raw")
seen.append(repr(raw._record) + repr(ws._backend.list_datastores()))
print("LEAKED" if any(args.secret in text for text in seen) else "no credential seen")
print("mounted:", sorted(p.name for p in Path(args.data).iterdir()))

Path("made").mkdir()
(Path("made") / "by-run.txt").write_text("written in the run")
raw.upload("made", target_path="from-run", show_progress=False)
print("downloaded:", raw.download("back", prefix="in/", show_progress=False))
print("read back:", (Path("back") / "in" / "a.txt").read_text())


def attempt(what, call):
    try:
        call()
    except ModelyardError as error:
        print(f"refused: {what}: {type(error).__name__}", flush=True)
    else:
        print(f"ALLOWED: {what}", flush=True)


backend = ws._backend
attempt("get private", lambda: Datastore.get(ws, "private"))
attempt("list private", lambda: backend.list_datastore_files("private"))
attempt("read private", lambda: backend.open_datastore_file("private", "p.txt").read())
attempt(
    "write private",
    lambda: backend.upload_datastore_file("private", "x.txt", Path("made/by-run.txt")),
)
