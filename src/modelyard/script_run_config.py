"""ScriptRunConfig: the later v1 form of "run this script there" (v1 signature).

The arguments that describe the compute go into its ``run_config``
(:class:`~modelyard.runconfig.RunConfiguration`), and everything is read when the run is
submitted, so v1 notebooks that set ``src.run_config.*`` after construction run as written.
``command=`` (a list, or a string split as a shell would, but run without one) runs that
command instead of ``script``; a leading ``python`` is the run's own interpreter.

Example::

    config = ScriptRunConfig(source_directory="./src", script="train.py",
                             arguments=["--epochs", 3], compute_target="local")
    config.run_config.environment_variables["SEED"] = "1"
    run = exp.submit(config)

    run = exp.submit(ScriptRunConfig("./src", command=["python", "train.py", "--epochs", 3]))
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from modelyard.distributed import MpiConfiguration
from modelyard.environment import Environment
from modelyard.errors import ValidationError
from modelyard.runconfig import DockerConfiguration, RunConfiguration
from modelyard.runner.job import PYTHON_NAMES, JobSpec, check_source_directory
from modelyard.train.conda_file import CondaSpec, spec_of
from modelyard.train.estimator import Estimator
from modelyard.train.v1_arguments import REFUSED, warn_recorded

# v1's default time limit of a ScriptRunConfig: 30 days.
DEFAULT_MAX_RUN_DURATION_SECONDS = 2592000
# What a shell would do with these; a command runs without one.
SHELL_OPERATORS = ("&&", "||", "|", ";", ">", ">>", "<", "&")


class ScriptRunConfig:
    """Run ``script`` (or ``command``) from ``source_directory``; see the module docstring.

    Example::

        src = ScriptRunConfig("./src", "train.py", distributed_job_config=MpiConfiguration(
            process_count_per_node=2))
        src.run_config.node_count = 2          # 4 ranks when submitted
    """

    def __init__(
        self,
        source_directory: str | os.PathLike[str],
        script: str | None = None,
        arguments: list[Any] | None = None,
        run_config: RunConfiguration | None = None,
        _telemetry_values: Any = None,
        compute_target: Any = None,
        environment: Any = None,
        distributed_job_config: Any = None,
        resume_from: Any = None,
        max_run_duration_seconds: float | None = DEFAULT_MAX_RUN_DURATION_SECONDS,
        command: str | list[Any] | None = None,
        docker_runtime_config: DockerConfiguration | None = None,
    ) -> None:
        if resume_from is not None:
            raise ValidationError("resume_from", REFUSED["resume_from"])
        if run_config is not None and not isinstance(run_config, RunConfiguration):
            raise ValidationError(
                "run_config", f"expected a RunConfiguration, not {type(run_config).__name__}"
            )
        self.source_directory = source_directory
        self.script = script if script is not None else (run_config.script if run_config else None)
        self.arguments = list(
            arguments if arguments is not None else (run_config.arguments if run_config else [])
        )
        self.command = (
            command if command is not None else (run_config.command if run_config else None)
        )
        self.run_config = run_config if run_config is not None else RunConfiguration()
        if compute_target is not None:
            self.run_config.target = compute_target
        if environment is not None:
            self.run_config.environment = environment
        if distributed_job_config is not None:
            self.run_config._set_distribution(distributed_job_config)
        # v1's 30-day default does not replace a limit the given run_config already has.
        if max_run_duration_seconds is not None and (
            max_run_duration_seconds != DEFAULT_MAX_RUN_DURATION_SECONDS
            or self.run_config.max_run_duration_seconds is None
        ):
            self.run_config.max_run_duration_seconds = max_run_duration_seconds
        if docker_runtime_config is not None:
            self.run_config.docker = docker_runtime_config

    # v1 reads these from the run configuration: one place, whichever name sets them.
    @property
    def compute_target(self) -> Any:
        """The compute target (``run_config.target``)."""
        return self.run_config.target

    @compute_target.setter
    def compute_target(self, value: Any) -> None:
        self.run_config.target = value

    @property
    def environment(self) -> Any:
        """The run's Environment (``run_config.environment``)."""
        return self.run_config.environment

    @environment.setter
    def environment(self, value: Any) -> None:
        self.run_config.environment = value

    @property
    def distributed_job_config(self) -> Any:
        """The distributed configuration ``run_config.communicator`` picks, or None."""
        return self.run_config._distribution()

    @distributed_job_config.setter
    def distributed_job_config(self, value: Any) -> None:
        self.run_config._set_distribution(value)

    @property
    def max_run_duration_seconds(self) -> float | None:
        """The run's time limit (``run_config.max_run_duration_seconds``)."""
        return self.run_config.max_run_duration_seconds

    @max_run_duration_seconds.setter
    def max_run_duration_seconds(self, value: float | None) -> None:
        self.run_config.max_run_duration_seconds = value

    def _to_job(self) -> tuple[Path, JobSpec]:
        run_config = self.run_config
        if run_config.environment is not None and not isinstance(
            run_config.environment, Environment
        ):
            raise ValidationError(
                "environment",
                f"expected a modelyard Environment, not {type(run_config.environment).__name__}",
            )
        recorded = run_config._recorded_settings()
        distribution = run_config._distribution()
        script, arguments, program = self._what_runs()
        # One way to compile a job: the same path as an Estimator with these settings (the
        # Environment brings its packages and variables).
        estimator = Estimator(
            source_directory=self.source_directory,
            entry_script=script,
            arguments=arguments,
            compute_target=run_config.target,
            environment_definition=run_config.environment,
            environment_variables=run_config.environment_variables,
            inputs=run_config._inputs(),
            node_count=run_config.node_count,
            distributed_training=distribution,
            max_run_duration_seconds=run_config.max_run_duration_seconds,
        )
        if run_config.conda_dependencies is not None:
            estimator._conda_spec = _conda_spec(run_config.conda_dependencies)
        estimator._recorded = recorded
        warn_recorded("ScriptRunConfig", recorded)
        if program is None:
            return estimator._to_job()
        if isinstance(distribution, MpiConfiguration):
            raise ValidationError(
                "command",
                f"an MPI run starts each rank through Python; {program!r} is not "
                "'python': give command=['python', 'script.py', ...] or script=",
            )
        folder = check_source_directory(self.source_directory)
        spec = estimator._job_spec(folder, "")
        spec.command = [program]
        return folder, spec

    def _what_runs(self) -> tuple[str | None, list[Any], str | None]:
        """(script, arguments, program): the script and its arguments, or for a command that
        is not ``python <script>`` its program (and the script None)."""
        if self.command is None:
            if self.script is None:
                raise ValidationError("script", "give the script to run (script=) or command=")
            return self.script, self.arguments, None
        if self.script is not None or self.arguments:
            raise ValidationError(
                "command", "give command, or script and arguments, not both (as in v1)"
            )
        if isinstance(self.command, str):
            words: list[Any] = shlex.split(self.command)
            operators = [word for word in words if word in SHELL_OPERATORS]
            if operators:
                raise ValidationError(
                    "command",
                    f"{self.command!r} uses {operators[0]!r}, which needs a shell; a command "
                    "runs without one: give command=['bash', '-c', '...'] for shell syntax",
                )
        elif isinstance(self.command, list | tuple):
            words = list(self.command)
        else:
            raise ValidationError("command", "must be a list of words or a string")
        if not words or not isinstance(words[0], str) or not words[0]:
            raise ValidationError("command", "must start with the program to run")
        first, rest = words[0], words[1:]
        if (
            first in PYTHON_NAMES
            and rest
            and isinstance(rest[0], str)
            and not rest[0].startswith("-")
        ):
            # python <script> ...: the script is checked and taken as any entry script.
            return rest[0], rest[1:], None
        return None, rest, first


def _conda_spec(conda_dependencies: Any) -> CondaSpec:
    return spec_of("conda_dependencies", conda_dependencies)


__all__ = ["ScriptRunConfig"]
