"""A notebook's code cells rewritten, and nothing else of it touched.

The notebook is read with ``json`` (key order kept), only the ``source`` of code cells is
changed, and it is written back the way it was written: the indent and escaping of the file
are found by writing the unchanged notebook again and comparing its bytes (nbformat writes
``indent=1``, ``ensure_ascii=False``, sorted keys and a final newline), so outputs, metadata
and every other byte stay. A file whose layout cannot be reproduced is written with nbformat's
and said so.

IPython syntax in a cell does not break parsing: lines of magics and shell commands
(``%matplotlib inline``, ``!pip install ...``, ``x = !ls``, ``obj?``) are masked (a ``pass``
with the line's indent) before ``ast`` reads the cell, and left as they are; a cell that
starts with a cell magic (``%%bash``) is not Python and is skipped, except for the magics
whose body is Python (``%%time``, ``%%capture``, ...). A ``!pip install azureml-sdk`` line is
reported (install modelyard instead), never changed.

Example::

    new_bytes, cells = rewrite_notebook(Path("train.ipynb").read_bytes())
    for cell in cells:
        print(cell.index, cell.changes, cell.findings)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from modelyard.porting.check import Surface
from modelyard.porting.rewrite import ERROR, PIP, Change, Finding, Scope, rewrite_source

# Cell magics whose body is Python (IPython's built-ins).
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}
_MAGIC_LINE = re.compile(r"^\s*(?:[%!]|\w+\s*=\s*[%!])")
_HELP_LINE = re.compile(r"^\s*[\w.]+\?{1,2}\s*$")
_PIP_AZUREML = re.compile(r"^\s*[!%]\s*(?:pip|pip3|conda)\s+install\b.*\bazureml", re.I)


class NotebookError(ValueError):
    """The file is not a notebook (not JSON, or no list of cells)."""


@dataclass
class CellResult:
    """What happened to code cell number ``index`` (1-based, counting every cell)."""

    index: int
    changes: list[Change] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def mask_magics(source: str) -> str | None:
    """``source`` with IPython-only lines made ``pass`` (same line count, other lines
    untouched), or None when the cell is not Python at all (a cell magic such as %%bash)."""
    lines = source.split("\n")
    first = next((line for line in lines if line.strip()), "")
    masked = []
    for number, line in enumerate(lines):
        if line.lstrip().startswith("%%"):
            name = line.lstrip()[2:].split(maxsplit=1)[0] if line.strip() != "%%" else ""
            if number != lines.index(first) or name not in _PYTHON_CELL_MAGICS:
                return None
            masked.append("pass")
        elif _MAGIC_LINE.match(line) or _HELP_LINE.match(line):
            masked.append(line[: len(line) - len(line.lstrip())] + "pass")
        else:
            masked.append(line)
    return "\n".join(masked)


@dataclass(frozen=True)
class Layout:
    """How a notebook file was written: ``json.dumps`` arguments and a final newline."""

    indent: int | None = 1
    ensure_ascii: bool = False
    newline: str = "\n"

    def dump(self, notebook: Any) -> str:
        return json.dumps(notebook, indent=self.indent, ensure_ascii=self.ensure_ascii) + (
            self.newline
        )


def detect_layout(raw: str, notebook: Any) -> Layout | None:
    """The layout that writes ``notebook`` back as ``raw``, or None."""
    newline = "\n" if raw.endswith("\n") else ""
    for indent in (1, 2, 4, None):
        for ensure_ascii in (False, True):
            layout = Layout(indent, ensure_ascii, newline)
            if layout.dump(notebook) == raw:
                return layout
    return None


def rewrite_notebook(
    data: bytes, surface: Surface | None = None
) -> tuple[bytes, list[CellResult], bool]:
    """The notebook's new bytes (the same bytes when nothing changed), what happened in each
    code cell, and whether its JSON layout had to be changed (it could not be reproduced).
    Raises NotebookError when ``data`` is not a notebook."""
    try:
        raw = data.decode("utf-8")
        notebook = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as error:
        raise NotebookError(f"not a notebook: it is not JSON ({error})") from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise NotebookError("not a notebook: it has no list of cells (nbformat 4 or later)")
    surface = surface or Surface()
    scope = Scope()  # a notebook's cells share one namespace, in order
    results: list[CellResult] = []
    changed = False
    for index, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        result = CellResult(index)
        results.append(result)
        for number, line in enumerate(text.split("\n"), start=1):
            if _PIP_AZUREML.match(line):
                result.findings.append(
                    Finding(
                        number,
                        PIP,
                        "installs the v1 SDK: use `pip install modelyard` "
                        "instead (this line is not changed)",
                    )
                )
        masked = mask_magics(text)
        if masked is None:
            continue
        try:
            rewritten = rewrite_source(text, scope=scope, surface=surface, parse_text=masked)
        except SyntaxError as error:
            result.findings.append(
                Finding(error.lineno or 0, ERROR, f"cannot parse the cell: {error.msg}")
            )
            continue
        result.changes = rewritten.changes
        result.findings.extend(rewritten.findings)
        result.findings.sort(key=lambda finding: finding.line)
        if rewritten.text != text:
            changed = True
            lines = rewritten.text.splitlines(keepends=True)
            cell["source"] = lines if isinstance(source, list) else rewritten.text
    if not changed:
        return data, results, False
    layout = detect_layout(raw, json.loads(raw))
    relaid = layout is None
    return (layout or Layout()).dump(notebook).encode("utf-8"), results, relaid


__all__ = ["CellResult", "NotebookError", "mask_magics", "rewrite_notebook"]
