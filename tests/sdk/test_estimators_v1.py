"""v1 estimators as v1 notebooks write them: the import paths, every v1 argument (honoured,
recorded with one warning, or refused), the v1 distributed backends, and real runs of them on
the local compute."""

from __future__ import annotations

import importlib
import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from modelyard import Experiment, Run
from modelyard.distributed import MpiConfiguration, PyTorchConfiguration, TensorflowConfiguration
from modelyard.errors import ValidationError
from modelyard.train import v1_arguments
from modelyard.train.dnn import Chainer, Gloo, Mpi, Nccl, ParameterServer, PyTorch, TensorFlow
from modelyard.train.estimator import Estimator

SCRIPTS = Path(__file__).parents[1] / "runner" / "distributed_scripts"
V1_SCRIPTS = Path(__file__).parent / "v1_scripts"

# The keyword arguments of v1's constructors (azureml-train-core 1.x, from its reference docs).
V1_ESTIMATOR = [
    "source_directory",
    "compute_target",
    "vm_size",
    "vm_priority",
    "entry_script",
    "script_params",
    "node_count",
    "process_count_per_node",
    "distributed_backend",
    "distributed_training",
    "use_gpu",
    "use_docker",
    "custom_docker_base_image",
    "custom_docker_image",
    "image_registry_details",
    "user_managed",
    "conda_packages",
    "pip_packages",
    "conda_dependencies_file_path",
    "pip_requirements_file_path",
    "conda_dependencies_file",
    "pip_requirements_file",
    "environment_variables",
    "environment_definition",
    "inputs",
    "source_directory_data_store",
    "shm_size",
    "resume_from",
    "max_run_duration_seconds",
    "_disable_validation",
    "_show_lint_warnings",
    "_show_package_warnings",
]
V1_PYTORCH = [*V1_ESTIMATOR, "framework_version", "_enable_optimized_mode"]
V1_TENSORFLOW = [*V1_PYTORCH, "worker_count", "parameter_server_count"]
V1_SIGNATURES: list[tuple[type[Estimator], list[str]]] = [
    (Estimator, V1_ESTIMATOR),
    (PyTorch, V1_PYTORCH),
    (TensorFlow, V1_TENSORFLOW),
]
# A value other than v1's default for each recorded argument.
RECORDED_VALUES: dict[str, Any] = {
    "vm_size": "STANDARD_NC6",
    "vm_priority": "lowpriority",
    "use_docker": False,
    "custom_docker_base_image": "mcr.microsoft.com/azureml/base:latest",
    "custom_docker_image": "myregistry.azurecr.io/train:1",
    "image_registry_details": {"address": "myregistry.azurecr.io"},
    "user_managed": True,
    "source_directory_data_store": "workspaceblobstore",
    "shm_size": "2g",
    "_enable_optimized_mode": True,
    "_disable_validation": False,
    "_show_lint_warnings": True,
    "_show_package_warnings": True,
}


def read(run: Run, name: str) -> str:
    return run._backend.read_run_file(run.id, name, 0, 1 << 30).decode()


def tf_configs(run: Run, count: int) -> list[dict[str, Any]]:
    """The TF_CONFIG of each of the run's ``count`` processes (tf_config.py's outputs)."""
    names = sorted(n for n in run.get_file_names() if n.startswith("outputs/tf_config_"))
    assert names == sorted(f"outputs/tf_config_{i}.json" for i in range(count))
    return [json.loads(read(run, f"outputs/tf_config_{i}.json")) for i in range(count)]


def seen_env(run: Run, count: int) -> list[dict[str, Any]]:
    """What each of the run's ``count`` processes saw (show_env.py's outputs)."""
    names = sorted(n for n in run.get_file_names() if n.startswith("outputs/env_"))
    assert names == sorted(f"outputs/env_{i}.json" for i in range(count))
    return [json.loads(read(run, f"outputs/env_{i}.json")) for i in range(count)]


# -- import paths ----------------------------------------------------------------------------


def test_v1_import_paths_hold_v1_names_with_one_definition_each() -> None:
    estimator = importlib.import_module("modelyard.train.estimator")
    dnn = importlib.import_module("modelyard.train.dnn")
    train = importlib.import_module("modelyard.train")
    assert estimator.__all__ == ["Estimator"]
    assert dnn.__all__ == [
        "Chainer",
        "Gloo",
        "Mpi",
        "Nccl",
        "ParameterServer",
        "PyTorch",
        "TensorFlow",
    ]
    assert train.TensorFlow is dnn.TensorFlow and train.PyTorch is dnn.PyTorch
    assert train.Estimator is estimator.Estimator
    assert issubclass(dnn.TensorFlow, estimator.Estimator)


