"""One Python source's v1 imports rewritten, and what it uses checked.

``ast`` finds each import and each use of a module bound by ``import azureml...`` (its exact
line and column), and only those spans are replaced: comments, blank lines, quotes and every
other byte stay as they were. What is rewritten:

- ``import azureml.core`` -> ``import modelyard`` (and ``azureml.core.VERSION`` ->
  ``modelyard.VERSION`` wherever the file uses the module so);
- ``import azureml.core as aml`` -> ``import modelyard as aml`` (``aml.X`` stays);
- ``from azureml.core import X`` -> ``from modelyard import X``,
  ``from azureml.core.compute import AmlCompute`` -> ``from modelyard.compute import ...``,
  ``from azureml.train.dnn import PyTorch`` -> ``from modelyard.train.dnn import PyTorch``.

Each import and use is then checked against modelyard (:mod:`~modelyard.porting.check`);
what modelyard lacks is a :class:`Finding`. Rewriting a rewritten file changes nothing.

Example::

    result = rewrite_source("from azureml.core import Workspace  # v1\\n")
    result.text         # 'from modelyard import Workspace  # v1\\n'
    result.findings     # []
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from modelyard.porting.check import Surface
from modelyard.porting.imports import V1_CORE, V1_ROOT, is_v1, modelyard_module

UNSUPPORTED = "unsupported"  # modelyard lacks what the code uses
NOT_REWRITTEN = "not rewritten"  # an import written in a way the rewrite does not handle
PIP = "pip"  # a `!pip install azureml-...` line: reported, never changed
ERROR = "error"  # the file or cell could not be read or parsed


@dataclass(frozen=True, slots=True)
class Finding:
    """Something to tell about one line: ``kind`` is one of the constants above."""

    line: int
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class Change:
    """One span replaced on ``line``."""

    line: int
    old: str
    new: str


@dataclass
class Scope:
    """What the names of one file (or one notebook, across its cells) stand for."""

    # local name -> a modelyard module or class (or an instance of a class, see `instances`)
    known: dict[str, Any] = field(default_factory=dict)
    instances: set[str] = field(default_factory=set)
    # Whether `azureml` itself is bound (by `import azureml.x` without `as`).
    azureml_bound: bool = False
    unchecked: list[str] = field(default_factory=list)


@dataclass
class Result:
    text: str
    changes: list[Change] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def rewrite_source(
    text: str,
    *,
    scope: Scope | None = None,
    surface: Surface | None = None,
    parse_text: str | None = None,
) -> Result:
    """Rewrite ``text``; ``parse_text`` is what to parse when it differs (a notebook cell
    with its magics masked: same lines, same positions of everything else). Raises
    SyntaxError when it does not parse."""
    tree = ast.parse(parse_text if parse_text is not None else text)
    editor = _Editor(text, scope or Scope(), surface or Surface())
    editor.visit(tree)
    return editor.result()


class _Editor(ast.NodeVisitor):
    def __init__(self, text: str, scope: Scope, surface: Surface) -> None:
        self.lines = text.splitlines(keepends=True)
        self.encoded = [line.encode("utf-8") for line in self.lines]
        self.text = text
        self.scope = scope
        self.surface = surface
        self.edits: list[tuple[int, int, int, str]] = []  # (line, start, end, new), bytes
        self.findings: list[Finding] = []
        self.azureml_names: set[int] = set()  # ids of Name nodes handled with their chain

    # --- reporting ---------------------------------------------------------------------------

    def report(self, node: ast.AST, kind: str, message: str) -> None:
        self.findings.append(Finding(getattr(node, "lineno", 0), kind, message))

    def replace(self, line: int, start: int, expected: str, new: str, node: ast.AST) -> None:
        """Replace ``expected`` at byte column ``start`` of ``line`` (1-based) by ``new``,
        after checking the bytes there are what the AST said."""
        data = self.encoded[line - 1] if 0 < line <= len(self.encoded) else b""
        end = start + len(expected.encode())
        if data[start:end] != expected.encode():
            self.report(
                node,
                NOT_REWRITTEN,
                f"{expected!r} is written across lines or with "
                f"spaces; change it to {new!r} by hand",
            )
            return
        self.edits.append((line, start, end, new))

    def result(self) -> Result:
        changes = []
        encoded = list(self.encoded)
        for line, start, end, new in sorted(self.edits, reverse=True):
            data = encoded[line - 1]
            changes.append(Change(line, data[start:end].decode(), new))
            encoded[line - 1] = data[:start] + new.encode() + data[end:]
        text = b"".join(encoded).decode("utf-8")
        changes.reverse()
        return Result(text, changes, sorted(self.findings, key=lambda f: f.line))

    # --- imports -----------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            target = modelyard_module(alias.name)
            if target is None:
                self.scope.known.pop(alias.asname or alias.name.split(".")[0], None)
                continue
            self.replace(alias.lineno, alias.col_offset, alias.name, target, node)
            self.check_module(node, alias.name, target)
            if alias.asname is not None:
                module = self.surface.module(target)
                if module is not None:
                    self.scope.known[alias.asname] = module
                    self.scope.instances.discard(alias.asname)
            else:
                self.scope.azureml_bound = True

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or node.module is None or not is_v1(node.module):
            for alias in node.names:
                self.scope.known.pop(alias.asname or alias.name, None)
            return
        target = modelyard_module(node.module)
        assert target is not None
        self.replace_from_module(node, node.module, target)
        module = self.check_module(node, node.module, target)
        for alias in node.names:
            local = alias.asname or alias.name
            if alias.name == "*":
                self.scope.unchecked.append(f"from {target} import * (line {node.lineno})")
                continue
            value = getattr(module, alias.name, None) if module is not None else None
            if module is not None and value is None:
                # A name of a package may be its submodule (`from azureml.core import run`).
                value = self.surface.module(f"{target}.{alias.name}")
                if value is None and alias.name not in getattr(module, "__all__", ()):
                    self.report(
                        node,
                        UNSUPPORTED,
                        f"{alias.name}: modelyard's {target} has no {alias.name} "
                        f"(v1's {node.module}.{alias.name})",
                    )
            if value is not None:
                self.scope.known[local] = value
                self.scope.instances.discard(local)
            else:
                self.scope.known.pop(local, None)

    def replace_from_module(self, node: ast.ImportFrom, module: str, target: str) -> None:
        line = self.encoded[node.lineno - 1]
        match = re.compile(rb"from\s+" + re.escape(module.encode())).match(line, node.col_offset)
        if match is None:
            self.report(
                node,
                NOT_REWRITTEN,
                f"the module name {module!r} is split over lines "
                f"or spaced; change it to {target!r} by hand",
            )
            return
        self.replace(node.lineno, match.end() - len(module), module, target, node)

    def check_module(self, node: ast.AST, v1: str, target: str) -> Any:
        module = self.surface.module(target)
        if module is None:
            self.report(node, UNSUPPORTED, f"{v1}: modelyard has no module {target} yet")
        return module

    # --- uses --------------------------------------------------------------------------------

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)
        value = self.value_of(node.value)
        for target in node.targets:
            if isinstance(target, ast.Name):
                if value is None:
                    if self.from_v1(node.value):
                        self.scope.unchecked.append(f"{target.id} (line {node.lineno})")
                    self.scope.known.pop(target.id, None)
                    self.scope.instances.discard(target.id)
                else:
                    obj, is_instance = value
                    self.scope.known[target.id] = obj
                    if is_instance:
                        self.scope.instances.add(target.id)
                    else:
                        self.scope.instances.discard(target.id)

    def value_of(self, node: ast.AST) -> tuple[Any, bool] | None:
        """(the modelyard class or module ``node`` evaluates to, whether an instance)."""
        if isinstance(node, ast.Name) and node.id in self.scope.known:
            return self.scope.known[node.id], node.id in self.scope.instances
        if isinstance(node, ast.Call):
            func = node.func
            if (
                isinstance(func, ast.Name)
                and isinstance(self.scope.known.get(func.id), type)
                and func.id not in self.scope.instances
            ):
                return self.scope.known[func.id], True
            if isinstance(func, ast.Attribute):
                owner = self.value_of(func.value)
                if owner is not None:
                    returned = self.surface.return_type(owner[0], func.attr)
                    if returned is not None:
                        return returned, True
        return None

    def from_v1(self, node: ast.AST) -> bool:
        """Whether ``node`` is built from a modelyard name (its type then matters)."""
        return any(
            isinstance(child, ast.Name) and child.id in self.scope.known for child in ast.walk(node)
        )

    def visit_Attribute(self, node: ast.Attribute) -> None:
        base = node.value
        if isinstance(base, ast.Name) and base.id == V1_ROOT and self.scope.azureml_bound:
            self.azureml_names.add(id(base))
            if node.attr == V1_CORE.split(".")[1]:
                self.replace(base.lineno, base.col_offset, V1_CORE, "modelyard", node)
            else:
                self.replace(base.lineno, base.col_offset, V1_ROOT, "modelyard", node)
            self.check_chain(node)
            return
        self.generic_visit(node)
        if not isinstance(node.ctx, ast.Load):
            return
        owner = self.value_of(base)
        if owner is None:
            return
        obj, _ = owner
        if self.surface.has(obj, node.attr) is False:
            shown = ast.unparse(base)
            kind = obj.__name__.rsplit(".", 1)[-1]
            self.report(
                node, UNSUPPORTED, f"{shown}.{node.attr}: modelyard's {kind} has no {node.attr}"
            )

    def check_chain(self, node: ast.Attribute) -> None:
        """``azureml.core.X.Y``: the longest module prefix, then attributes on it."""
        parts: list[str] = []
        current: ast.AST = node
        while isinstance(current, ast.Attribute):
            parts.append(current.attr)
            current = current.value
        dotted = ".".join([V1_ROOT, *reversed(parts)])
        pieces = dotted.split(".")
        for cut in range(len(pieces), 1, -1):
            target = modelyard_module(".".join(pieces[:cut]))
            module = self.surface.module(target) if target else None
            if module is None:
                continue
            obj: Any = module
            for attr in pieces[cut:]:
                if self.surface.has(obj, attr) is False:
                    self.report(
                        node,
                        UNSUPPORTED,
                        f"{dotted}: modelyard's {target} has no {'.'.join(pieces[cut:])}",
                    )
                    return
                obj = getattr(obj, attr, None)
                if obj is None:
                    return
            return

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == V1_ROOT and self.scope.azureml_bound and id(node) not in self.azureml_names:
            self.replace(node.lineno, node.col_offset, V1_ROOT, "modelyard", node)


__all__ = [
    "ERROR",
    "NOT_REWRITTEN",
    "PIP",
    "UNSUPPORTED",
    "Change",
    "Finding",
    "Result",
    "Scope",
    "rewrite_source",
]
