"""Scoring services on a real multi-node Ray cluster on this machine, as Ray Serve
applications (``compute_target=``): replicas on the cluster's worker nodes, Serve's proxy
on its head.

One cluster for the module (max 2 nodes of 2 CPUs), deleted at the end, which must leave no
Ray process. The module runs on one xdist worker (``xdist_group``), as the other cluster
tests do.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="services on a cluster need the cluster extra (Ray)")

from modelyard import Workspace  # noqa: E402
from modelyard.compute import AmlCompute, ComputeTarget  # noqa: E402
from modelyard.compute.ray.cluster import ClusterState, session_processes  # noqa: E402
from modelyard.compute.ray.serving import ServeCluster  # noqa: E402
from modelyard.compute.ray.targets import cluster_folder  # noqa: E402
from modelyard.errors import ConfigError, WebserviceException  # noqa: E402
from modelyard.model import Model  # noqa: E402
from modelyard.webservice import AciWebservice, AksWebservice, Webservice  # noqa: E402
from tests.helpers import run_cli  # noqa: E402
from tests.serving.conftest import inference_config  # noqa: E402

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.slow]

NAME = "servecluster"
Cluster = tuple[Workspace, AmlCompute, np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The cluster, and the linear model ``x @ weights + bias`` registered beside it."""
    root = tmp_path_factory.mktemp("serve")
    ws = Workspace.create("serve-ws", folder=root / "ws")
    config = AmlCompute.provisioning_configuration(
        vm_size="cpu=2,memory=4GB,gpu=0", min_nodes=0, max_nodes=2
    )
    target = ComputeTarget.create(ws, NAME, config)
    target.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=5)
    assert isinstance(target, AmlCompute)
    state = ClusterState.load(cluster_folder(ws.folder, NAME))
    assert state is not None
    rng = np.random.default_rng(0)
    weights, bias = rng.normal(size=(4, 3)), rng.normal(size=3)
    path = root / "linear.json"
    path.write_text(json.dumps({"weights": weights.tolist(), "bias": bias.tolist()}))
    Model.register(ws, path, "linear")
    yield ws, target, weights, bias
    for service in Webservice.list(ws):
        service.delete()
    target.delete()
    assert session_processes(state.session_id) == []


def serve_status(ws: Workspace, app: str) -> dict[str, Any]:
    """What Ray Serve itself says of application ``app`` (and whether Serve runs)."""
    return ServeCluster.find(ws.folder, ws._backend, NAME).call("status", {"app": app})


