"""The Environment SDK object: its checks, the workspace's versions, and how estimators and
ScriptRunConfig compile it into a run's job."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelyard import Environment, Experiment, Workspace
from modelyard.errors import NotFoundError, ValidationError
from modelyard.runner.envbuild import check_submittable
from modelyard.runner.envbuild.requirements import framework_requirements
from modelyard.runner.job import JobSpec
from modelyard.script_run_config import ScriptRunConfig
from modelyard.train import Estimator, PyTorch, TensorFlow

SCRIPTS = Path(__file__).parent.parent / "runner" / "scripts"


def test_register_makes_a_version_only_when_the_content_changes(workspace: Workspace) -> None:
    env = Environment("train-env", pip_packages=["six==1.17.0"], python_version="3.11")
    assert env.version is None
    assert env.register(workspace) is env and env.version == 1
    same = Environment("train-env", pip_packages=["six==1.17.0"], python_version="3.11")
    assert same.register(workspace).version == 1
    changed = Environment(
        "train-env", pip_packages=["six==1.17.0"], environment_variables={"A": "1"}
    )
    assert changed.register(workspace).version == 2
    latest = Environment.get(workspace, "train-env")
    assert (latest.version, latest.environment_variables) == (2, {"A": "1"})
    first = Environment.get(workspace, "train-env", version=1)
    assert (first.pip_packages, first.python_version) == (["six==1.17.0"], "3.11")
    Environment("other").register(workspace)
    listed = Environment.list(workspace)
    registered = {name: env.version for name, env in listed.items() if not env.curated}
    assert registered == {"other": 1, "train-env": 2}
    with pytest.raises(NotFoundError, match="train-env"):
        Environment.get(workspace, "train-env", version=3)
    with pytest.raises(ValidationError) as info:
        Environment.get(workspace, "train-env", version=0)
    assert info.value.field == "version"


def test_requirement_files_are_read_when_the_environment_is_made(
    workspace: Workspace, tmp_path: Path
) -> None:
    (tmp_path / "wheels").mkdir()
    (tmp_path / "base.txt").write_text("attrs>=23\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "# pinned\nsix==1.17.0  # the one we test with\n-r base.txt\n"
        "--find-links wheels\nnumpy>=1.26; \\\n  python_version >= '3.10'\n"
    )
    env = Environment.from_pip_requirements("from-file", requirements)
    assert env.pip_requirements == [
        "six==1.17.0",
        "attrs>=23",
        f"--find-links {tmp_path / 'wheels'}",  # relative to the file, wherever it is built
        "numpy>=1.26;   python_version >= '3.10'",
    ]
    env.register(workspace)
    requirements.unlink()  # the lines were kept: the file may go away
    assert Environment.get(workspace, "from-file").pip_requirements == env.pip_requirements
    for line, word in (("-c constraints.txt", "constraint"), ("-e ./pkg", "editable")):
        requirements.write_text(line + "\n")
        with pytest.raises(ValidationError, match=word) as info:
            Environment.from_pip_requirements("x", requirements)
        assert info.value.field == "pip_requirements_file"
    with pytest.raises(ValidationError) as info:
        Environment.from_pip_requirements("x", tmp_path / "missing.txt")
    assert info.value.field == "pip_requirements_file"


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"name": "bad name"}, "name"),
        ({"pip_packages": ["numpy>>1"]}, "pip_packages"),
        ({"pip_packages": "numpy"}, "pip_packages"),
        ({"pip_packages": ["--trusted-host example.com"]}, "pip_packages"),
        ({"python_version": "2.7"}, "python_version"),
        ({"python_version": "3.10"}, "python_version"),
        ({"python_version": "latest"}, "python_version"),
        ({"environment_variables": {"1BAD": "x"}}, "environment_variables"),
        ({"inherit_base_packages": "yes"}, "inherit_base_packages"),
        ({"conda_packages": ["-c conda-forge"]}, "conda_packages"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(
    arguments: dict[str, object], field: str
) -> None:
    settings: dict[str, object] = {"name": "env", **arguments}
    with pytest.raises(ValidationError) as info:
        Environment(**settings)  # type: ignore[arg-type]
    assert info.value.field == field


def test_python_versions_below_the_clients_are_explained() -> None:
    with pytest.raises(ValidationError, match=r"needs Python >=3\.11"):
        Environment("env", python_version="3.10")
    assert Environment("env", python_version="3").python_version == "3"


def test_from_existing_python_keeps_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = Environment.from_existing_python("mine", "venv/bin/python")
    assert env.python_path == str(tmp_path / "venv" / "bin" / "python")
    assert Environment.from_existing_python("mine", sys.executable).python_path == sys.executable


def test_estimators_and_script_run_configs_compile_the_environment(workspace: Workspace) -> None:
    env = Environment(
        "merged",
        pip_packages=["six==1.17.0"],
        python_version="3.11",
        environment_variables={"FROM_ENV": "1", "BOTH": "env"},
        inherit_base_packages=True,
    ).register(workspace)
    _folder, spec = Estimator(
        SCRIPTS,
        "env_report.py",
        pip_packages=["attrs", "six==1.17.0"],
        environment_definition=env,
        environment_variables={"BOTH": "estimator"},
    )._to_job()
    assert spec.pip_packages == ["six==1.17.0", "attrs"]  # each once, the environment's first
    assert spec.environment_variables == {"FROM_ENV": "1", "BOTH": "estimator"}
    assert (spec.python_version, spec.inherit_base_packages) == ("3.11", True)
    assert spec.environment_name == "merged:1"
    _folder, spec = ScriptRunConfig(SCRIPTS, "env_report.py", environment=env)._to_job()
    assert spec.pip_packages == ["six==1.17.0"] and spec.environment_variables["BOTH"] == "env"
    assert JobSpec.from_json(spec.to_json()) == spec


def test_submit_refuses_what_is_not_an_environment(experiment: Experiment) -> None:
    with pytest.raises(ValidationError) as info:
        experiment.submit(ScriptRunConfig(SCRIPTS, "env_report.py", environment={"pip": ["x"]}))
    assert info.value.field == "environment"
    with pytest.raises(ValidationError) as info:
        experiment.submit(TensorFlow(SCRIPTS, "env_report.py", framework_version="two"))
    assert info.value.field == "framework_version"
    assert list(experiment.get_runs()) == []


def test_framework_defaults_are_documented_versions() -> None:
    assert TensorFlow.DEFAULT_VERSION == "2.21" and PyTorch.DEFAULT_VERSION == "2.14.1"
    tensorflow = framework_requirements("tensorflow", None, use_gpu=False)
    assert tensorflow[1] == "tf-keras==2.21.*" and tensorflow[0].endswith("==2.21.*")
    assert framework_requirements("tensorflow", "2.20.1", use_gpu=True) == [
        "tensorflow==2.20.1",
        "tf-keras==2.20.*",
    ]
    assert framework_requirements("pytorch", None, use_gpu=False) == [
        "torch==2.14.1",
        "torchvision==0.29.1",
        "numpy>=2",
    ]
    check_submittable(JobSpec(script="x.py", framework="pytorch", framework_version="2.13"))
