"""ScriptRunConfig: the later v1 form of "run this script there".

Example::

    config = ScriptRunConfig(source_directory="./src", script="train.py",
                             arguments=["--epochs", 3], compute_target="local")
    run = exp.submit(config)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modelyard.environment import Environment
from modelyard.errors import ValidationError
from modelyard.runner.job import JobSpec
from modelyard.train import Estimator


class ScriptRunConfig:
    """Run ``script`` from ``source_directory`` with ``arguments`` (v1 signature)."""

    def __init__(
        self,
        source_directory: str | os.PathLike[str],
        script: str,
        arguments: list[Any] | None = None,
        compute_target: Any = None,
        environment: Any = None,
        distributed_job_config: Any = None,
        max_run_duration_seconds: float | None = None,
    ) -> None:
        self.source_directory = source_directory
        self.script = script
        self.arguments = list(arguments or [])
        self.compute_target = compute_target
        self.environment = environment
        self.distributed_job_config = distributed_job_config
        self.max_run_duration_seconds = max_run_duration_seconds

    def _to_job(self) -> tuple[Path, JobSpec]:
        if self.environment is not None and not isinstance(self.environment, Environment):
            raise ValidationError(
                "environment",
                f"expected a modelyard Environment, not {type(self.environment).__name__}",
            )
        # One way to compile a job: the same path as an Estimator with these settings (the
        # Environment brings its packages and variables).
        return Estimator(
            source_directory=self.source_directory,
            entry_script=self.script,
            arguments=self.arguments,
            compute_target=self.compute_target,
            environment_definition=self.environment,
            distributed_training=self.distributed_job_config,
            max_run_duration_seconds=self.max_run_duration_seconds,
        )._to_job()
