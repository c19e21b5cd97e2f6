"""A registered linear model and its scoring script, deployed by the tests of this folder."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelyard import Environment, Workspace
from modelyard.model import InferenceConfig, Model
from modelyard.serving import process
from modelyard.webservice import Webservice

SCRIPTS = Path(__file__).parent / "scripts"


@pytest.fixture
def linear(workspace: Workspace, tmp_path: Path) -> tuple[Model, np.ndarray, np.ndarray]:
    """A linear model ``x @ weights + bias`` (4 inputs, 3 classes), registered."""
    rng = np.random.default_rng(0)
    weights, bias = rng.normal(size=(4, 3)), rng.normal(size=3)
    path = tmp_path / "linear.json"
    path.write_text(json.dumps({"weights": weights.tolist(), "bias": bias.tolist()}))
    return Model.register(workspace, path, "linear"), weights, bias


def inference_config(
    tmp_path: Path, script: str, environment: Environment | None = None
) -> InferenceConfig:
    """``scripts/<script>`` as ``score.py`` of a source folder of its own, run in
    ``environment`` (None: modelyard's own Python)."""
    source = tmp_path / f"src-{script}"
    source.mkdir(exist_ok=True)
    shutil.copy(SCRIPTS / script, source / "score.py")
    return InferenceConfig(
        entry_script="score.py", source_directory=source, environment=environment
    )


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def processes_of_group(group: int) -> list[int]:
    """The live (not zombie) processes of process group ``group``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != b"Z":
            found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def no_service_left(workspace: Workspace) -> Iterator[None]:
    """Each test's services in its workspace are deleted at its end, even when it fails."""
    yield
    for service in Webservice.list(workspace):
        service.delete()


@pytest.fixture(autouse=True, scope="session")
def no_service_process_left() -> Iterator[None]:
    """Services outlive whoever started them (as they must a notebook): at the end of the
    session, any this test process started and no test deleted is stopped."""
    yield
    for group in list(process._children):
        process.stop_group(group)
