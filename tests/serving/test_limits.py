"""AciWebservice's cpu_cores and memory_gb kept as limits by a real local service, and a
built environment leased while its service runs."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import pytest

from modelyard import Environment, Workspace
from modelyard.errors import ValidationError, WebserviceException
from modelyard.model import InferenceConfig, Model
from modelyard.runner.envbuild.cache import EnvironmentCache
from modelyard.serving.limits import cpus_for, group_rss_bytes
from modelyard.webservice import AciWebservice, AksWebservice
from modelyard.webservice.webservice import FAILED, HEALTHY
from tests.helpers import wait_for
from tests.runner.wheels import make_wheel, unique_name
from tests.serving.conftest import SCRIPTS, inference_config, processes_of_group


def test_cpus_are_chosen_by_count_and_spread_by_port() -> None:
    assert cpus_for(1, {0, 1, 2, 3}, port=6789) == {1}
    assert cpus_for(1.5, {0, 1, 2, 3}, port=6789) == {1, 2}
    assert cpus_for(0.1, {4, 6}, port=6790) == {4}
    assert cpus_for(0.1, {4, 6}, port=6791) == {6}
    assert cpus_for(3, {0, 1, 2, 3}, port=6791) == {3, 0, 1}
    assert cpus_for(16, {0, 1}, port=1) == {0, 1}


@pytest.mark.parametrize("field", ["cpu_cores", "memory_gb"])
@pytest.mark.parametrize("value", [0, -1, "1", True])
def test_limits_that_are_not_positive_numbers_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        AciWebservice.deploy_configuration(**{field: value})


def test_the_service_and_its_workers_run_on_as_many_cpus_as_cpu_cores_asks(
    workspace: Workspace, linear: tuple[Model, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    config = AciWebservice.deploy_configuration(cpu_cores=0.5, workers=2)
    service = Model.deploy(
        workspace, "one-cpu", [linear[0]], inference_config(tmp_path, "echo_score.py"), config
    )
    service.wait_for_deployment()
    expected = cpus_for(0.5, os.sched_getaffinity(0), service.port)
    processes = processes_of_group(service._record["pid"])
    assert len(processes) >= 3  # uvicorn's supervisor and its two workers
    for pid in processes:
        assert os.sched_getaffinity(pid) == expected
    answer = service.run({"x": 1})
    assert os.sched_getaffinity(answer["pid"]) == expected


def test_a_service_over_its_memory_is_stopped_and_shows_failed_saying_why(
    workspace: Workspace, linear: tuple[Model, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    config = AciWebservice.deploy_configuration(memory_gb=0.3)
    service = Model.deploy(
        workspace, "small", [linear[0]], inference_config(tmp_path, "memory_score.py"), config
    )
    service.wait_for_deployment()
    group = service._record["pid"]
    assert group_rss_bytes(group) < 0.3 * 1024**3
    assert service.run({"megabytes": 10}) == {"held_mb": 10}
    # Answered or cut off, as the watch's next look (every half second) falls.
    with contextlib.suppress(WebserviceException):
        service.run({"megabytes": 400})
    wait_for(lambda: not processes_of_group(group))
    assert service.state == FAILED
    with pytest.raises(WebserviceException, match="does not answer"):
        service.run({"megabytes": 1})
    assert "over its memory_gb limit of 0.3" in service.get_logs()
    # Started again, it serves with a fresh process (and fresh memory).
    service.start()
    assert service.state == HEALTHY
    assert service.run({"megabytes": 10}) == {"held_mb": 10}


def test_a_built_environment_stays_while_its_service_runs_and_goes_after(
    workspace: Workspace,
    linear: tuple[Model, np.ndarray, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache_root = tmp_path / "envs"
    monkeypatch.setenv("MODELYARD_ENV_CACHE", str(cache_root))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    name = unique_name()
    make_wheel(wheels, name, "1.0")
    env = Environment("tiny", pip_packages=[f"{name}==1.0"], inherit_base_packages=True)
    source = tmp_path / "src"
    source.mkdir()
    (source / "score.py").write_bytes((SCRIPTS / "echo_score.py").read_bytes())
    config = InferenceConfig(entry_script="score.py", source_directory=source, environment=env)
    service = Model.deploy(workspace, "built", [linear[0]], config)
    service.wait_for_deployment()
    cache = EnvironmentCache(cache_root)
    assert len(cache.entries()) == 1
    pruned = cache.prune(everything=True)
    assert pruned.removed == [] and len(pruned.kept_in_use) == 1
    assert service.run({"x": 1})["echo"] == {"x": 1}  # its Python is still there
    service.delete()
    assert len(cache.prune(everything=True).removed) == 1
    assert cache.entries() == []


def test_aks_replicas_on_this_machine_are_workers_sharing_their_limits() -> None:
    config = AksWebservice.deploy_configuration(num_replicas=3, cpu_cores=0.5, memory_gb=0.25)
    assert (config.workers, config.cpu_cores, config.memory_gb) == (3, 1.5, 0.75)
    unlimited = AksWebservice.deploy_configuration(num_replicas=2)
    assert (unlimited.workers, unlimited.cpu_cores, unlimited.memory_gb) == (2, None, None)
