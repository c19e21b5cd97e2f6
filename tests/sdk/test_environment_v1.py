"""v1's environment objects: CondaDependencies, Environment's python and docker
sections, conda specifications, curated environments, string versions, ws.environments,
run.get_environment(), and the framework versions refused at submit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard import Environment, Experiment, Workspace
from modelyard.conda_dependencies import CondaDependencies
from modelyard.distributed import MpiConfiguration
from modelyard.errors import NotFoundError, ValidationError
from modelyard.runner.envbuild.horovod import horovod_build
from modelyard.runner.envbuild.requirements import framework_requirements
from modelyard.script_run_config import ScriptRunConfig
from modelyard.train import PyTorch, TensorFlow

SCRIPTS = Path(__file__).parents[1] / "runner" / "scripts"
# The keys an environment's definition had before v1's sections: one that does not use them
# must keep exactly these, so its content hash (and version) stays what it was.
DEFINITION_KEYS = {
    "pip_packages",
    "pip_requirements",
    "pip_requirements_file",
    "python_version",
    "python_path",
    "environment_variables",
    "inherit_base_packages",
    "conda_packages",
}


def test_conda_dependencies_round_trip_through_a_file(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="azureml-defaults"):
        cd = CondaDependencies.create(
            pip_packages=["scikit-learn==1.9.*", "azureml-defaults", "pillow"],
            conda_packages=["numpy=2.4"],
            python_version="3.11",
            pip_indexurl="https://pypi.example.org/simple",
        )
    cd.add_channel("conda-forge")
    cd.add_channel("conda-forge")  # once
    cd.add_pip_package("pillow==11.*")  # replaces pillow
    cd.add_conda_package("scipy=1.17")
    cd.add_conda_package("numpy=2.3")  # replaces numpy=2.4
    cd.remove_conda_package("scipy")
    assert cd.pip_packages == ["scikit-learn==1.9.*", "pillow==11.*"]
    assert cd.pip_options == ["--index-url https://pypi.example.org/simple"]
    assert cd.conda_packages == ["python=3.11", "numpy=2.3"]
    assert cd.conda_channels == ["conda-forge"] and cd.get_python_version() == "3.11"

    text = cd.serialize_to_string()
    assert "- python=3.11" in text and "pip:" in text and "azureml" not in text
    saved = Path(cd.save(tmp_path / "environment.yml"))
    again = CondaDependencies._from_file(saved)
    assert again == cd and again.serialize_to_string() == text
    assert CondaDependencies(conda_dependencies_file_path=saved).pip_packages == cd.pip_packages
    in_folder = Path(cd.save_to_file(tmp_path / "src", "conda.yml"))
    assert in_folder == tmp_path / "src" / "conda.yml"
    assert CondaDependencies._from_file(in_folder).conda_packages == cd.conda_packages
    cd.remove_pip_package("scikit-learn")
    assert cd.pip_packages == ["pillow==11.*"]


def test_a_conda_file_that_is_not_one_is_refused_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "environment.yml"
    bad.write_text("dependencies:\n  - numpy\n  - {conda: [x]}\n")
    with pytest.raises(ValidationError, match="neither a conda package nor a pip section"):
        CondaDependencies(bad)
    bad.write_text("dependencies: [numpy\n")
    with pytest.raises(ValidationError, match="not valid YAML") as info:
        Environment.from_conda_specification("bad", bad)
    assert str(bad) in str(info.value)
    # A YAML tag that would build a Python object is not read (safe_load).
    bad.write_text("dependencies: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ValidationError, match="not valid YAML"):
        CondaDependencies(bad)


def test_a_conda_specification_becomes_the_runs_packages_and_python(
    workspace: Workspace, tmp_path: Path
) -> None:
    spec = tmp_path / "environment.yml"
    spec.write_text(
        "name: myenv\n"
        "dependencies:\n"
        "  - python=3.11\n"
        "  - pip\n"
        "  - conda-forge::numpy=2.4\n"
        "  - pip:\n"
        "    - six==1.17.0\n"
        "    - azureml-core==1.48\n"
    )
    with pytest.warns(UserWarning, match="azureml-core"):
        env = Environment.from_conda_specification("from-yaml", spec)
    _, job = ScriptRunConfig(SCRIPTS, "env_report.py", environment=env)._to_job()
    assert job.pip_packages == ["six==1.17.0"]
    assert job.conda_packages == ["conda-forge::numpy=2.4"]  # "pip" is the installer's
    assert job.python_version == "3.11"


def test_a_python_pin_the_client_cannot_run_on_is_explained(tmp_path: Path) -> None:
    spec = tmp_path / "environment.yml"
    spec.write_text("dependencies:\n  - python=3.8\n  - pip:\n    - six\n")
    with pytest.raises(ValidationError) as info:
        Environment.from_conda_specification("old", spec)
    message = str(info.value)
    assert info.value.field == "file_path" and str(spec) in message
    assert "python=3.8" in message and ">=3.11" in message and "choose a version" in message


def test_v1_sections_round_trip_through_registration(workspace: Workspace) -> None:
    env = Environment("v1-env")
    env.python.conda_dependencies = CondaDependencies.create(
        pip_packages=["six==1.17.0"], conda_packages=["numpy=2.4"]
    )
    env.docker.enabled = True
    env.docker.base_image = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04"
    env.docker.shm_size = "2g"
    env.environment_variables = {"MY_SETTING": "1"}
    env.register(workspace)
    back = Environment.get(workspace, "v1-env", version="1")  # v1 writes versions as strings
    assert back.version == 1
    assert back.python.conda_dependencies == env.python.conda_dependencies
    assert (back.docker.enabled, back.docker.base_image, back.docker.shm_size) == (
        True,
        "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04",
        "2g",
    )
    assert back.environment_variables == {"MY_SETTING": "1"}
    assert env.register(workspace).version == 1  # nothing changed
    env.docker.shm_size = "4g"
    assert env.register(workspace).version == 2

    managed = Environment("managed")
    managed.python.user_managed_dependencies = True
    managed.python.interpreter_path = sys.executable
    managed.register(workspace)
    again = Environment.get(workspace, "managed")
    assert again.python.user_managed_dependencies and again.python_path == sys.executable
    assert workspace.environments["managed"].version == 1


def test_environments_without_the_v1_sections_keep_their_content(workspace: Workspace) -> None:
    plain = Environment("plain", pip_packages=["six==1.17.0"], python_version="3.11")
    assert set(plain._definition()) == DEFINITION_KEYS
    plain.register(workspace)
    again = Environment.get(workspace, "plain")
    assert set(again._definition()) == DEFINITION_KEYS
    assert again.register(workspace).version == 1


def test_curated_environments_are_found_listed_and_protected(workspace: Workspace) -> None:
    minimal = Environment.get(workspace, "AzureML-Minimal")
    assert minimal.curated and minimal.version == 1
    assert minimal.python.conda_dependencies is not None
    assert minimal.python.conda_dependencies.pip_packages == []
    assert Environment.get(workspace, "AzureML-Minimal", version="1").curated
    sklearn = Environment.get(workspace, "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu")
    assert sklearn.python.conda_dependencies is not None
    assert "- scikit-learn==" in sklearn.python.conda_dependencies.serialize_to_string()
    torch = Environment.get(workspace, "AzureML-PyTorch-1.6-CPU")
    assert torch.python.conda_dependencies is not None
    pinned = {line.split("==")[0] for line in torch.python.conda_dependencies.pip_packages}
    assert pinned >= {"torch", "torchvision"}
    Environment("mine").register(workspace)
    listed = Environment.list(workspace)
    assert not listed["mine"].curated
    assert listed["AzureML-Tutorial"].curated and listed["AzureML-TensorFlow-2.x-CPU"].curated
    assert set(workspace.environments) == set(listed)

    with pytest.raises(NotFoundError) as info:
        Environment.get(workspace, "AzureML-Minimall")
    assert "close names: AzureML-Minimal" in str(info.value)
    with pytest.raises(NotFoundError, match="version 1 only"):
        Environment.get(workspace, "AzureML-Minimal", version="2")
    with pytest.raises(ValidationError, match="clone") as refused:
        minimal.register(workspace)
    assert refused.value.field == "name"
    copy = minimal.clone("my-minimal")
    assert not copy.curated and copy.register(workspace).version == 1


def test_env_curated_lists_the_curated_environments() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", "env", "curated", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    listed = {entry["name"]: entry for entry in json.loads(done.stdout)}
    assert listed["AzureML-Minimal"]["pipPackages"] == []
    assert "scikit-learn 0.24" in listed["AzureML-sklearn-0.24-ubuntu18.04-py37-cpu"]["v1Held"]


def test_a_run_on_a_curated_environment_and_its_get_environment(
    experiment: Experiment, tmp_path: Path
) -> None:
    minimal = Environment.get(experiment.workspace, "AzureML-Minimal")
    run = experiment.submit(ScriptRunConfig(SCRIPTS, "env_report.py", environment=minimal))
    assert run.wait_for_completion()["status"] == "Completed"
    assert run.get_metrics() == {"modules_checked": 0}  # the client ran there
    used = run.get_environment()
    assert used.name == "AzureML-Minimal" and used.curated

    own = Environment("unregistered", pip_packages=["pytest>=1"])
    own.environment_variables = {"FROM_ENV": "yes"}
    second = experiment.submit(ScriptRunConfig(SCRIPTS, "env_report.py", environment=own))
    assert second.wait_for_completion()["status"] == "Completed"
    got = second.get_environment()
    assert (got.name, got.pip_packages, got.environment_variables) == (
        "unregistered",
        ["pytest>=1"],
        {"FROM_ENV": "yes"},
    )
    with pytest.raises(NotFoundError, match="interactive"):
        experiment.start_logging().get_environment()


def test_tensorflow_1_is_refused_at_submit_naming_tf_compat_v1(experiment: Experiment) -> None:
    for version in ("1.13", "1.15.5"):
        with pytest.raises(ValidationError) as info:
            experiment.submit(TensorFlow(SCRIPTS, "env_report.py", framework_version=version))
        message = str(info.value)
        assert info.value.field == "framework_version"
        assert "no TensorFlow 1.x exists for Python 3." in message
        assert "tensorflow.compat.v1" in message and "framework_version out" in message
    with pytest.raises(ValidationError, match=r"2\.5 has no release .* 2\.12, 2\.13"):
        experiment.submit(TensorFlow(SCRIPTS, "env_report.py", framework_version="2.5"))
    # 2.12 to 2.15 came with Keras 2 inside: no tf-keras (which starts at 2.16).
    assert framework_requirements("tensorflow", "2.12", use_gpu=False) == ["tensorflow-cpu==2.12.*"]
    with pytest.raises(ValidationError, match=r"only torch 2\.x"):
        experiment.submit(PyTorch(SCRIPTS, "env_report.py", framework_version="1.6"))
    assert list(experiment.get_runs()) == []


def test_horovod_with_a_framework_it_cannot_build_against_is_refused_naming_what_can(
    experiment: Experiment,
) -> None:
    mpi = MpiConfiguration(process_count_per_node=2)
    cases = [
        PyTorch(SCRIPTS, "env_report.py", pip_packages=["horovod"], distributed_training=mpi),
        TensorFlow(SCRIPTS, "env_report.py", pip_packages=["horovod"], distributed_training=mpi),
        ScriptRunConfig(
            SCRIPTS, "env_report.py", environment=Environment("h", pip_packages=["horovod"])
        ),
    ]
    for config in cases:
        with pytest.raises(ValidationError) as info:
            experiment.submit(config)
        assert info.value.field == "pip_packages"
        assert "builds here with TensorFlow 2.12 only" in str(info.value)
    assert list(experiment.get_runs()) == []
    build = horovod_build(["horovod==0.28.1", "tensorflow-cpu==2.12.*"], None, None)
    assert build is not None and build.variables()["HOROVOD_WITH_TENSORFLOW"] == "1"
