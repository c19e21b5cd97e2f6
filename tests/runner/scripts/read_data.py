"""Lists the files of its --data folder and the data reference environment variables."""

import os
import sys

folder = sys.argv[sys.argv.index("--data") + 1]
for root, _, files in os.walk(folder):
    for name in sorted(files):
        path = os.path.join(root, name)
        with open(path) as f:
            print("file", os.path.relpath(path, folder), f.read())
print("env", {k: v for k, v in os.environ.items() if k.startswith("MODELYARD_DATAREFERENCE_")})
print("abs", os.path.isabs(folder), "inside_cwd", os.path.abspath(folder).startswith(os.getcwd()))
