"""The v1-style notebooks of ``examples/v1-notebooks``, run in a real Jupyter kernel (nbclient)
in order, in a folder of their own, as a v1 user runs them: imports renamed, nothing else.

``00-configuration`` creates the workspace and its ``config.json`` (run first, by the module's
fixture: xdist keeps no order within a group); the others find it with
``Workspace.from_config()``, in any order. A cell that raises fails the test with the cell and
its error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebooks need the dev extra (nbclient)")
nbclient = pytest.importorskip("nbclient", reason="the notebooks need the dev extra (nbclient)")

# On one xdist worker, so the module's configured folder is made once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("v1-notebooks")]

NOTEBOOKS = Path(__file__).parents[2] / "examples" / "v1-notebooks"
NAMES = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))


CONFIGURATION = "00-configuration.ipynb"


def run_notebook(project: Path, name: str) -> None:
    """Execute the notebook ``name`` of ``project`` in a new kernel started in ``project``;
    a cell that raises fails with the cell and its error."""
    notebook = nbformat.read(project / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(project)}}
    )
    client.execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.get("output_type") == "error"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the notebooks' folder, configured by its first notebook (the workspace and
    its config.json), as a v1 user starts; what the others write stays there too."""
    folder = tmp_path_factory.mktemp("v1-notebooks") / "project"
    shutil.copytree(NOTEBOOKS, folder)
    run_notebook(folder, CONFIGURATION)
    return folder


def test_the_notebooks_need_no_migration() -> None:
    """They are v1 notebooks already migrated: `modelyard migrate --check` finds nothing to
    change and nothing modelyard lacks."""
    done = subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", "migrate", "--check", str(NOTEBOOKS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_configuration_notebook_makes_the_workspace_the_others_find(project: Path) -> None:
    config = json.loads((project / ".modelyard" / "config.json").read_text())
    assert config["workspace_name"] == "notebooks-ws"
    assert config["resource_group"] == "ml-notebooks"


@pytest.mark.parametrize("name", [name for name in NAMES if name != CONFIGURATION])
def test_a_v1_notebook_runs_to_the_end(project: Path, name: str) -> None:
    run_notebook(project, name)
