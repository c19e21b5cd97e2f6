"""What a submitted run executes: the one job description every run configuration compiles to.

``Estimator``, ``TensorFlow``, ``PyTorch`` and ``ScriptRunConfig`` each turn into a
:class:`JobSpec` at submit time; the run supervisor reads nothing else. It is stored with the
run as ``system_logs/job.json``, so what ran can always be read back.

Example::

    spec = JobSpec(script="train.py", arguments=[Argument(value="--epochs"), Argument(value="3")])
    JobSpec.from_json(spec.to_json()) == spec       # True
"""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelyard.backend.base import Backend
from modelyard.backend.records import NOT_STARTED, QUEUED, RunRecord
from modelyard.backend.source_tree import check_taken
from modelyard.errors import ValidationError
from modelyard.names import clean_relpath

JOB_FILE = "system_logs/job.json"
# The run property where the supervisor records the run's dataset inputs (v1's
# get_details()["inputDatasets"]; runner/data.py).
INPUT_DATASETS_PROPERTY = "modelyard.inputDatasets"
# Where a job's ``recorded`` settings go in its run's properties: ``modelyard.v1.<name>``.
RECORDED_PROPERTY_PREFIX = "modelyard.v1."
# The recorded settings that asked for docker: a RunConfiguration's DockerConfiguration, and
# the environment's env.docker (run_details.py says in a run's warnings that docker was not used).
DOCKER_SETTINGS = ("docker", "environment.docker")
DOCKER_ENVIRONMENT_SETTING = "environment.docker"

# The kinds of distributed job (``JobSpec.distributed["type"]``).
MPI = "mpi"
TENSORFLOW = "tensorflow"
PYTORCH = "pytorch"

# A command's first word that means the run's own interpreter.
PYTHON_NAMES = ("python", "python3")

# Pip distributions that provide each framework's import; any one of them will do.
FRAMEWORK_DISTRIBUTIONS = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly"),
    "pytorch": ("torch",),
}


@dataclass(frozen=True)
class Argument:
    """One command-line argument: a plain value, or a data reference turned into a local path
    on the compute (with ``prefix`` and ``suffix`` kept around it)."""

    value: str | None = None
    data_reference: dict[str, Any] | None = None
    prefix: str = ""
    suffix: str = ""


@dataclass
class JobSpec:
    """Everything the run supervisor needs to start a run's processes."""

    script: str
    arguments: list[Argument] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    compute_target: str = "local"
    framework: str | None = None
    framework_version: str | None = None
    pip_packages: list[str] = field(default_factory=list)
    conda_packages: list[str] = field(default_factory=list)
    environment_variables: dict[str, str] = field(default_factory=dict)
    use_gpu: bool = False
    node_count: int = 1
    process_count_per_node: int = 1
    distributed: dict[str, Any] | None = None
    max_run_duration_seconds: float | None = None
    snapshot_id: str | None = None
    # The run's Python environment beyond its packages (modelyard/environment.py).
    python_version: str | None = None
    python_path: str | None = None  # a user-managed interpreter, used as it is
    inherit_base_packages: bool = False
    environment_name: str | None = None  # "name" or "name:version", for people
    # A ScriptRunConfig's ``command=`` that is not ``python <script>``: the program and its
    # first words, run without a shell, before ``arguments`` (``script`` is then "").
    command: list[str] | None = None
    # v1 settings without a meaning here (docker, VM sizes), as the user gave them.
    recorded: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        data = json.loads(text)
        data["arguments"] = [Argument(**a) for a in data.get("arguments", [])]
        return cls(**data)

    def command_line(self, python: str, arguments: list[str]) -> list[str]:
        """What the run's processes execute: ``python script arguments...``, or the job's
        ``command`` and its arguments, with a leading ``python`` meaning the run's ``python``.

        Example::

            JobSpec(script="train.py").command_line("/envs/a/bin/python", ["--x", "1"])
            # ['/envs/a/bin/python', 'train.py', '--x', '1']
            JobSpec(script="", command=["python", "-m", "pkg"]).command_line("/p", [])
            # ['/p', '-m', 'pkg']
        """
        if self.command is None:
            return [python, self.script, *arguments]
        program, *words = self.command
        if program in PYTHON_NAMES:
            program = python
        return [program, *words, *arguments]

    def data_references(self) -> list[dict[str, Any]]:
        """Every data reference of the job (arguments first, then inputs), once per name."""
        found: dict[str, dict[str, Any]] = {}
        for argument in self.arguments:
            if argument.data_reference is not None:
                found.setdefault(
                    argument.data_reference["data_reference_name"], argument.data_reference
                )
        for reference in self.inputs:
            found.setdefault(reference["data_reference_name"], reference)
        return list(found.values())


