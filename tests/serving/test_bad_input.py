"""Bad deployments and bad requests: each a clear error, nothing left running."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from modelyard import Workspace
from modelyard.compute import AmlCompute
from modelyard.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    ValidationError,
    WebserviceException,
)
from modelyard.model import InferenceConfig, Model
from modelyard.webservice import AciWebservice, AksWebservice, LocalWebservice, Webservice
from tests.serving.conftest import SCRIPTS, inference_config, processes_of_group

Linear = tuple[Model, np.ndarray, np.ndarray]


def _nothing_recorded(workspace: Workspace) -> None:
    assert Webservice.list(workspace) == []
    assert [p.name for p in (workspace.folder / "services").iterdir()] == []


def _post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_script_without_run_is_refused_before_anything_starts(
    workspace: Workspace, linear: Linear, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match=r"entry_script.*no run\(\)"):
        Model.deploy(workspace, "svc", [linear[0]], inference_config(tmp_path, "no_run.py"))
    _nothing_recorded(workspace)
    with pytest.raises(ValidationError, match="is not a file"):
        Model.deploy(workspace, "svc", [linear[0]], InferenceConfig(entry_script="missing.py"))
    _nothing_recorded(workspace)


def test_init_raising_fails_the_service_with_its_traceback_and_stops_it(
    workspace: Workspace, linear: Linear, tmp_path: Path
) -> None:
    service = Model.deploy(
        workspace, "broken", [linear[0]], inference_config(tmp_path, "init_raises.py")
    )
    record = workspace.folder / "services" / "broken.json"
    pid = json.loads(record.read_text())["pid"]
    with pytest.raises(WebserviceException, match="the model file is corrupt"):
        service.wait_for_deployment()
    assert service.state == "Failed"
    assert Webservice(workspace, "broken").state == "Failed"
    logs = service.get_logs()
    assert "Traceback" in logs and "RuntimeError: the model file is corrupt" in logs
    assert processes_of_group(pid) == []
    with pytest.raises(WebserviceException, match=r"answered|does not answer"):
        service.run({"data": []})


def test_run_raising_answers_500_with_its_message_and_the_service_stays_up(
    workspace: Workspace, linear: Linear, tmp_path: Path
) -> None:
    config = LocalWebservice.deploy_configuration(max_request_bytes=1000)
    service = Model.deploy(
        workspace, "fragile", [linear[0]], inference_config(tmp_path, "run_raises.py"), config
    )
    service.wait_for_deployment()
    with pytest.raises(WebserviceException, match=r"500.*ValueError: cannot score a boom"):
        service.run({"boom": 1})
    assert service.state == "Healthy"
    assert service.run({"fine": 1}) == {"ok": True}
    assert "ValueError: cannot score a boom" in service.get_logs()

    status, text = _post(service.scoring_uri, b'{"data": "' + b"x" * 2000 + b'"}')
    assert status == 413 and "over 1000 bytes" in text
    status, text = _post(service.scoring_uri, b"{not json")
    assert status == 400 and "not JSON" in text
    assert service.run({"fine": 2}) == {"ok": True}


def test_a_port_in_use_is_named_and_nothing_is_left(
    workspace: Workspace, linear: Linear, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConflictError, match=f"port {port}"):
            Model.deploy(
                workspace,
                "svc",
                [linear[0]],
                inference_config(tmp_path, "echo_score.py"),
                LocalWebservice.deploy_configuration(port=port),
            )
    _nothing_recorded(workspace)


def test_a_model_gone_from_the_registry_fails_the_deployment_cleanly(
    workspace: Workspace, linear: Linear, tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError):
        Model(workspace, "no-such-model")
    model = linear[0]
    model.delete()
    with pytest.raises(NotFoundError):
        Model.deploy(workspace, "svc", [model], inference_config(tmp_path, "echo_score.py"))
    _nothing_recorded(workspace)


def test_bad_names_settings_and_targets_are_refused(
    workspace: Workspace, linear: Linear, tmp_path: Path
) -> None:
    config = inference_config(tmp_path, "echo_score.py")
    with pytest.raises(ValidationError, match="name"):
        Model.deploy(workspace, "../escape", [linear[0]], config)
    with pytest.raises(ValidationError, match="workers"):
        LocalWebservice.deploy_configuration(workers=0)
    with pytest.raises(ValidationError, match="port"):
        LocalWebservice.deploy_configuration(port=70000)
    with pytest.raises(ConfigError, match="LocalWebservice runs on this machine"):
        LocalWebservice.deploy_configuration(compute_target="cpucluster")
    with pytest.raises(ValidationError, match="not a Ray cluster compute target"):
        AksWebservice.deploy_configuration(compute_target="cpucluster", num_replicas=1)
    with pytest.raises(ValidationError, match="models"):
        Model.deploy(workspace, "svc", [], config)
    with pytest.raises(WebserviceException, match="no service 'absent'"):
        Webservice(workspace, "absent")
    _nothing_recorded(workspace)
    assert SCRIPTS.is_dir()


def test_a_second_service_of_the_same_name_needs_overwrite(
    workspace: Workspace, linear: Linear, tmp_path: Path
) -> None:
    config = inference_config(tmp_path, "echo_score.py")
    first = Model.deploy(workspace, "svc", [linear[0]], config)
    first.wait_for_deployment()
    with pytest.raises(ConflictError, match="overwrite=True"):
        Model.deploy(workspace, "svc", [linear[0]], config)
    assert first.state == "Healthy"
    second = Model.deploy(workspace, "svc", [linear[0]], config, overwrite=True)
    second.wait_for_deployment()
    assert second.run({"x": 2})["echo"] == {"x": 2}


def test_bad_replica_counts_and_targets_of_a_cluster_deployment_are_refused(
    workspace: Workspace, linear: Linear, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match="num_replicas"):
        AksWebservice.deploy_configuration(num_replicas=0)
    with pytest.raises(ValidationError, match="autoscale_min_replicas"):
        AksWebservice.deploy_configuration(
            autoscale_enabled=True, autoscale_min_replicas=3, autoscale_max_replicas=2
        )
    with pytest.raises(ValidationError, match="not both"):
        AksWebservice.deploy_configuration(autoscale_enabled=True, num_replicas=2)
    with pytest.raises(ValidationError, match="cpu_cores"):
        AciWebservice.deploy_configuration(cpu_cores=-1)
    # A cluster recorded but not (yet) provisioned, then deleted: no Ray is started for it.
    record = workspace._backend.create_compute(
        "cpucluster",
        "AmlCompute",
        AmlCompute.provisioning_configuration(vm_size="cpu=2", max_nodes=1).to_dict(),
    )
    target = AmlCompute._from_record(workspace, record)
    config = AksWebservice.deploy_configuration(compute_target=target, num_replicas=1)
    source = inference_config(tmp_path, "echo_score.py")
    with pytest.raises(ConfigError, match="'cpucluster' is Creating, not Succeeded"):
        Model.deploy(workspace, "svc", [linear[0]], source, config)
    # v1's place for the cluster, Model.deploy's deployment_target, is the same.
    local_replicas = AksWebservice.deploy_configuration(num_replicas=1)
    with pytest.raises(ConfigError, match="'cpucluster' is Creating, not Succeeded"):
        Model.deploy(workspace, "svc", [linear[0]], source, local_replicas, target)
    with pytest.raises(ConfigError, match="a LocalWebservice runs on this machine"):
        Model.deploy(
            workspace, "svc", [linear[0]], source, LocalWebservice.deploy_configuration(), target
        )
    workspace._backend.delete_compute("cpucluster")
    with pytest.raises(ConfigError, match="'cpucluster' does not exist"):
        Model.deploy(workspace, "svc", [linear[0]], source, config)
    with pytest.raises(ConfigError, match="'cpucluster' was deleted"):
        AksWebservice.deploy_configuration(compute_target=target)
    _nothing_recorded(workspace)


def test_an_aks_configuration_without_a_cluster_is_the_local_service(
    workspace: Workspace, linear: Linear, tmp_path: Path
) -> None:
    config = AksWebservice.deploy_configuration(num_replicas=2)
    assert config.workers == 2 and config.auth_enabled and config.kind == "AKS"
    autoscaled = AksWebservice.deploy_configuration(autoscale_max_replicas=3)
    assert autoscaled.autoscale_enabled and autoscaled.workers == 3
    service = Model.deploy(
        workspace, "aks-svc", [linear[0]], inference_config(tmp_path, "echo_score.py"), config
    )
    service.wait_for_deployment()
    assert service.compute_type == "AKS" and service.compute_target_name is None
    assert service.run({"n": 1})["echo"] == {"n": 1}
    assert [s.name for s in Webservice.list(workspace, compute_type="aks")] == ["aks-svc"]
