"""Keeps its arguments, a few variables and the files of its data references in
outputs/seen.json, and says hello."""

import json
import os
import sys

os.makedirs("outputs", exist_ok=True)
names = ("MY_SETTING", "FROM_ENVIRONMENT", "MODELYARD_PROCESS_INDEX")
seen = {"argv": sys.argv[1:], "executable": sys.executable}
seen.update({name: os.environ.get(name) for name in names})
prefix = "MODELYARD_DATAREFERENCE_"
seen["data"] = {
    name[len(prefix) :]: sorted(os.listdir(path))
    for name, path in os.environ.items()
    if name.startswith(prefix)
}
with open("outputs/seen.json", "w") as f:
    json.dump(seen, f)
print("hello from hello.py", flush=True)
