"""Estimators: what to run, as the v1 SDK described it.

``Estimator`` runs a script from a source folder; ``TensorFlow`` and ``PyTorch`` add their
framework. Each compiles into a :class:`~modelyard.runner.job.JobSpec` when submitted.

Example::

    est = TensorFlow(source_directory="./tf-mnist", entry_script="tf_mnist.py",
                     script_params={"--data-folder": ds.as_mount(), "--batch-size": 50},
                     compute_target="local")
    run = exp.submit(est)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modelyard.environment import run_environment
from modelyard.errors import ValidationError
from modelyard.names import check_environment_variables
from modelyard.runner.envbuild.requirements import DEFAULT_FRAMEWORK_VERSIONS
from modelyard.runner.job import JobSpec, arguments_from, check_entry_script


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
    """Run ``entry_script`` from ``source_directory`` on a compute target (v1 signature)."""

    _framework: str | None = None

    def __init__(
        self,
        source_directory: str | os.PathLike[str],
        entry_script: str,
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
    ) -> None:
        self.source_directory = source_directory
        self.entry_script = entry_script
        self.script_params = script_params
        self.arguments = arguments
        self.compute_target = compute_target
        self.use_gpu = use_gpu
        self.pip_packages = list(pip_packages or [])
        self.conda_packages = list(conda_packages or [])
        self.pip_requirements_file = pip_requirements_file
        self.environment_definition = environment_definition
        self.environment_variables = dict(environment_variables or {})
        self.inputs = list(inputs or [])
        self.node_count = node_count
        self.process_count_per_node = process_count_per_node
        self.distributed_training = distributed_training
        self.max_run_duration_seconds = max_run_duration_seconds
        self.framework_version = framework_version

    def _to_job(self) -> tuple[Path, JobSpec]:
        folder, script = check_entry_script(self.source_directory, self.entry_script)
        environment = run_environment(
            self.environment_definition,
            pip_packages=self.pip_packages,
            pip_requirements_file=self.pip_requirements_file,
            conda_packages=self.conda_packages,
        )
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
        return folder, JobSpec(
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
        )


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


class TensorFlow(Estimator):
    """An Estimator whose run needs TensorFlow (``framework_version`` pins it).

    Its run gets ``tensorflow`` at ``framework_version`` (``tensorflow-cpu`` on Linux x86-64
    without ``use_gpu``) and the matching ``tf-keras``; without a version, TensorFlow
    ``DEFAULT_VERSION`` (2.21). When modelyard's own Python has them, the run uses it.
    """

    _framework = "tensorflow"
    DEFAULT_VERSION = DEFAULT_FRAMEWORK_VERSIONS["tensorflow"]


class PyTorch(Estimator):
    """An Estimator whose run needs PyTorch (``framework_version`` pins it).

    Its run gets ``torch`` at ``framework_version``; without a version, PyTorch
    ``DEFAULT_VERSION`` (2.13.0). When modelyard's own Python has it, the run uses it.
    """

    _framework = "pytorch"
    DEFAULT_VERSION = DEFAULT_FRAMEWORK_VERSIONS["pytorch"]


__all__ = ["Estimator", "PyTorch", "TensorFlow"]