def test_the_v1_backends_are_the_distributed_configurations() -> None:
    assert Mpi(process_count_per_node=2).to_config() == MpiConfiguration(2).to_config()
    assert isinstance(Mpi(), MpiConfiguration)
    assert (
        ParameterServer(worker_count=2, parameter_server_count=1).to_config()
        == TensorflowConfiguration(worker_count=2, parameter_server_count=1).to_config()
    )
    assert Gloo().to_config() == PyTorchConfiguration("gloo").to_config()
    assert Nccl().to_config()["communication_backend"] == "nccl"


def test_chainer_is_refused_saying_what_to_use() -> None:
    with pytest.raises(ValidationError, match="ended in December 2019") as info:
        Chainer(source_directory=SCRIPTS, entry_script="show_env.py", use_gpu=False)
    assert "PyTorch" in str(info.value)


# -- every v1 argument -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "arguments"), V1_SIGNATURES, ids=lambda v: getattr(v, "__name__", "")
)
def test_every_v1_argument_is_in_one_group_and_accepted(
    cls: type[Estimator], arguments: list[str]
) -> None:
    groups = [v1_arguments.HONOURED, set(v1_arguments.RECORDED), set(v1_arguments.REFUSED)]
    for name in arguments:
        assert sum(name in group for group in groups) == 1, name
    assert set(arguments) <= set(cls._argument_names())
    # Every one given by keyword with v1's default: no TypeError, and nothing to warn about.
    defaults = {**v1_arguments.RECORDED, **dict.fromkeys(v1_arguments.REFUSED)}
    defaults = {name: value for name, value in defaults.items() if name in arguments}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = cls(source_directory=SCRIPTS, entry_script="show_env.py", **defaults)
    assert est._to_job()[1].recorded == {}


@pytest.mark.parametrize("cls", [Estimator, PyTorch, TensorFlow])
def test_recorded_arguments_warn_once_naming_them_all(cls: type[Estimator]) -> None:
    with pytest.warns(UserWarning) as caught:
        cls(SCRIPTS, entry_script="show_env.py", **RECORDED_VALUES)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith(f"{cls.__name__}: ")
    for name in RECORDED_VALUES:
        assert f"{name}=" in message
    assert caught[0].filename == __file__  # it points at the user's line


def test_recorded_arguments_are_in_the_runs_properties(experiment: Experiment) -> None:
    with pytest.warns(UserWarning, match="custom_docker_image"):
        est = Estimator(
            V1_SCRIPTS,
            entry_script="hello.py",
            custom_docker_image="myregistry.azurecr.io/train:1",
            use_docker=False,
            shm_size="2g",
        )
    run = experiment.submit(est)
    run.wait_for_completion(raise_on_error=True)
    properties = run.get_properties()
    assert properties["modelyard.v1.custom_docker_image"] == "myregistry.azurecr.io/train:1"
    assert properties["modelyard.v1.use_docker"] == "False"
    assert properties["modelyard.v1.shm_size"] == "2g"
    assert "modelyard.v1.vm_size" not in properties  # v1's default: nothing to record


def test_an_unknown_keyword_names_the_closest_v1_argument() -> None:
    with pytest.raises(ValidationError) as info:
        TensorFlow(SCRIPTS, entry_script="show_env.py", scrpt_params={"--x": 1})
    assert info.value.field == "scrpt_params"
    assert "did you mean script_params?" in str(info.value)
    with pytest.raises(ValidationError, match="did you mean parameter_server_count"):
        TensorFlow(SCRIPTS, entry_script="show_env.py", parameter_servers_count=1)
    # worker_count belongs to TensorFlow alone.
    with pytest.raises(ValidationError) as info:
        PyTorch(SCRIPTS, entry_script="show_env.py", worker_count=2)
    assert info.value.field == "worker_count"


def test_resume_from_is_refused_saying_what_to_do() -> None:
    with pytest.raises(ValidationError, match="pass the checkpoint's folder as an input") as info:
        PyTorch(SCRIPTS, entry_script="show_env.py", resume_from="azureml://run1/outputs")
    assert info.value.field == "resume_from"


def test_distributed_backend_maps_to_its_configuration() -> None:
    def distributed(est: Estimator) -> dict[str, Any] | None:
        return est._to_job()[1].distributed

    assert distributed(Estimator(SCRIPTS, "show_env.py", distributed_backend="mpi")) == (
        MpiConfiguration().to_config()
    )
    tf = TensorFlow(SCRIPTS, "show_env.py", distributed_backend="ps", worker_count=2)
    assert distributed(tf) == ParameterServer(2, 1).to_config()
    torch = PyTorch(SCRIPTS, "show_env.py", distributed_backend="Nccl")
    assert distributed(torch) == Nccl().to_config()
    with pytest.raises(ValidationError, match="'ps' is not a distributed backend of PyTorch"):
        PyTorch(SCRIPTS, "show_env.py", distributed_backend="ps")
    with pytest.raises(ValidationError, match="not both"):
        Estimator(SCRIPTS, "show_env.py", distributed_backend="mpi", distributed_training=Mpi())
    with pytest.raises(ValidationError) as info:
        TensorFlow(SCRIPTS, "show_env.py", worker_count=2, distributed_training=Mpi())
    assert info.value.field == "worker_count"


