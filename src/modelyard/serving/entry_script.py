"""The entry script of a service: checked before anything starts, imported by each worker.

Example::

    check_entry_script(Path("svc/score.py"))        # ValidationError: no init() or run()
    module = load_entry_script("/srv/svc/source/score.py", "/srv/svc/source")
    module.init()
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from modelyard.errors import ValidationError

SCRIPT_MODULE = "score"


def check_entry_script(path: Path) -> None:
    """ValidationError unless ``path`` is a Python file defining ``init`` and ``run``: found
    before anything is started, without running the script."""
    if not path.is_file():
        raise ValidationError("entry_script", f"{path} is not a file; give the scoring script")
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as error:
        raise ValidationError("entry_script", f"{path} is not valid Python: {error}") from None
    defined = {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    missing = [name for name in ("init", "run") if name not in defined]
    if missing:
        raise ValidationError(
            "entry_script",
            f"{path} defines no {' and no '.join(f'{m}()' for m in missing)}: a scoring script "
            "needs init() (load the model) and run(raw_data) (answer one request)",
        )


def load_entry_script(path: str, source_directory: str | None) -> ModuleType:
    """Import the entry script as the module ``score``, its folder first on ``sys.path`` (so
    its own imports of the source folder work, as in v1)."""
    folder = source_directory or os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(SCRIPT_MODULE, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import the entry script {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[SCRIPT_MODULE] = module
    spec.loader.exec_module(module)
    for name in ("init", "run"):
        if not callable(getattr(module, name, None)):
            raise RuntimeError(f"the entry script {path} has no {name}() function")
    return module
