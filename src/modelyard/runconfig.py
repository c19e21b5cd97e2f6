"""Run configurations, as v1's ``azureml.core.runconfig`` wrote them.

A :class:`RunConfiguration` holds where and how a script runs: the compute ``target``, the
``environment``, ``node_count``, the ``communicator`` with its ``mpi``, ``tensorflow`` or
``pytorch`` settings, ``environment_variables``, ``max_run_duration_seconds`` and
``data_references``. A :class:`~modelyard.script_run_config.ScriptRunConfig` carries one as
``run_config``; everything is read when the run is submitted, so v1 notebooks that set its
attributes one by one run as written. ``docker`` (:class:`DockerConfiguration`) and ``history``
are recorded with the run: runs here use a built Python environment, not docker.

Example::

    from modelyard.runconfig import RunConfiguration

    run_config = RunConfiguration()
    run_config.target = "local"
    run_config.node_count = 2
    run_config.communicator = "Mpi"
    run_config.mpi.process_count_per_node = 2          # 4 ranks
    run_config.environment_variables["EPOCHS"] = "3"
    src = ScriptRunConfig("./src", "train.py", run_config=run_config)
"""

from __future__ import annotations

import json
from typing import Any

from modelyard.conda_dependencies import CondaDependencies
from modelyard.data.data_reference import MOUNT, DataReference
from modelyard.distributed import (
    MpiConfiguration,
    PyTorchConfiguration,
    TensorflowConfiguration,
)
from modelyard.environment import Environment
from modelyard.errors import ValidationError

# v1's communicator values (any case), by the configuration they take.
MPI_COMMUNICATORS = ("mpi", "openmpi", "intelmpi")
TENSORFLOW_COMMUNICATORS = ("parameterserver",)
PYTORCH_COMMUNICATORS = ("gloo", "nccl", "pytorch")
NO_COMMUNICATOR = "None"
FRAMEWORKS = ("Python", "TensorFlow", "PyTorch")
DEFAULT_ENVIRONMENT = "default-environment"


class DockerConfiguration:
    """v1's docker settings of a run: recorded with the run (its properties say what was
    asked); runs here use the built Python environment, not a container.

    Example::

        src = ScriptRunConfig("./src", "train.py",
                              docker_runtime_config=DockerConfiguration(use_docker=True))
    """

    def __init__(
        self,
        use_docker: bool | None = None,
        shared_volumes: bool | None = None,
        arguments: list[str] | None = None,
        shm_size: str | None = None,
    ) -> None:
        self.use_docker = use_docker
        self.shared_volumes = shared_volumes
        self.arguments = arguments
        self.shm_size = shm_size

    def _settings(self) -> dict[str, Any]:
        """What was set, for the run's properties (nothing: an empty dict)."""
        values = {
            "use_docker": self.use_docker,
            "shared_volumes": self.shared_volumes,
            "arguments": self.arguments,
            "shm_size": self.shm_size,
        }
        return {key: value for key, value in values.items() if value not in (None, False, [])}

    def __repr__(self) -> str:
        return (
            f"DockerConfiguration({', '.join(f'{k}={v!r}' for k, v in self._settings().items())})"
        )


class HistoryConfiguration:
    """v1's run history settings: recorded. modelyard always keeps the run's ``./outputs``,
    syncs ``./logs`` and snapshots the source folder.

    Example::

        run_config.history.directories_to_watch = ["logs", "tb"]
    """

    def __init__(
        self,
        output_collection: bool = True,
        directories_to_watch: list[str] | None = None,
        snapshot_project: bool = True,
    ) -> None:
        self.output_collection = output_collection
        self.directories_to_watch = list(directories_to_watch or ["logs"])
        self.snapshot_project = snapshot_project

    def _settings(self) -> dict[str, Any]:
        changed: dict[str, Any] = {}
        if self.output_collection is not True:
            changed["output_collection"] = self.output_collection
        if self.directories_to_watch != ["logs"]:
            changed["directories_to_watch"] = self.directories_to_watch
        if self.snapshot_project is not True:
            changed["snapshot_project"] = self.snapshot_project
        return changed