def test_conda_dependencies_file_brings_python_conda_and_pip_packages(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("print('hi')\n")
    (source / "environment.yml").write_text(
        "name: train\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - pip\n"
        "  - numpy=1.26\n  - pip:\n    - requests==2.32.3\n"
    )
    # Relative to source_directory, as in v1, whatever the current folder.
    est = Estimator(
        source,
        entry_script="train.py",
        conda_dependencies_file="environment.yml",
        pip_packages=["six"],
    )
    spec = est._to_job()[1]
    assert (spec.python_version, spec.conda_packages) == ("3.11", ["numpy=1.26"])
    assert spec.pip_packages == ["six", "requests==2.32.3"]
    # The older name of the same argument.
    older = Estimator(
        source, entry_script="train.py", conda_dependencies_file_path="environment.yml"
    )
    assert older._to_job()[1].conda_packages == ["numpy=1.26"]
    with pytest.raises(ValidationError) as info:
        Estimator(source, entry_script="train.py", conda_dependencies_file="nope.yml")._to_job()
    assert info.value.field == "conda_dependencies_file"


def test_pip_requirements_file_is_read_from_the_source_directory(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("print('hi')\n")
    (source / "requirements.txt").write_text("requests==2.32.3\n")
    est = Estimator(source, entry_script="train.py", pip_requirements_file_path="requirements.txt")
    assert est._to_job()[1].pip_packages == ["requests==2.32.3"]


# -- real runs -------------------------------------------------------------------------------


def test_tensorflow_parameter_servers_with_worker_count_set_after_construction(
    experiment: Experiment,
) -> None:
    # As v1 notebooks wrote it: the configuration's counts set on the estimator afterwards.
    est = TensorFlow(
        source_directory=V1_SCRIPTS,
        entry_script="tf_config.py",
        node_count=2,
        distributed_training=TensorflowConfiguration(),
    )
    est._distributed_training.worker_count = 2
    est.distributed_training.parameter_server_count = 1
    run = experiment.submit(est)
    run.wait_for_completion(raise_on_error=True)
    configs = tf_configs(run, 3)
    cluster = configs[0]["cluster"]
    assert {task: len(addresses) for task, addresses in cluster.items()} == {"worker": 2, "ps": 1}
    assert all(c["cluster"] == cluster and c["environment"] == "cloud" for c in configs)
    tasks = [(c["task"]["type"], c["task"]["index"]) for c in configs]
    assert tasks == [("worker", 0), ("worker", 1), ("ps", 0)]
    assert run.get_properties()["modelyard.process_count"] == "3"


def test_tensorflow_with_a_v1_parameter_server_backend_runs(experiment: Experiment) -> None:
    est = TensorFlow(
        V1_SCRIPTS, entry_script="tf_config.py", distributed_backend="ps", parameter_server_count=2
    )
    run = experiment.submit(est)
    run.wait_for_completion(raise_on_error=True)
    tasks = [config["task"]["type"] for config in tf_configs(run, 3)]
    assert tasks == ["worker", "ps", "ps"]


def test_mpi_of_the_dnn_names_runs_its_ranks(experiment: Experiment) -> None:
    est = TensorFlow(
        SCRIPTS,
        entry_script="show_env.py",
        distributed_training=Mpi(process_count_per_node=2),
        environment_variables={"MY_SETTING": "v1"},
    )
    run = experiment.submit(est)
    run.wait_for_completion(raise_on_error=True)
    ranks = seen_env(run, 2)
    assert [seen["OMPI_COMM_WORLD_RANK"] for seen in ranks] == ["0", "1"]
    assert all(seen["OMPI_COMM_WORLD_SIZE"] == "2" for seen in ranks)
    assert all(seen["MY_SETTING"] == "v1" for seen in ranks)


def test_mpi_over_two_nodes_of_the_local_compute(experiment: Experiment) -> None:
    est = Estimator(SCRIPTS, entry_script="show_env.py", node_count=2, distributed_backend="mpi")
    run = experiment.submit(est)
    run.wait_for_completion(raise_on_error=True)
    assert [seen["OMPI_COMM_WORLD_SIZE"] for seen in seen_env(run, 2)] == ["2", "2"]


def test_gloo_of_the_dnn_names_runs_pytorch_ranks(experiment: Experiment) -> None:
    est = PyTorch(
        SCRIPTS, entry_script="show_env.py", process_count_per_node=2, distributed_training=Gloo()
    )
    run = experiment.submit(est)
    run.wait_for_completion(raise_on_error=True)
    ranks = seen_env(run, 2)
    assert [seen["RANK"] for seen in ranks] == ["0", "1"]
    assert all(seen["WORLD_SIZE"] == "2" and seen["MASTER_ADDR"] == "127.0.0.1" for seen in ranks)
