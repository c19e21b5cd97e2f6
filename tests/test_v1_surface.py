"""Every v1 import path exists: docs/v1-mapping.md's table, checked against modelyard itself.

The table names, for each v1 module, the modelyard module and its public names. Each module is
imported and its names are compared with its ``__all__`` in both directions (the table cannot
promise a name the module lacks, nor the module export one the table does not document); each
name is imported; the module column follows the renaming rule of ``modelyard migrate``.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelyard.porting.imports import V1_MODULES, modelyard_module

DOC = Path(__file__).parents[1] / "docs" / "v1-mapping.md"


@dataclass(frozen=True)
class Row:
    v1: str
    module: str
    names: frozenset[str]
    not_here: frozenset[str]


def _names(cell: str) -> frozenset[str]:
    return frozenset(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", cell))


def read_table() -> list[Row]:
    text = DOC.read_text()
    table = text.split("<!-- v1-table: start -->")[1].split("<!-- v1-table: end -->")[0]
    rows = []
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        v1, module, names, not_here = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append(Row(v1.strip("`"), module.strip("`"), _names(names), _names(not_here)))
    return rows


ROWS = read_table()


def test_the_table_covers_every_v1_module_once() -> None:
    modules = [row.v1 for row in ROWS]
    assert len(modules) == len(set(modules))
    assert set(modules) == set(V1_MODULES)


@pytest.mark.parametrize("row", ROWS, ids=[row.v1 for row in ROWS])
def test_a_v1_module_is_its_modelyard_module_with_the_documented_names(row: Row) -> None:
    # The same rule as `modelyard migrate` rewrites imports with.
    assert row.module == modelyard_module(row.v1)
    module = importlib.import_module(row.module)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{row.module} has no __all__: its public names are unknown"
    assert set(exported) == row.names, (
        f"{row.module}: in __all__ but not documented: {sorted(set(exported) - row.names)}; "
        f"documented but not in __all__: {sorted(row.names - set(exported))}"
    )
    for name in row.names:
        assert getattr(module, name) is not None
    # A v1 name listed as missing must really be missing, or the table is out of date.
    assert not row.not_here & set(exported), sorted(row.not_here & set(exported))


def test_the_readme_links_the_table() -> None:
    readme = (DOC.parents[1] / "README.md").read_text()
    assert "docs/v1-mapping.md" in readme and "modelyard migrate" in readme
