"""A conda environment file (``environment.yml``) as the packages of an estimator's run.

v1's ``conda_dependencies_file`` names one; its ``python=X.Y`` picks the run's Python, its
``pip:`` section becomes pip requirements and its other dependencies conda packages (built with
conda where one is on the machine; see ``runner/envbuild``).

Example::

    spec = read_conda_file("./src/environment.yml")
    spec.python_version, spec.conda_packages, spec.pip_packages
    # ('3.11', ['numpy=1.26'], ['scikit-learn==1.5.2'])
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml  # type: ignore[import-untyped]  # PyYAML ships no type stubs

from modelyard.errors import ValidationError

# "python", "python=3.11", "python==3.11.7", "python 3.11"
_PYTHON = re.compile(r"python(?:\s*=+\s*|\s+)?(?P<version>[0-9][0-9.*]*)?\s*$")


@dataclass(frozen=True)
class CondaSpec:
    """What a conda environment file asks for."""

    conda_packages: list[str] = field(default_factory=list)
    pip_packages: list[str] = field(default_factory=list)
    python_version: str | None = None


def parse_conda_text(field_name: str, text: str, where: str) -> CondaSpec:
    """The packages of a conda environment file's text; ValidationError naming ``field_name``
    when it is not one."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValidationError(field_name, f"{where} is not valid YAML: {error}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationError(field_name, f"{where} is not a conda environment file (a mapping)")
    dependencies = data.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise ValidationError(field_name, f"{where}: 'dependencies' must be a list")
    conda: list[str] = []
    pip: list[str] = []
    python: str | None = None
    for entry in dependencies:
        if isinstance(entry, dict) and set(entry) == {"pip"} and isinstance(entry["pip"], list):
            pip += [str(line) for line in entry["pip"]]
        elif isinstance(entry, str | int | float):
            text_entry = str(entry).strip()
            match = _PYTHON.fullmatch(text_entry)
            if match:
                version = match.group("version")
                python = version.rstrip(".*") if version else None
            elif text_entry != "pip":  # pip itself: the run's environment has it anyway
                conda.append(text_entry)
        else:
            raise ValidationError(
                field_name, f"{where}: dependency {entry!r} is neither a package nor a pip list"
            )
    return CondaSpec(conda, pip, python)


def read_conda_file(
    field_name: str, path: str | os.PathLike[str], source_directory: Path
) -> CondaSpec:
    """Read ``path``: relative to ``source_directory`` as v1 had it, or else to the current
    folder."""
    given = Path(path).expanduser()
    candidates = [given] if given.is_absolute() else [source_directory / given, given]
    for candidate in candidates:
        if candidate.is_file():
            return parse_conda_text(
                field_name, candidate.read_text(encoding="utf-8"), str(candidate)
            )
    raise ValidationError(
        field_name,
        f"{os.fspath(path)} does not exist (looked in {' and '.join(map(str, candidates))})",
    )
