"""The layers stay layers: SDK nouns -> compute interface and the Backend contract -> backends.

The runner (agent, supervisor, launchers, processes, environment builds) runs where the runs
run, possibly on a node that reaches the workspace only over a network: it may use the contract,
plain records and the store, never an SDK noun nor a concrete backend. The SDK reaches the
runner only through the compute interface (``modelyard.compute``). Imports are read from the
source (function-level imports included, ``if TYPE_CHECKING:`` blocks left out), so an import
hidden inside a function to dodge a cycle is seen too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import modelyard

PACKAGE = Path(modelyard.__file__).parent
# Modules that hold SDK nouns or serve only their users. The package itself is not one: it
# names its nouns lazily (``from modelyard import Run`` is read as an import of modelyard.run),
# and ``import modelyard`` for its version or folder imports none of them.
SDK_MODULES = {
    "modelyard.workspace",
    "modelyard.workspace_config",
    "modelyard.experiment",
    "modelyard.run",
    "modelyard.run_context",
    "modelyard.run_details",
    "modelyard.run_files",
    "modelyard.offline",
    "modelyard.model",
    "modelyard.model_arguments",
    "modelyard.datastore",
    "modelyard.dataset",
    "modelyard.data",
    "modelyard.data.abstract_dataset",
    "modelyard.data.data_reference",
    "modelyard.data.datapath",
    "modelyard.data.dataset_consumption_config",
    "modelyard.data.dataset_factory",
    "modelyard.data.file_dataset",
    "modelyard.data.run_inputs",
    "modelyard.data.tabular_dataset",
    "modelyard.environment",
    "modelyard.train",
    "modelyard.script_run_config",
    "modelyard.distributed",
    "modelyard.metrics",
    "modelyard.submit",
    "modelyard.follow",
    "modelyard.compute",
    "modelyard.compute.base",
    "modelyard.compute.local",
    "modelyard.cli",
}
# The one call-time import the SDK keeps: Run.get_context builds a Workspace (which lists
# Experiments, which hold Runs), so the context module sits above every noun.
ALLOWED_CYCLE_EDGES = {("modelyard.run", "modelyard.run_context")}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str) -> set[str]:
    """The modelyard modules ``module`` imports when it runs (at import or in a call)."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if _is_type_checking(node.test):
                for statement in node.orelse:
                    self.visit(statement)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            for alias in node.names:
                if (target := _resolve(alias.name)) is not None:
                    found.add(target)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module is None or node.level:
                return
            for alias in node.names:
                if node.module == "modelyard" and alias.name in modelyard._EXPORTS:
                    found.add(modelyard._EXPORTS[alias.name])
                    continue
                target = _resolve(f"{node.module}.{alias.name}") or _resolve(node.module)
                if target is not None:
                    found.add(target)

    Visitor().visit(ast.parse(MODULES[module].read_text()))
    found.discard(module)
    return found


def test_the_runner_imports_no_sdk_noun_and_no_concrete_backend() -> None:
    runner = [name for name in MODULES if name.startswith("modelyard.runner")]
    assert "modelyard.runner.supervisor" in runner and "modelyard.runner.agent" in runner
    wrong = {
        (module, target)
        for module in runner
        for target in imports_of(module)
        if target in SDK_MODULES or target.startswith(("modelyard.backend.local", "modelyard.cli"))
    }
    assert not wrong, f"runner modules importing the SDK or a concrete backend: {sorted(wrong)}"
    casts = [name for name in runner if "LocalBackend" in MODULES[name].read_text()]
    assert not casts, f"runner modules naming a concrete backend: {casts}"


def test_the_sdk_reaches_the_runner_only_through_the_compute_interface() -> None:
    """No SDK module starts, wakes or imports the agent or the supervisor itself."""
    machinery = {"modelyard.runner.agent", "modelyard.runner.supervisor"}
    wrong = {
        (module, target)
        for module in MODULES
        if not module.startswith("modelyard.runner")
        for target in imports_of(module) & machinery
    }
    assert not wrong, f"modules reaching the runner's machinery directly: {sorted(wrong)}"


def test_no_import_cycle_but_the_documented_one() -> None:
    graph = {
        module: {
            target for target in imports_of(module) if (module, target) not in ALLOWED_CYCLE_EDGES
        }
        for module in MODULES
    }
    cycles = _cycles(graph)
    assert not cycles, f"import cycles: {cycles}"
    # The allowed edge is still needed: when it goes, take it out of ALLOWED_CYCLE_EDGES.
    for module, target in ALLOWED_CYCLE_EDGES:
        assert target in imports_of(module)


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    """The reader above counts function-level imports and skips TYPE_CHECKING ones."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from modelyard.workspace import Workspace\n"
        "def f():\n    from modelyard.run import Run\n"
        "def g():\n    from modelyard import Model\n"
    )
    MODULES["modelyard._layer_probe"] = probe = tmp_path / "probe.py"
    probe.write_text(source)
    try:
        assert imports_of("modelyard._layer_probe") == {"modelyard.run", "modelyard.model"}
    finally:
        del MODULES["modelyard._layer_probe"]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_server_imports_no_sdk_noun() -> None:
    """The server serves the Backend contract: it holds backends, never SDK objects. It
    starts the local agent of a workspace through the compute interface's client."""
    server = [name for name in MODULES if name.startswith("modelyard.server")]
    assert "modelyard.server.app" in server and "modelyard.server.calls" in server
    allowed = {"modelyard.compute.local"}
    wrong = {
        (module, target)
        for module in server
        for target in imports_of(module)
        if target in SDK_MODULES - allowed or target.startswith("modelyard.cli")
    }
    assert not wrong, f"server modules importing the SDK: {sorted(wrong)}"
