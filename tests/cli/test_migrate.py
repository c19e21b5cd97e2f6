"""``modelyard migrate`` on real files and notebooks written by the tests: the real command as
a subprocess, as a user runs it."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

V1_SCRIPT = """\
# Train on the cluster (v1)
from azureml.core import Workspace, Experiment   # the core
from azureml.core.compute import AmlCompute, ComputeTarget
import azureml.core
import azureml.core as aml
from azureml.train.estimator import Estimator

print("SDK version:", azureml.core.VERSION)
ws = Workspace.from_config()
exp = Experiment(workspace=ws,
                 name="tf-mnist")
print(aml.Workspace)
"""

MIGRATED_SCRIPT = """\
# Train on the cluster (v1)
from modelyard import Workspace, Experiment   # the core
from modelyard.compute import AmlCompute, ComputeTarget
import modelyard
import modelyard as aml
from modelyard.train.estimator import Estimator

print("SDK version:", modelyard.VERSION)
ws = Workspace.from_config()
exp = Experiment(workspace=ws,
                 name="tf-mnist")
print(aml.Workspace)
"""

UNSUPPORTED_SCRIPT = """\
from azureml.core import Workspace, Model, Experiment
from azureml.core import NoSuchThing
from azureml.core.webservice import AksEndpoint

