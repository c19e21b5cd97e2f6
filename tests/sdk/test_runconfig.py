"""v1's RunConfiguration and ScriptRunConfig as notebooks write them: the import path, settings
made on ``src.run_config`` after construction, ``command=``, what is recorded and what is
refused; real runs on the local compute."""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from modelyard import Environment, Experiment, Run, Workspace
from modelyard import distributed as modelyard_distributed
from modelyard.errors import ValidationError
from modelyard.runconfig import (
    DataReferenceConfiguration,
    DockerConfiguration,
    MpiConfiguration,
    PyTorchConfiguration,
    RunConfiguration,
    TensorflowConfiguration,
)
from modelyard.script_run_config import ScriptRunConfig

SCRIPTS = Path(__file__).parents[1] / "runner" / "distributed_scripts"
V1_SCRIPTS = Path(__file__).parent / "v1_scripts"


def read(run: Run, name: str) -> str:
    return run._backend.read_run_file(run.id, name, 0, 1 << 30).decode()


def seen(run: Run) -> dict[str, Any]:
    """What hello.py saw."""
    result: dict[str, Any] = json.loads(read(run, "outputs/seen.json"))
    return result


def test_the_v1_import_path_holds_the_v1_names() -> None:
    runconfig = importlib.import_module("modelyard.runconfig")
    for name in (
        "RunConfiguration",
        "DockerConfiguration",
        "DataReferenceConfiguration",
        "HistoryConfiguration",
        "MpiConfiguration",
        "TensorflowConfiguration",
        "PyTorchConfiguration",
    ):
        assert name in runconfig.__all__
    # One definition per name: the distributed configurations are modelyard.distributed's.
    assert MpiConfiguration is modelyard_distributed.MpiConfiguration
    assert TensorflowConfiguration is modelyard_distributed.TensorflowConfiguration
    assert PyTorchConfiguration is modelyard_distributed.PyTorchConfiguration


def test_the_constructors_take_v1s_arguments_in_v1s_order() -> None:
    assert list(inspect.signature(ScriptRunConfig).parameters) == [
        "source_directory",
        "script",
        "arguments",
        "run_config",
        "_telemetry_values",
        "compute_target",
        "environment",
        "distributed_job_config",
        "resume_from",
        "max_run_duration_seconds",
        "command",
        "docker_runtime_config",
    ]
    assert list(inspect.signature(RunConfiguration).parameters) == [
        "script",
        "arguments",
        "framework",
        "communicator",
        "conda_dependencies",
        "_history_enabled",
        "_path",
        "_name",
        "command",
    ]
    assert list(inspect.signature(DockerConfiguration).parameters) == [
        "use_docker",
        "shared_volumes",
        "arguments",
        "shm_size",
    ]


def test_a_script_run_config_without_script_or_command_is_refused(
    experiment: Experiment,
) -> None:
    with pytest.raises(ValidationError) as info:
        experiment.submit(ScriptRunConfig(V1_SCRIPTS))
    assert info.value.field == "script"


def test_a_run_configuration_has_v1s_attributes_and_defaults() -> None:
    run_config = RunConfiguration(script="train.py", arguments=["--x", 1])
    assert (run_config.target, run_config.node_count, run_config.framework) == (
        "local",
        1,
        "Python",
    )
    assert run_config.communicator == "None"
    assert isinstance(run_config.mpi, MpiConfiguration)
    assert isinstance(run_config.tensorflow, TensorflowConfiguration)
    assert isinstance(run_config.pytorch, PyTorchConfiguration)
    assert isinstance(run_config.environment, Environment)
    assert run_config.environment_variables == {} and run_config.data_references == {}
    assert run_config.history.directories_to_watch == ["logs"]
    assert run_config.max_run_duration_seconds is None
    # ScriptRunConfig takes script and arguments from it when it gives none.
    src = ScriptRunConfig(V1_SCRIPTS, run_config=run_config)
    assert (src.script, src.arguments) == ("train.py", ["--x", 1])
    assert ScriptRunConfig(V1_SCRIPTS, "hello.py").max_run_duration_seconds == 2592000
    run_config.max_run_duration_seconds = 60
    assert ScriptRunConfig(V1_SCRIPTS, run_config=run_config).max_run_duration_seconds == 60


