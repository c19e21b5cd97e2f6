"""Lists its --data folder and the files of its direct input ``files``."""

import json
import os
import sys

from modelyard import Run

folder = sys.argv[sys.argv.index("--data") + 1]
print("arg_files", json.dumps(sorted(os.listdir(folder))))
with open(os.path.join(folder, "a.gz"), "rb") as f:
    print("a_bytes", f.read().decode())
files = Run.get_context().input_datasets["files"]
print("direct_paths", json.dumps(files.to_path()))