ws = Workspace.from_config()
print(ws.name)
uri = ws.get_mlflow_tracking_uri()
run = Experiment(ws, "exp").submit(config)
run.wait_for_completion(show_output=True)
model = run.register_model("m", "outputs/model")
package = Model.package(ws, [model])
"""


def migrate(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", "migrate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def notebook(*cells: dict[str, Any]) -> dict[str, Any]:
    return {
        "cells": list(cells),
        "metadata": {
            "kernelspec": {"display_name": "Python 3.11", "language": "python", "name": "python3"},
            "authors": [{"name": "Zoë"}],
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def code(source: list[str] | str, outputs: list[Any] | None = None) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": 3,
        "id": "c0ffee",
        "metadata": {"tags": ["parameters"], "collapsed": False},
        "outputs": outputs or [],
        "source": source,
    }


def write_nb(path: Path, nb: dict[str, Any]) -> bytes:
    """As nbformat writes notebooks: indent 1, UTF-8 kept, a final newline."""
    data = (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode()
    path.write_bytes(data)
    return data


def test_a_script_is_rewritten_in_place_with_a_backup(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(V1_SCRIPT)
    os.chmod(script, 0o750)

    result = migrate(tmp_path, "train.py")

    assert result.returncode == 0, result.stderr
    assert script.read_text() == MIGRATED_SCRIPT
    assert (tmp_path / "train.py.bak").read_text() == V1_SCRIPT
    assert oct(script.stat().st_mode & 0o777) == oct(0o750)
    assert "train.py:2: azureml.core -> modelyard" in result.stdout
    assert "train.py:8: azureml.core -> modelyard" in result.stdout
    assert "1 file: 1 rewritten" in result.stdout
    # Migrated once, there is nothing left to do.
    again = migrate(tmp_path, "train.py", "--check")
    assert again.returncode == 0, again.stdout
    assert script.read_text() == MIGRATED_SCRIPT


def test_no_backup(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(V1_SCRIPT)
    assert migrate(tmp_path, "train.py", "--no-backup").returncode == 0
    assert (tmp_path / "train.py").read_text() == MIGRATED_SCRIPT
    assert not (tmp_path / "train.py.bak").exists()


def test_a_notebook_changes_only_its_code_sources(tmp_path: Path) -> None:
    outputs = [
        {"name": "stdout", "output_type": "stream", "text": ["SDK version: 1.0.0 — ok\n"]},
        {
            "data": {"image/png": "iVBORw0KGgo=", "text/plain": ["<Figure>"]},
            "metadata": {"needs_background": "light"},
            "output_type": "display_data",
        },
    ]
    original = notebook(
        {"cell_type": "markdown", "metadata": {}, "source": ["from azureml.core import X\n"]},
        code(
            [
                "%matplotlib inline\n",
                "import azureml.core\n",
                "from azureml.core import Workspace  # é\n",
                'print("SDK version:", azureml.core.VERSION)',
            ],
            outputs,
        ),
        code("from azureml.core.compute import ComputeTarget\nws = Workspace.from_config()"),
        code(["import numpy as np\n", "np.zeros(3)"]),
    )
    path = tmp_path / "train.ipynb"
    before = write_nb(path, original)

    result = migrate(tmp_path, "train.ipynb")

    assert result.returncode == 0, result.stdout + result.stderr
    expected = copy.deepcopy(original)
    expected["cells"][1]["source"] = [
        "%matplotlib inline\n",
        "import modelyard\n",
        "from modelyard import Workspace  # é\n",
        'print("SDK version:", modelyard.VERSION)',
    ]
    expected["cells"][2]["source"] = (
        "from modelyard.compute import ComputeTarget\nws = Workspace.from_config()"
    )
    # Every byte but the changed sources is the notebook's own: outputs, metadata, markdown.
    assert path.read_bytes() == (json.dumps(expected, indent=1, ensure_ascii=False) + "\n").encode()
    assert (tmp_path / "train.ipynb.bak").read_bytes() == before
    assert "train.ipynb:cell 2:2: azureml.core -> modelyard" in result.stdout
    assert "train.ipynb:cell 3:1: azureml.core.compute -> modelyard.compute" in result.stdout


def test_magics_and_shell_lines_are_kept_and_pip_installs_reported(tmp_path: Path) -> None:
    cells = [
        code(
            [
                "!pip install azureml-sdk[notebooks,automl]\n",
                "%pip install --upgrade azureml-core\n",
                "files = !ls\n",
                "for f in files:\n",
                "    !echo {f}\n",
                "from azureml.core import Workspace\n",
                "Workspace?",
            ]
        ),
        code(["%%bash\n", "echo from azureml.core import Workspace\n"]),
        code(["%%time\n", "from azureml.core import Run\n"]),
    ]
    path = tmp_path / "nb.ipynb"
    write_nb(path, notebook(*cells))

    result = migrate(tmp_path, "nb.ipynb", "--check")

    assert result.returncode == 1
    out = result.stdout
    assert "nb.ipynb:cell 1:1: pip: installs the v1 SDK: use `pip install modelyard`" in out
    assert "nb.ipynb:cell 1:2: pip:" in out
    assert "nb.ipynb:cell 1:6: azureml.core -> modelyard" in out
    assert "nb.ipynb:cell 3:2: azureml.core -> modelyard" in out
    assert "cell 2" not in out  # a %%bash cell is not Python: left alone

    assert migrate(tmp_path, "nb.ipynb").returncode == 0
    sources = ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]]
    assert sources[0].startswith("!pip install azureml-sdk[notebooks,automl]\n%pip install")
    assert (
        "files = !ls\nfor f in files:\n    !echo {f}\nfrom modelyard import Workspace\n"
        in (sources[0])
    )
    assert sources[1] == "%%bash\necho from azureml.core import Workspace\n"
    assert sources[2] == "%%time\nfrom modelyard import Run\n"


def test_check_writes_nothing_and_exits_1_until_clean(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(V1_SCRIPT)
    (tmp_path / "clean.py").write_text("from modelyard import Workspace\nprint(Workspace)\n")

    assert migrate(tmp_path, "clean.py", "--check").returncode == 0
    result = migrate(tmp_path, ".", "--check")
    assert result.returncode == 1
    assert "would rewrite" in result.stdout and "2 files: 1 would be rewritten" in result.stdout
    assert (tmp_path / "train.py").read_text() == V1_SCRIPT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.py", "train.py"]


def test_a_raw_http_scoring_script_is_rewritten_and_has_all_it_uses(tmp_path: Path) -> None:
    script = tmp_path / "score.py"
    script.write_text(
        "from azureml.contrib.services.aml_request import AMLRequest, rawhttp\n"
        "from azureml.contrib.services.aml_response import AMLResponse\n"
    )

    result = migrate(tmp_path, "score.py", "--no-backup")

    assert result.returncode == 0, result.stdout + result.stderr
    assert script.read_text() == (
        "from modelyard.contrib.services.aml_request import AMLRequest, rawhttp\n"
        "from modelyard.contrib.services.aml_response import AMLResponse\n"
    )
    assert migrate(tmp_path, "score.py", "--check").returncode == 0


def test_uses_modelyard_does_not_have_are_reported_by_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "deploy.py").write_text(UNSUPPORTED_SCRIPT)

    result = migrate(tmp_path, "deploy.py", "--check")

    assert result.returncode == 1
    lines = set(result.stdout.splitlines())
    assert (
        "deploy.py:2: unsupported: NoSuchThing: modelyard's modelyard has no NoSuchThing "
        "(v1's azureml.core.NoSuchThing)"
    ) in lines
    webservice = "deploy.py:3: unsupported: AksEndpoint: "
    assert any(line.startswith(webservice) for line in lines)
    assert (
        "deploy.py:7: unsupported: ws.get_mlflow_tracking_uri: modelyard's Workspace has no "
        "get_mlflow_tracking_uri"
    ) in lines
    assert "deploy.py:11: unsupported: Model.package: modelyard's Model has no package" in lines
    # What modelyard has is not reported: ws.name, run.wait_for_completion, register_model.
    assert not any(":6:" in line or ":9:" in line or ":10:" in line for line in lines)
    # Even --check --json says the same, for scripts.
    report = json.loads(migrate(tmp_path, "deploy.py", "--check", "--json").stdout)
    (file,) = report["files"]
    found = {(n["line"], n["kind"]) for n in file["findings"]}
    assert {(2, "unsupported"), (3, "unsupported"), (7, "unsupported"), (11, "unsupported")} <= (
        found
    )
    assert report["summary"]["unsupported"] == 4 and report["exitCode"] == 1


def test_out_mirrors_the_tree_and_leaves_the_sources_alone(tmp_path: Path) -> None:
    src = tmp_path / "notebooks"
    (src / "tf" / "scripts").mkdir(parents=True)
    (src / "tf" / "scripts" / "train.py").write_text(V1_SCRIPT)
    (src / "tf" / "util.py").write_text("import os\n")
    write_nb(src / "tf" / "nb.ipynb", notebook(code(["from azureml.core import Run\n"])))
    (src / ".ipynb_checkpoints").mkdir()
    (src / ".ipynb_checkpoints" / "nb-checkpoint.ipynb").write_text("{}")

    result = migrate(tmp_path, "notebooks", "--out", "migrated")

    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "migrated"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "tf/nb.ipynb",
        "tf/scripts/train.py",
        "tf/util.py",
    ]
    assert (out / "tf" / "scripts" / "train.py").read_text() == MIGRATED_SCRIPT
    assert (src / "tf" / "scripts" / "train.py").read_text() == V1_SCRIPT
    assert not list(src.rglob("*.bak"))


def test_out_never_writes_through_a_link_out_of_it(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "train.py").write_text(V1_SCRIPT)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(elsewhere)

    result = migrate(tmp_path, "src", "--out", "out")

    assert result.returncode == 2
    assert "leads outside" in result.stdout
    assert list(elsewhere.iterdir()) == []


def test_links_in_the_tree_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "lib.py").write_text(V1_SCRIPT)
    src = tmp_path / "src"
    src.mkdir()
    (src / "linked").symlink_to(outside)
    (src / "lib.py").symlink_to(outside / "lib.py")
    (src / "train.py").write_text(V1_SCRIPT)

    result = migrate(tmp_path, "src")

    assert result.returncode == 0, result.stdout
    assert (outside / "lib.py").read_text() == V1_SCRIPT
    assert (src / "train.py").read_text() == MIGRATED_SCRIPT
    assert "1 file: 1 rewritten" in result.stdout


@pytest.mark.parametrize("name", ["bad.py", "bad.ipynb", "binary.py", "missing.py", "data.csv"])
def test_bad_input_is_reported_the_rest_migrated_and_exit_code_2(tmp_path: Path, name: str) -> None:
    (tmp_path / "bad.py").write_text("from azureml.core import Run\ndef broken(:\n")
    (tmp_path / "bad.ipynb").write_text('{"cells": [')
    (tmp_path / "binary.py").write_bytes(b"\x7fELF\x00\x01from azureml.core import Run")
    (tmp_path / "data.csv").write_text("a,b\n")
    (tmp_path / "train.py").write_text(V1_SCRIPT)
    before = (tmp_path / name).read_bytes() if (tmp_path / name).exists() else None

    result = migrate(tmp_path, name, "train.py")

    assert result.returncode == 2
    expected = {
        "bad.py": "bad.py: error: cannot parse line 2: invalid syntax; left as it is",
        "bad.ipynb": "bad.ipynb: error: not a notebook: it is not JSON",
        "binary.py": "binary.py: error: is a binary file",
        "missing.py": "missing.py: error: does not exist",
        "data.csv": "data.csv: error: is not a .py file or an .ipynb notebook",
    }[name]
    assert expected in result.stdout
    assert (tmp_path / "train.py").read_text() == MIGRATED_SCRIPT
    if before is not None:
        assert (tmp_path / name).read_bytes() == before
        assert not (tmp_path / f"{name}.bak").exists()


def test_a_notebook_cell_that_does_not_parse_is_reported_and_the_others_rewritten(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nb.ipynb"
    write_nb(
        path,
        notebook(code(["from azureml.core import Run\n"]), code(["def broken(:\n", "    pass"])),
    )

    result = migrate(tmp_path, "nb.ipynb")

    assert result.returncode == 2
    assert "nb.ipynb:cell 2:1: error: cannot parse the cell" in result.stdout
    cells = json.loads(path.read_text())["cells"]
    assert cells[0]["source"] == ["from modelyard import Run\n"]
    assert cells[1]["source"] == ["def broken(:\n", "    pass"]