def test_run_config_edits_after_construction_are_what_runs(
    experiment: Experiment,
) -> None:
    src = ScriptRunConfig(source_directory=SCRIPTS, script="show_env.py")
    src.run_config.target = "local"
    src.run_config.environment = Environment(
        "settings", environment_variables={"FROM_ENVIRONMENT": "1"}
    )
    src.run_config.environment_variables["MY_SETTING"] = "from run_config"
    src.run_config.node_count = 2
    src.run_config.communicator = "Mpi"
    src.run_config.mpi.process_count_per_node = 2
    run = experiment.submit(src)
    run.wait_for_completion(raise_on_error=True)
    ranks = [json.loads(read(run, f"outputs/env_{i}.json")) for i in range(4)]
    assert [r["OMPI_COMM_WORLD_RANK"] for r in ranks] == ["0", "1", "2", "3"]
    assert all(r["OMPI_COMM_WORLD_SIZE"] == "4" for r in ranks)
    assert all(r["MY_SETTING"] == "from run_config" for r in ranks)
    assert run.get_properties()["modelyard.process_count"] == "4"


def test_a_distributed_job_config_is_the_one_run_config_holds(experiment: Experiment) -> None:
    config = MpiConfiguration()
    src = ScriptRunConfig(SCRIPTS, "show_env.py", distributed_job_config=config)
    assert src.run_config.mpi is config and src.distributed_job_config is config
    config.process_count_per_node = 2  # set on the object after construction
    run = experiment.submit(src)
    run.wait_for_completion(raise_on_error=True)
    assert json.loads(read(run, "outputs/env_1.json"))["OMPI_COMM_WORLD_SIZE"] == "2"


def test_an_environment_and_target_set_on_the_script_run_config_after_construction(
    experiment: Experiment,
) -> None:
    src = ScriptRunConfig(V1_SCRIPTS, "hello.py", arguments=["--epochs", 3])
    src.environment = Environment("later", environment_variables={"FROM_ENVIRONMENT": "yes"})
    src.compute_target = "local"
    src.arguments.append("--more")
    assert src.run_config.environment is src.environment
    run = experiment.submit(src)
    run.wait_for_completion(raise_on_error=True)
    assert seen(run)["argv"] == ["--epochs", "3", "--more"]
    assert seen(run)["FROM_ENVIRONMENT"] == "yes"


def test_a_command_list_runs_without_a_shell(experiment: Experiment) -> None:
    src = ScriptRunConfig(V1_SCRIPTS, command=["python", "hello.py", "--x", 1, "a b"])
    run = experiment.submit(src)
    run.wait_for_completion(raise_on_error=True)
    assert seen(run)["argv"] == ["--x", "1", "a b"]  # "a b" one word: no shell split it


def test_a_command_string_and_a_program_other_than_python(
    experiment: Experiment, workspace: Workspace
) -> None:
    run = experiment.submit(ScriptRunConfig(V1_SCRIPTS, command="python hello.py --lr 0.1"))
    run.wait_for_completion(raise_on_error=True)
    assert seen(run)["argv"] == ["--lr", "0.1"]
    run = experiment.submit(ScriptRunConfig(V1_SCRIPTS, command=["sh", "show_word.sh", "$HOME"]))
    run.wait_for_completion(raise_on_error=True)
    assert "the word is $HOME" in read(run, "user_logs/std_log.txt")
    # python -m: the run's own interpreter, with its options.
    run = experiment.submit(ScriptRunConfig(V1_SCRIPTS, command=["python", "-c", "print(6 * 7)"]))
    run.wait_for_completion(raise_on_error=True)
    assert "42" in read(run, "user_logs/std_log.txt")


def test_commands_that_would_need_a_shell_or_collide_are_refused(experiment: Experiment) -> None:
    for src, words in (
        (ScriptRunConfig(V1_SCRIPTS, command="python hello.py && echo done"), "needs a shell"),
        (ScriptRunConfig(V1_SCRIPTS, "hello.py", command=["python", "hello.py"]), "not both"),
        (ScriptRunConfig(V1_SCRIPTS, command=[]), "must start with the program"),
        (
            ScriptRunConfig(
                V1_SCRIPTS,
                command=["sh", "show_word.sh", "x"],
                distributed_job_config=MpiConfiguration(),
            ),
            "an MPI run starts each rank through Python",
        ),
    ):
        with pytest.raises(ValidationError, match=words) as info:
            experiment.submit(src)
        assert info.value.field == "command"
    assert list(experiment.get_runs()) == []