def _is_data_reference(value: Any) -> bool:
    return callable(getattr(value, "to_config", None)) and hasattr(value, "data_reference_name")


def to_argument(field_name: str, value: Any) -> Argument:
    """One script argument from a user's value: str, number, bool, path or data reference."""
    if _is_data_reference(value):
        return Argument(data_reference=value.to_config())
    if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        text = str(value)
    elif isinstance(value, os.PathLike):
        text = os.fspath(value)
    else:
        raise ValidationError(
            field_name,
            f"{value!r} ({type(value).__name__}) cannot be passed on a command line; use "
            "strings, numbers, booleans, paths or data references",
        )
    if "\x00" in text:
        raise ValidationError(field_name, "an argument must not contain NUL characters")
    return Argument(value=text)


def arguments_from(
    script_params: dict[str, Any] | None, arguments: list[Any] | None
) -> list[Argument]:
    """v1's two ways of giving arguments, in v1's order: ``arguments`` as they are, then each
    ``script_params`` key followed by its value (a value of ``""`` or None passes the key
    alone, as a flag)."""
    result = [to_argument("arguments", value) for value in (arguments or [])]
    for key, value in (script_params or {}).items():
        if not isinstance(key, str) or not key:
            raise ValidationError("script_params", f"key {key!r} must be a non-empty string")
        result.append(to_argument("script_params", key))
        if value is not None and value != "":
            result.append(to_argument("script_params", value))
    return result


def check_source_directory(source_directory: str | os.PathLike[str]) -> Path:
    """The source folder, resolved; it must exist."""
    folder = Path(source_directory).expanduser()
    if not folder.is_dir():
        raise ValidationError("source_directory", f"{folder} is not a folder")
    return folder.resolve()


def check_entry_script(source_directory: str | os.PathLike[str], script: str) -> tuple[Path, str]:
    """The source folder (resolved) and the script's clean relative path; both must exist, and
    the script must be a file the run's snapshot takes (not a link leading out of the folder)."""
    folder = check_source_directory(source_directory)
    relative = clean_relpath("entry_script", script)
    if not (folder / relative).is_file():
        raise ValidationError("entry_script", f"{relative} does not exist in {folder.resolve()}")
    check_taken(folder, relative, "entry_script")
    return folder, relative


def queue_job(
    backend: Backend,
    run_id: str,
    experiment_name: str,
    spec: JobSpec,
    *,
    run_type: str,
    properties: dict[str, str],
    parent_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> RunRecord:
    """Store a run of ``spec`` and queue it: the run (NotStarted), its job file, then Queued.

    Each step may be made again with the same values (``create_run`` returns the run that
    exists, the job file is replaced by the same bytes), so a caller cut off half-way (a
    tuning driver killed between two steps) finishes the job by calling it again. Whoever
    calls it then tells the run's compute target (``Compute.queued``).

    Example::

        queue_job(backend, run_id, "mnist", spec, run_type="script", properties={})
    """
    backend.create_run(
        run_id,
        experiment_name,
        run_type=run_type,
        status=NOT_STARTED,
        parent_id=parent_id,
        tags=tags,
        properties=properties,
    )
    backend.upload_run_file(run_id, JOB_FILE, io.BytesIO(spec.to_json().encode()))
    return backend.update_run_status(run_id, QUEUED)
