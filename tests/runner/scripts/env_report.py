"""Reports the Python a run got: its interpreter, which modules import, and that the client
works from there."""

import importlib
import sys

from modelyard import Run

print("python:", sys.executable)
print("prefix:", sys.prefix)
for name in sys.argv[1:]:
    try:
        module = importlib.import_module(name)
    except ImportError:
        print(f"import {name}: missing")
    else:
        print(f"import {name}: {getattr(module, 'VERSION', 'ok')}")
Run.get_context().log("modules_checked", len(sys.argv) - 1)