def test_docker_settings_are_recorded_with_one_warning(experiment: Experiment) -> None:
    src = ScriptRunConfig(
        V1_SCRIPTS,
        "hello.py",
        docker_runtime_config=DockerConfiguration(use_docker=True, shm_size="2g"),
    )
    src.run_config.history.directories_to_watch = ["logs", "tb"]
    with pytest.warns(UserWarning) as caught:
        run = experiment.submit(src)
    ours = [w for w in caught if issubclass(w.category, UserWarning)]  # not the agent's start
    assert len(ours) == 1 and "docker=" in str(ours[0].message)
    assert ours[0].filename == __file__
    run.wait_for_completion(raise_on_error=True)
    properties = run.get_properties()
    assert json.loads(properties["modelyard.v1.docker"]) == {"use_docker": True, "shm_size": "2g"}
    assert json.loads(properties["modelyard.v1.history"]) == {
        "directories_to_watch": ["logs", "tb"]
    }
    (warning,) = run.get_details()["warnings"]
    assert "docker was not used" in warning and "modelyard.v1.docker" in warning


def test_an_environments_docker_section_is_recorded_and_the_details_say_it_was_not_used(
    experiment: Experiment,
) -> None:
    env = Environment("docker-env")
    env.docker.enabled = True
    env.docker.base_image = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04"
    env.python.user_managed_dependencies = True  # the submitting Python: nothing to build
    run = experiment.submit(ScriptRunConfig(V1_SCRIPTS, "hello.py", environment=env))
    run.wait_for_completion(raise_on_error=True)
    recorded = json.loads(run.get_properties()["modelyard.v1.environment.docker"])
    assert recorded["enabled"] is True and recorded["base_image"].endswith("ubuntu20.04")
    details = run.get_details()
    assert details["runDefinition"]["environment"]["docker"] == {"enabled": False}
    (warning,) = details["warnings"]
    assert "docker was not used" in warning and "environment.docker" in warning
    plain = experiment.submit(ScriptRunConfig(V1_SCRIPTS, "hello.py"))
    plain.wait_for_completion(raise_on_error=True)
    assert plain.get_details()["warnings"] == []


def test_data_references_of_the_run_config_reach_the_script(
    experiment: Experiment, workspace: Workspace, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "numbers.csv").write_text("1,2,3\n")
    datastore = workspace.get_default_datastore()
    datastore.upload(src_dir=data, target_path="numbers", show_progress=False)
    src = ScriptRunConfig(V1_SCRIPTS, "hello.py")
    src.run_config.data_references["numbers"] = DataReferenceConfiguration(
        datastore_name=datastore.name, path_on_datastore="numbers", mode="download"
    )
    run = experiment.submit(src)
    run.wait_for_completion(raise_on_error=True)
    assert seen(run)["data"] == {"numbers": ["numbers.csv"]}


def test_settings_that_would_be_dropped_are_refused_naming_them(experiment: Experiment) -> None:
    src = ScriptRunConfig(SCRIPTS, "show_env.py")
    src.run_config.mpi.process_count_per_node = 2  # but the communicator is still "None"
    with pytest.raises(
        ValidationError, match=r"run_config.mpi is set .* run_config.communicator is 'None'"
    ) as info:
        experiment.submit(src)
    assert info.value.field == "communicator"
    src.run_config.communicator = "Carrier pigeon"
    with pytest.raises(ValidationError, match="is not a communicator"):
        experiment.submit(src)
    with pytest.raises(ValidationError) as info:
        ScriptRunConfig(V1_SCRIPTS, "hello.py", resume_from="azureml://run1/outputs")
    assert info.value.field == "resume_from"
    pyspark = ScriptRunConfig(
        V1_SCRIPTS, "hello.py", run_config=RunConfiguration(framework="PySpark")
    )
    with pytest.raises(ValidationError, match="'PySpark' runs are not supported"):
        experiment.submit(pyspark)
    assert list(experiment.get_runs()) == []


def test_a_tensorflow_communicator_runs_the_parameter_server_layout(
    experiment: Experiment,
) -> None:
    run_config = RunConfiguration(framework="TensorFlow", communicator="ParameterServer")
    run_config.node_count = 2
    run_config.tensorflow.worker_count = 2
    src = ScriptRunConfig(V1_SCRIPTS, "tf_config.py", run_config=run_config)
    run = experiment.submit(src)
    run.wait_for_completion(raise_on_error=True)
    tasks = [json.loads(read(run, f"outputs/tf_config_{i}.json"))["task"]["type"] for i in range(3)]
    assert tasks == ["worker", "worker", "ps"]


def test_conda_dependencies_bring_their_packages() -> None:
    class CondaDependencies:  # the one method of v1's class a run configuration reads
        def serialize_to_string(self) -> str:
            return "dependencies:\n  - python=3.11\n  - pip:\n    - requests==2.32.3\n"

    run_config = RunConfiguration(conda_dependencies=CondaDependencies())
    spec = ScriptRunConfig(V1_SCRIPTS, "hello.py", run_config=run_config)._to_job()[1]
    assert (spec.python_version, spec.pip_packages) == ("3.11", ["requests==2.32.3"])
