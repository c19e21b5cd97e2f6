"""A registered model deployed as a local scoring service: scored, found again, stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from modelyard import Environment, Workspace
from modelyard.errors import WebserviceException
from modelyard.model import Model
from modelyard.runner.process_identity import start_time
from modelyard.webservice import AciWebservice, LocalWebservice, Webservice
from tests.helpers import wait_for
from tests.serving.conftest import inference_config, port_free, processes_of_group


def test_deployed_model_scores_as_the_model_does_and_delete_frees_everything(
    workspace: Workspace, linear: tuple[Model, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    model, weights, bias = linear
    service = Model.deploy(
        workspace,
        "linear-svc",
        [model],
        inference_config(tmp_path, "linear_score.py"),
        LocalWebservice.deploy_configuration(),
    )
    service.wait_for_deployment(show_output=True)
    assert service.state == "Healthy"
    rows = np.random.default_rng(1).normal(size=(10, 4))
    answer = service.run(input_data=json.dumps({"data": rows.tolist()}))
    assert answer == (rows @ weights + bias).argmax(axis=1).tolist()

    found = Webservice(workspace, "linear-svc")
    assert found.scoring_uri == service.scoring_uri and found.models == ["linear:1"]
    assert [s.name for s in Webservice.list(workspace)] == ["linear-svc"]
    assert [s.name for s in Webservice.list(workspace, model_name="linear")] == ["linear-svc"]
    assert Webservice.list(workspace, model_name="other") == []
    assert Webservice.list(workspace, compute_type="ACI") == []
    base = service.scoring_uri.removesuffix("score")
    with urllib.request.urlopen(base) as health:
        assert health.read() == b"Healthy"
    with urllib.request.urlopen(service.swagger_uri) as swagger:
        assert "/score" in json.load(swagger)["paths"]
    # The service's record and keys are its owner's alone.
    record = workspace.folder / "services" / "linear-svc.json"
    assert record.stat().st_mode & 0o777 == 0o600
    assert "Application startup complete" in service.get_logs()

    pid = json.loads(record.read_text())["pid"]
    assert processes_of_group(pid)
    service.delete()
    assert processes_of_group(pid) == []
    assert port_free(service.port)
    assert Webservice.list(workspace) == []
    assert not (workspace.folder / "services" / "linear-svc").exists()
    service.delete()  # again: not an error


def test_workers_each_run_init_and_share_the_port(
    workspace: Workspace, linear: tuple[Model, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    config = AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=1, workers=2)
    service = Model.deploy(
        workspace, "two-workers", [linear[0]], inference_config(tmp_path, "echo_score.py"), config
    )
    service.wait_for_deployment()
    assert service.compute_type == "ACI"
    group = json.loads((workspace.folder / "services" / "two-workers.json").read_text())["pid"]
    # uvicorn's supervisor and its two workers, all in the service's own process group.
    wait_for(lambda: len(processes_of_group(group)) >= 3)
    assert service.run({"x": 1})["echo"] == {"x": 1}


def test_a_dead_service_shows_unhealthy_and_starts_again(
    workspace: Workspace, linear: tuple[Model, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    model, weights, bias = linear
    service = Model.deploy(
        workspace, "restartable", [model], inference_config(tmp_path, "linear_score.py")
    )
    service.wait_for_deployment()
    pid = json.loads((workspace.folder / "services" / "restartable.json").read_text())["pid"]
    os.killpg(pid, signal.SIGKILL)  # as a reboot leaves it
    wait_for(lambda: Webservice(workspace, "restartable").state == "Unhealthy")
    again = Webservice(workspace, "restartable")
    again.start()
    assert again.state == "Healthy"
    assert again.run({"data": [[1, 0, 0, 0]]}) == [int(np.argmax(weights[0] + bias))]


def test_update_serves_the_new_model_version(
    workspace: Workspace, linear: tuple[Model, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    model, _, _ = linear
    service = Model.deploy(
        workspace, "updated", [model], inference_config(tmp_path, "linear_score.py")
    )
    service.wait_for_deployment()
    # Version 2 always answers class 2.
    weights, bias = np.zeros((4, 3)), np.array([0.0, 0.0, 1.0])
    path = tmp_path / "v2" / "linear.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"weights": weights.tolist(), "bias": bias.tolist()}))
    second = Model.register(workspace, path, "linear")
    service.update(models=[second])
    assert service.models == ["linear:2"]
    assert service.run({"data": [[5, 5, 5, 5], [1, 2, 3, 4]]}) == [2, 2]


def test_auth_enabled_checks_the_bearer_key_and_regen_key_replaces_it(
    workspace: Workspace, linear: tuple[Model, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    config = LocalWebservice.deploy_configuration(auth_enabled=True)
    service = Model.deploy(
        workspace, "keyed", [linear[0]], inference_config(tmp_path, "echo_score.py"), config
    )
    service.wait_for_deployment()
    primary, secondary = service.get_keys()
    assert primary != secondary
    keys_file = workspace.folder / "services" / "keyed" / "keys.json"
    assert keys_file.stat().st_mode & 0o777 == 0o600

    def post(key: str | None) -> int:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(service.scoring_uri, data=b"{}", headers=headers)
        try:
            with urllib.request.urlopen(request) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    assert post(None) == 401
    assert post("not-the-key") == 401
    assert post(primary) == 200 and post(secondary) == 200
    service.regen_key("Primary")
    assert post(primary) == 401
    assert post(service.get_keys()[0]) == 200
    assert service.run({"a": 1})["echo"] == {"a": 1}  # run() sends the key itself


def test_inference_schema_decorated_run_gets_converted_arguments(
    workspace: Workspace, linear: tuple[Model, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    # inference-schema 1.8 requires wrapt<=1.16, older than modelyard's own Python has: the
    # service gets an environment of its own, built without modelyard's packages (the
    # default, inherit_base_packages=False), where that wrapt is installed.
    environment = Environment("schema-env", pip_packages=["inference-schema==1.8", "numpy"])
    service = Model.deploy(
        workspace,
        "schema",
        [linear[0]],
        inference_config(tmp_path, "schema_score.py", environment),
    )
    service.wait_for_deployment()
    logs = service.get_logs()
    assert "Building environment" in logs or "is in the cache" in logs
    assert service.run({"data": [[1, 2, 3, 4], [0, 0, 0, 1]], "scale": 2.0}) == [20.0, 2.0]
    with urllib.request.urlopen(service.swagger_uri) as swagger:
        definitions = json.load(swagger)["definitions"]
    assert definitions["ServiceInput"]["properties"]["data"]["format"] == "numpy.ndarray"
    # A body that is not an object of run()'s arguments is refused before run() is called.
    with pytest.raises(WebserviceException, match=r"400.*JSON object of run"):
        service.run([1, 2])


def test_delete_leaves_alone_a_process_that_got_the_recorded_pid(
    workspace: Workspace, linear: tuple[Model, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    service = Model.deploy(
        workspace, "reboot", [linear[0]], inference_config(tmp_path, "echo_score.py")
    )
    service.wait_for_deployment()
    record_path = workspace.folder / "services" / "reboot.json"
    record = json.loads(record_path.read_text())
    os.killpg(record["pid"], signal.SIGKILL)
    wait_for(lambda: processes_of_group(record["pid"]) == [])
    # After a reboot the number may belong to another program leading a group of its own.
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        record.update(pid=other.pid, start_time=start_time(other.pid) - 1)
        record_path.write_text(json.dumps(record))
        Webservice(workspace, "reboot").delete()
        assert other.poll() is None
        assert Webservice.list(workspace) == []
    finally:
        other.kill()
        other.wait()
