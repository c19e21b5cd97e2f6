"""Estimators: what to run, as the v1 SDK described it (v1's ``azureml.train.estimator``).

``Estimator`` runs a script from a source folder; ``TensorFlow`` and ``PyTorch``
(:mod:`modelyard.train.dnn`) add their framework. Each compiles into a
:class:`~modelyard.runner.job.JobSpec` when submitted, so what is set on it after construction
(``est.distributed_training.worker_count = 2``) is what runs.

Every v1 argument is accepted; :mod:`modelyard.train.v1_arguments` says which are honoured,
which recorded (with one warning) and which refused.

Example::

    est = Estimator(source_directory="./src", entry_script="train.py",
                    script_params={"--data-folder": ds.as_mount(), "--batch-size": 50},
                    compute_target="local", pip_packages=["scikit-learn"])
    run = exp.submit(est)
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from modelyard.distributed import MpiConfiguration
from modelyard.environment import RunEnvironment, run_environment
from modelyard.errors import ValidationError
from modelyard.names import check_environment_variables
from modelyard.runner.envbuild import check_python_version
from modelyard.runner.job import (
    DOCKER_ENVIRONMENT_SETTING,
    JobSpec,
    arguments_from,
    check_entry_script,
)
from modelyard.train import v1_arguments
from modelyard.train.conda_file import CondaSpec, read_conda_file


def compute_target_name(compute_target: Any) -> str:
    """A ComputeTarget, its name, or None (``local``) as a name."""
    if compute_target is None:
        return "local"
    if isinstance(compute_target, str):
        return compute_target
    name = getattr(compute_target, "name", None)
    if isinstance(name, str):
        return name
    raise ValidationError(
        "compute_target", f"expected a ComputeTarget, its name or None, not {compute_target!r}"
    )


class Estimator:
    """Run ``entry_script`` from ``source_directory`` on a compute target (v1 signature).

    ``distributed_backend="mpi"`` is v1's older way to say ``distributed_training=
    MpiConfiguration()``; ``conda_dependencies_file`` (a conda ``environment.yml``, relative
    to ``source_directory``) adds its Python version, conda and pip packages.

    Example::

        est = Estimator("./src", entry_script="train.py", node_count=1,
                        distributed_training=MpiConfiguration(process_count_per_node=2))
    """

    _framework: str | None = None
    # A conda environment given as text (a RunConfiguration's conda_dependencies).
    _conda_spec: CondaSpec | None = None
    # distributed_backend values this estimator knows (v1's, lower case).
    _backends: ClassVar[tuple[str, ...]] = ("mpi",)

    def __init__(
        self,
        source_directory: str | os.PathLike[str],
        entry_script: str | None = None,
        script_params: dict[str, Any] | None = None,
        arguments: list[Any] | None = None,
        compute_target: Any = None,
        use_gpu: bool = False,
        pip_packages: list[str] | None = None,
        conda_packages: list[str] | None = None,
        pip_requirements_file: str | os.PathLike[str] | None = None,
        environment_definition: Any = None,
        environment_variables: dict[str, str] | None = None,
        inputs: list[Any] | None = None,
        node_count: int = 1,
        process_count_per_node: int = 1,
        distributed_training: Any = None,
        max_run_duration_seconds: float | None = None,
        framework_version: str | None = None,
        *,
        distributed_backend: str | None = None,
        conda_dependencies_file: str | os.PathLike[str] | None = None,
        conda_dependencies_file_path: str | os.PathLike[str] | None = None,
        pip_requirements_file_path: str | os.PathLike[str] | None = None,
        vm_size: str | None = None,
        vm_priority: str | None = None,
        use_docker: bool = True,
        custom_docker_base_image: str | None = None,
        custom_docker_image: str | None = None,
        image_registry_details: Any = None,
        user_managed: bool = False,
        source_directory_data_store: Any = None,
        shm_size: str | None = None,
        resume_from: Any = None,
        _enable_optimized_mode: bool = False,
        _disable_validation: bool = True,
        _show_lint_warnings: bool = False,
        _show_package_warnings: bool = False,
        **unknown: Any,
    ) -> None:
        owner = type(self).__name__
        v1_arguments.check_unknown(owner, unknown, self._argument_names())
        given = dict(locals())
        v1_arguments.check_refused(given)
        self.source_directory = source_directory
        self.entry_script = entry_script
        self.script_params = script_params
        self.arguments = arguments
        self.compute_target = compute_target
        self.use_gpu = use_gpu
        self.pip_packages = list(pip_packages or [])
        self.conda_packages = list(conda_packages or [])
        self.pip_requirements_file = _one_of(
            "pip_requirements_file", pip_requirements_file, pip_requirements_file_path
        )
        self.conda_dependencies_file = _one_of(
            "conda_dependencies_file", conda_dependencies_file, conda_dependencies_file_path
        )
        self.environment_definition = environment_definition
        self.environment_variables = dict(environment_variables or {})
        self.inputs = list(inputs or [])
        self.node_count = node_count
        self.process_count_per_node = process_count_per_node
        if distributed_backend is not None:
            if distributed_training is not None:
                raise ValidationError(
                    "distributed_backend",
                    "give distributed_training or distributed_backend (v1's older form), not both",
                )
            distributed_training = self._backend_config(distributed_backend)
        self.distributed_training = distributed_training
        self.max_run_duration_seconds = max_run_duration_seconds
        self.framework_version = framework_version
        # What has no meaning here, kept with the run (see v1_arguments).
        self._recorded = v1_arguments.recorded_values(given)
        v1_arguments.warn_recorded(owner, self._recorded)

    @property
    def _distributed_training(self) -> Any:
        """v1's name of ``distributed_training``, which v1 notebooks set after construction
        (``est._distributed_training.worker_count = 2``)."""
        return self.distributed_training

    @_distributed_training.setter
    def _distributed_training(self, value: Any) -> None:
        self.distributed_training = value

    @classmethod
    def _argument_names(cls) -> list[str]:
        names: list[str] = []
        for klass in cls.__mro__:
            if klass is object:
                continue
            for parameter in inspect.signature(klass.__init__).parameters.values():  # type: ignore[misc]
                named = parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
                if named and parameter.name != "self" and parameter.name not in names:
                    names.append(parameter.name)
        return names

    def _backend_config(self, backend: str) -> Any:
        """The configuration of ``distributed_backend``; TensorFlow and PyTorch add theirs."""
        name = backend.lower() if isinstance(backend, str) else backend
        if name not in self._backends:
            raise ValidationError(
                "distributed_backend",
                f"{backend!r} is not a distributed backend of {type(self).__name__}; use "
                + " or ".join(repr(b) for b in self._backends)
                + ", or give distributed_training",
            )
        return MpiConfiguration()

    def _environment(self, folder: Path) -> RunEnvironment:
        environment = run_environment(
            self.environment_definition,
            pip_packages=self.pip_packages,
            pip_requirements_file=_in_folder(self.pip_requirements_file, folder),
            conda_packages=self.conda_packages,
        )
        spec = self._conda_spec
        if self.conda_dependencies_file is not None:
            spec = read_conda_file("conda_dependencies_file", self.conda_dependencies_file, folder)
        if spec is None:
            return environment
        more = run_environment(
            None,
            pip_packages=spec.pip_packages,
            pip_requirements_file=None,
            conda_packages=spec.conda_packages,
        )
        python = environment.python_version
        if spec.python_version is not None:
            asked = check_python_version("conda_dependencies_file", spec.python_version)
            if python is not None and python != asked:
                raise ValidationError(
                    "conda_dependencies_file",
                    f"asks for python={asked}, but the environment_definition for "
                    f"{python}; give the version in one place",
                )
            python = asked
        return dataclasses.replace(
            environment,
            pip_packages=list(dict.fromkeys([*environment.pip_packages, *more.pip_packages])),
            conda_packages=list(dict.fromkeys([*environment.conda_packages, *more.conda_packages])),
            python_version=python,
        )

    def _to_job(self) -> tuple[Path, JobSpec]:
        if self.entry_script is None:
            raise ValidationError("entry_script", "give the script to run (entry_script=...)")
        folder, script = check_entry_script(self.source_directory, self.entry_script)
        return folder, self._job_spec(folder, script)

    def _job_spec(self, folder: Path, script: str) -> JobSpec:
        """The job of this estimator, running ``script`` of ``folder``."""
        environment = self._environment(folder)
        for count_name in ("node_count", "process_count_per_node"):
            count = getattr(self, count_name)
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise ValidationError(
                    count_name, f"must be a whole number of at least 1, not {count!r}"
                )
        if self.max_run_duration_seconds is not None and not (
            isinstance(self.max_run_duration_seconds, int | float)
            and self.max_run_duration_seconds > 0
        ):
            raise ValidationError("max_run_duration_seconds", "must be a positive number")
        inputs = []
        for reference in self.inputs:
            if not callable(getattr(reference, "to_config", None)):
                raise ValidationError("inputs", f"{reference!r} is not a data reference")
            inputs.append(reference.to_config())
        return JobSpec(
            script=script,
            arguments=arguments_from(self.script_params, self.arguments),
            inputs=inputs,
            compute_target=compute_target_name(self.compute_target),
            framework=self._framework,
            framework_version=self.framework_version,
            pip_packages=environment.pip_packages,
            conda_packages=environment.conda_packages,
            environment_variables=_environment_variables(
                {**environment.environment_variables, **self.environment_variables}
            ),
            use_gpu=bool(self.use_gpu),
            node_count=self.node_count,
            process_count_per_node=self.process_count_per_node,
            distributed=_distributed_config(self.distributed_training),
            max_run_duration_seconds=self.max_run_duration_seconds,
            python_version=environment.python_version,
            python_path=environment.python_path,
            inherit_base_packages=environment.inherit_base_packages,
            environment_name=environment.name,
            recorded={**self._recorded, **_docker_settings(environment)},
        )


def _one_of(
    name: str, value: str | os.PathLike[str] | None, deprecated: str | os.PathLike[str] | None
) -> str | os.PathLike[str] | None:
    """v1's ``<name>`` or its older ``<name>_path``, not two different ones."""
    if value is not None and deprecated is not None and os.fspath(value) != os.fspath(deprecated):
        raise ValidationError(name, f"give {name} or {name}_path (its older name), not both")
    return value if value is not None else deprecated


def _in_folder(path: str | os.PathLike[str] | None, folder: Path) -> str | os.PathLike[str] | None:
    """A relative file path, relative to the source folder as v1 had it when it is there."""
    if path is None or Path(path).is_absolute() or not (folder / path).is_file():
        return path
    return folder / path


def _docker_settings(environment: RunEnvironment) -> dict[str, str]:
    """The environment's ``env.docker`` settings, recorded as the run's
    ``modelyard.v1.environment.docker`` (the run uses the built Python, not docker)."""
    if not environment.docker:
        return {}
    return {DOCKER_ENVIRONMENT_SETTING: json.dumps(environment.docker, sort_keys=True)}


def _environment_variables(variables: dict[str, Any]) -> dict[str, str]:
    return check_environment_variables("environment_variables", variables)


def _distributed_config(config: Any) -> dict[str, Any] | None:
    if config is None:
        return None
    to_config = getattr(config, "to_config", None)
    if not callable(to_config):
        raise ValidationError(
            "distributed_training",
            f"{config!r} is not a distributed configuration (MpiConfiguration, "
            "TensorflowConfiguration or PyTorchConfiguration)",
        )
    result: dict[str, Any] = to_config()
    return result


__all__ = ["Estimator"]
