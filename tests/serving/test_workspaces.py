"""Services of other workspace kinds, and the environment a service runs in."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from modelyard import Environment, Workspace
from modelyard.errors import ConfigError
from modelyard.model import InferenceConfig, Model
from modelyard.webservice import Webservice
from tests.server_process import ServerProcess
from tests.serving.conftest import SCRIPTS, inference_config


def test_models_of_an_s3_workspace_are_copied_through_its_backend(
    s3_store: tuple[str, dict[str, object]], tmp_path: Path
) -> None:
    url, options = s3_store
    ws = Workspace.create(
        "s3ws", folder=tmp_path / "s3ws", storage_url=url, storage_options=options
    )
    path = tmp_path / "linear.json"
    path.write_text('{"weights": [[1, 0], [0, 1], [0, 0], [0, 0]], "bias": [0, 0]}')
    model = Model.register(ws, path, "linear")
    service = Model.deploy(ws, "s3-svc", [model], inference_config(tmp_path, "linear_score.py"))
    try:
        service.wait_for_deployment()
        assert service.run({"data": [[0, 3, 0, 0], [2, 1, 0, 0]]}) == [1, 0]
    finally:
        service.delete()


def test_the_environment_variables_reach_the_service_and_nothing_else_of_the_client(
    workspace: Workspace,
    linear: tuple[Model, np.ndarray, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_API_TOKEN", "do-not-leak")
    env = Environment("scoring")
    env.environment_variables = {"GREETING": "hello"}
    source = tmp_path / "src"
    source.mkdir()
    (source / "score.py").write_bytes((SCRIPTS / "env_score.py").read_bytes())
    config = InferenceConfig(entry_script="score.py", source_directory=source, environment=env)
    service = Model.deploy(workspace, "env-svc", [linear[0]], config)
    service.wait_for_deployment()
    answer = service.run({})
    # As a run's: the Environment's variables, none of the client's own, modelyard's Python
    # (the Environment asks for no package it lacks, so nothing is built).
    assert answer == {"greeting": "hello", "python": sys.executable, "secret": None}
    assert "has every package" in service.get_logs()


def test_a_server_workspace_is_refused_with_the_reason(
    http_server: ServerProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELYARD_TOKEN", http_server.admin_token)
    ws = Workspace.get(http_server.new_workspace(), server=http_server.url)
    path = tmp_path / "m.json"
    path.write_text("{}")
    model = Model.register(ws, path, "m")
    with pytest.raises(ConfigError, match=r"server.*embedded workspace"):
        Model.deploy(ws, "svc", [model], inference_config(tmp_path, "echo_score.py"))
    with pytest.raises(ConfigError, match="server"):
        Webservice.list(ws)