class DataReferenceConfiguration:
    """v1's data reference of a run configuration: ``run_config.data_references[name]``; the
    script finds its local path in ``$AZUREML_DATAREFERENCE_<name>``.

    Example::

        run_config.data_references["mnist"] = DataReferenceConfiguration(
            datastore_name="workspaceblobstore", path_on_datastore="mnist", mode="download")
    """

    def __init__(
        self,
        datastore_name: str | None = None,
        mode: str = MOUNT,
        path_on_datastore: str | None = None,
        path_on_compute: str | None = None,
        overwrite: bool = False,
    ) -> None:
        self.datastore_name = datastore_name
        self.mode = mode
        self.path_on_datastore = path_on_datastore
        self.path_on_compute = path_on_compute
        self.overwrite = overwrite

    def _reference(self, name: str) -> DataReference:
        if not isinstance(self.datastore_name, str):
            raise ValidationError(
                "data_references", f"{name!r}: give the datastore_name of its datastore"
            )
        return DataReference(
            self.datastore_name,
            data_reference_name=name,
            path_on_datastore=self.path_on_datastore,
            mode=self.mode,
            path_on_compute=self.path_on_compute,
            overwrite=self.overwrite,
        )


class RunConfiguration:
    """Where and how a script runs (v1 signature); see the module docstring.

    ``communicator`` picks the distribution: ``"None"`` (one process), ``"Mpi"`` (also
    ``"OpenMpi"``, ``"IntelMpi"``: ``mpi``), ``"ParameterServer"`` (``tensorflow``), ``"Gloo"``
    or ``"Nccl"`` (``pytorch`` with that backend). ``conda_dependencies`` (v1's
    ``CondaDependencies``, or any object with ``serialize_to_string()`` giving a conda
    environment file) adds its packages and Python version to the environment's.

    Example::

        run_config = RunConfiguration(framework="TensorFlow", communicator="ParameterServer")
        run_config.tensorflow.worker_count = 2
        run_config.node_count = 2
    """

    def __init__(
        self,
        script: str | None = None,
        arguments: list[Any] | None = None,
        framework: str | None = None,
        communicator: str | None = None,
        conda_dependencies: Any = None,
        _history_enabled: bool | None = None,
        _path: str | None = None,
        _name: str | None = None,
        command: str | list[Any] | None = None,
    ) -> None:
        self.script = script
        self.arguments = list(arguments or [])
        self.command = command
        self.framework = framework or "Python"
        self.communicator = communicator or NO_COMMUNICATOR
        self.conda_dependencies = conda_dependencies
        self.target: Any = "local"
        self.node_count = 1
        self.max_run_duration_seconds: float | None = None
        self.environment: Environment | None = Environment(DEFAULT_ENVIRONMENT)
        self.environment_variables: dict[str, str] = {}
        self.mpi = MpiConfiguration()
        self.tensorflow = TensorflowConfiguration()
        self.pytorch = PyTorchConfiguration()
        self.data_references: dict[str, DataReferenceConfiguration | DataReference] = {}
        self.history = HistoryConfiguration(
            output_collection=True if _history_enabled is None else bool(_history_enabled)
        )
        self.docker = DockerConfiguration()
        self.source_directory_data_store: Any = None
        self.name = _name

    def _distribution(self) -> Any:
        """The distributed configuration the communicator picks, or None; ValidationError for
        a communicator that does not exist, or settings a "None" communicator would drop."""
        communicator = str(self.communicator).lower()
        if communicator in MPI_COMMUNICATORS:
            return self.mpi
        if communicator in TENSORFLOW_COMMUNICATORS:
            return self.tensorflow
        if communicator in PYTORCH_COMMUNICATORS:
            if communicator != "pytorch" and self.pytorch.communication_backend == "gloo":
                # The communicator names the backend unless pytorch says otherwise.
                return PyTorchConfiguration(
                    communicator, self.pytorch.process_count, self.pytorch.node_count
                )
            return self.pytorch
        if communicator != NO_COMMUNICATOR.lower():
            raise ValidationError(
                "communicator",
                f"{self.communicator!r} is not a communicator; use 'None', 'Mpi', "
                "'ParameterServer', 'Gloo' or 'Nccl'",
            )
        for name, config, default in (
            ("mpi", self.mpi, MpiConfiguration()),
            ("tensorflow", self.tensorflow, TensorflowConfiguration()),
            ("pytorch", self.pytorch, PyTorchConfiguration()),
        ):
            if config.to_config() != default.to_config():
                raise ValidationError(
                    "communicator",
                    f"run_config.{name} is set ({config!r}) but run_config.communicator is "
                    f"'None', so it would be ignored; set run_config.communicator (to 'Mpi', "
                    "'ParameterServer', 'Gloo' or 'Nccl') or give distributed_job_config",
                )
        return None

    def _set_distribution(self, config: Any) -> None:
        """Use ``config`` (v1's ``distributed_job_config``): the same object, so what is set on
        it later is what runs."""
        if isinstance(config, MpiConfiguration):
            self.mpi, self.communicator = config, "Mpi"
        elif isinstance(config, TensorflowConfiguration):
            self.tensorflow, self.communicator = config, "ParameterServer"
            self.framework = "TensorFlow"
        elif isinstance(config, PyTorchConfiguration):
            self.pytorch, self.communicator = config, "PyTorch"
            self.framework = "PyTorch"
        else:
            raise ValidationError(
                "distributed_job_config",
                f"{config!r} is not a distributed configuration (MpiConfiguration, "
                "TensorflowConfiguration or PyTorchConfiguration)",
            )
        node_count = getattr(config, "node_count", 1)
        if isinstance(node_count, int) and node_count > 1:
            self.node_count = node_count

    def _inputs(self) -> list[DataReference]:
        inputs = []
        for name, reference in self.data_references.items():
            if isinstance(reference, DataReference):
                inputs.append(reference.path(data_reference_name=name))
            elif isinstance(reference, DataReferenceConfiguration):
                inputs.append(reference._reference(name))
            else:
                raise ValidationError(
                    "data_references",
                    f"{name!r}: {reference!r} is not a DataReferenceConfiguration",
                )
        return inputs

    def _recorded_settings(self) -> dict[str, str]:
        """The settings without a meaning here, for the run's properties."""
        if self.framework not in FRAMEWORKS:
            raise ValidationError(
                "framework",
                f"{self.framework!r} runs are not supported; use 'Python' (also 'TensorFlow' "
                "or 'PyTorch')",
            )
        recorded = {}
        for name, settings in (
            ("docker", self.docker._settings()),
            ("history", self.history._settings()),
        ):
            if settings:
                recorded[name] = json.dumps(settings, default=repr)
        if self.source_directory_data_store is not None:
            recorded["source_directory_data_store"] = str(
                getattr(self.source_directory_data_store, "name", self.source_directory_data_store)
            )
        return recorded

    def __repr__(self) -> str:
        return (
            f"RunConfiguration(target={self.target!r}, node_count={self.node_count!r}, "
            f"communicator={self.communicator!r}, framework={self.framework!r})"
        )


# v1's base images, which notebooks assign to ``env.docker.base_image``: recorded like every
# docker setting (runs here use the Python environment modelyard builds, not an image).
DEFAULT_CPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04"
DEFAULT_GPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.1-cudnn8-ubuntu20.04"


__all__ = [
    "DEFAULT_CPU_IMAGE",
    "DEFAULT_GPU_IMAGE",
    "CondaDependencies",
    "DataReferenceConfiguration",
    "DockerConfiguration",
    "HistoryConfiguration",
    "MpiConfiguration",
    "PyTorchConfiguration",
    "RunConfiguration",
    "TensorflowConfiguration",
]