def http_status(url: str, body: bytes | None = None, key: str | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def service(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webservice]:
    """The linear model as ``svc``: 2 replicas of half a core, with keys, bodies up to 4 KiB."""
    ws, target, _, _ = cluster
    config = AksWebservice.deploy_configuration(
        compute_target=target,
        cpu_cores=0.5,
        memory_gb=0.5,
        num_replicas=2,
        auth_enabled=True,
        max_request_bytes=4096,
    )
    source = inference_config(tmp_path_factory.mktemp("svc"), "linear_pid_score.py")
    deployed = Model.deploy(ws, "svc", [Model(ws, "linear")], source, config)
    deployed.wait_for_deployment(show_output=True)
    yield deployed
    deployed.delete()


def test_two_replicas_on_the_cluster_score_the_model(cluster: Cluster, service: Webservice) -> None:
    ws, _, weights, bias = cluster
    assert service.state == "Healthy"
    assert service.scoring_uri == f"http://127.0.0.1:{service.port}/svc/score"
    record = json.loads((ws.folder / "services" / "svc.json").read_text())
    assert record["kind"] == "AKS" and record["compute"]["name"] == NAME
    assert [s.name for s in Webservice.list(ws, compute_type="AKS")] == ["svc"]

    rows = [[1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 0.0, 2.0]]
    pids = set()
    for _ in range(40):
        answer = service.run({"data": rows})
        pids.add(answer["pid"])
        if len(pids) == 2:
            break
    np.testing.assert_allclose(answer["scores"], np.array(rows) @ weights + bias)
    # Both replicas answered, and Serve says both run.
    assert len(pids) == 2
    replicas = serve_status(ws, "svc")["application"]["deployment"]["replicas"]
    assert [r["state"] for r in replicas] == ["RUNNING", "RUNNING"]
    assert {r["pid"] for r in replicas} == pids
    # The replicas' folder holds the models and the source, not the keys.
    assert answer["files"] == ["models", "source"]

    logs = service.get_logs()
    assert "POST /svc/score 200" in logs
    listed = run_cli(_cwd(ws), "service", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [entry] = [e for e in json.loads(listed.stdout) if e["name"] == "svc"]
    assert entry["state"] == "Healthy" and entry["computeTarget"] == NAME
    shown = run_cli(_cwd(ws), "service", "show", "svc")
    assert shown.returncode == 0, shown.stderr
    assert service.scoring_uri in shown.stdout and NAME in shown.stdout


def _cwd(ws: Workspace) -> Path:
    cwd = ws.folder.parent / "cwd"
    cwd.mkdir(exist_ok=True)
    ws.write_config(cwd)
    return cwd


def test_keys_health_swagger_and_errors(service: Webservice) -> None:
    body = json.dumps({"data": [[1, 2, 3, 4]]}).encode()
    assert http_status(service.scoring_uri, body) == 401
    assert http_status(service.scoring_uri, body, key="wrong") == 401
    assert http_status(service.scoring_uri, body, key=service.get_keys()[1]) == 200
    assert http_status(service.scoring_uri, b" " * 5000 + body, key=service.get_keys()[0]) == 413
    with urllib.request.urlopen(f"http://127.0.0.1:{service.port}/svc/", timeout=60) as health:
        assert health.read() == b"Healthy"
    with urllib.request.urlopen(service.swagger_uri, timeout=60) as swagger:
        assert json.loads(swagger.read())["paths"]["/score"]["post"]["security"]
    # A new key reaches the replicas (their user_config); the old one no longer opens.
    old_secondary = service.get_keys()[1]
    service.regen_key("Secondary")
    assert http_status(service.scoring_uri, body, key=old_secondary) == 401
    assert http_status(service.scoring_uri, body, key=service.get_keys()[1]) == 200
    assert http_status(service.scoring_uri, body, key=service.get_keys()[0]) == 200
    # run() raising answers 500, and the replica goes on answering.
    with pytest.raises(WebserviceException, match="500"):
        service.run({"data": "not rows"})
    assert service.run({"data": [[0, 0, 0, 0]]})["scores"]


def test_an_init_that_raises_fails_with_its_traceback(cluster: Cluster, tmp_path: Path) -> None:
    ws, target, _, _ = cluster
    config = AciWebservice.deploy_configuration(compute_target=target, cpu_cores=0.25)
    broken = Model.deploy(
        ws, "broken", [Model(ws, "linear")], inference_config(tmp_path, "init_raises.py"), config
    )
    with pytest.raises(WebserviceException, match="init\\(\\) raised") as raised:
        broken.wait_for_deployment()
    assert "the model file is corrupt (a test)" in str(raised.value)
    assert "Traceback" in str(raised.value)
    assert broken.state == "Failed"
    assert "the model file is corrupt (a test)" in broken.get_logs()
    broken.delete()
    assert serve_status(ws, "broken")["application"] is None


def test_what_the_cluster_cannot_hold_is_refused_before_anything_is_deployed(
    cluster: Cluster, tmp_path: Path
) -> None:
    ws, target, _, _ = cluster
    source = inference_config(tmp_path, "linear_pid_score.py")
    too_big = AksWebservice.deploy_configuration(compute_target=target, cpu_cores=3, num_replicas=1)
    with pytest.raises(ConfigError, match=r"cpu_cores=3, but a node .* has 2 cores"):
        Model.deploy(ws, "big", [Model(ws, "linear")], source, too_big)
    too_many = AksWebservice.deploy_configuration(
        compute_target=target, cpu_cores=1, num_replicas=5
    )
    with pytest.raises(ConfigError, match=r"5 replicas .* hold 4"):
        Model.deploy(ws, "many", [Model(ws, "linear")], source, too_many)
    assert not (ws.folder / "services" / "big.json").exists()
    assert not (ws.folder / "services" / "many.json").exists()


def test_autoscaling_reaches_serve_and_deleting_leaves_nothing(
    cluster: Cluster, service: Webservice, tmp_path: Path
) -> None:
    ws, target, _, _ = cluster
    config = AksWebservice.deploy_configuration(
        compute_target=target,
        autoscale_enabled=True,
        autoscale_min_replicas=1,
        autoscale_max_replicas=3,
        cpu_cores=0.25,
        auth_enabled=False,
    )
    auto = Model.deploy(
        ws, "auto", [Model(ws, "linear")], inference_config(tmp_path, "linear_pid_score.py"), config
    )
    auto.wait_for_deployment()
    said = serve_status(ws, "auto")["application"]["deployment"]["config"]["autoscaling_config"]
    assert (said["min_replicas"], said["max_replicas"]) == (1, 3)
    assert auto.run({"data": [[0, 0, 0, 0]]})["scores"]

    # Deleting one application leaves the other, and Serve, running.
    scoring_uri = service.scoring_uri
    service.delete()
    assert serve_status(ws, "svc")["application"] is None
    assert http_status(scoring_uri, b"{}") == 404
    assert auto.state == "Healthy"
    # The last one takes Serve with it.
    auto.delete()
    after = serve_status(ws, "auto")
    assert after["application"] is None and not after["serve_running"]
    assert Webservice.list(ws) == []
