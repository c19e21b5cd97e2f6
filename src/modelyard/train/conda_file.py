"""A conda environment file (``environment.yml``) as the packages of an estimator's run.

v1's ``conda_dependencies_file`` names one (and ``RunConfiguration.conda_dependencies`` holds
one); its ``python=X.Y`` picks the run's Python, its ``pip:`` section becomes pip requirements
and its other dependencies conda packages (built with conda where one is on the machine, else
taken from PyPI under the same names; see ``runner/envbuild``). The file is read by
:class:`~modelyard.conda_dependencies.CondaDependencies`, the one reader of conda files.

Example::

    spec = read_conda_file("conda_dependencies_file", "environment.yml", Path("./src"))
    spec.python_version, spec.conda_packages, spec.pip_packages
    # ('3.11', ['numpy=1.26'], ['scikit-learn==1.5.2'])
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelyard.conda_dependencies import CondaDependencies, conda_name
from modelyard.errors import ValidationError


@dataclass(frozen=True)
class CondaSpec:
    """What a conda environment file asks for."""

    conda_packages: list[str] = field(default_factory=list)
    pip_packages: list[str] = field(default_factory=list)
    python_version: str | None = None


def conda_spec(dependencies: CondaDependencies) -> CondaSpec:
    """The packages of ``dependencies``: ``python`` and ``pip`` themselves are not packages
    to install (the run's environment has a Python and pip anyway)."""
    return CondaSpec(
        [p for p in dependencies.conda_packages if conda_name(p) not in ("python", "pip")],
        dependencies.pip_options + dependencies.pip_packages,
        dependencies.get_python_version(),
    )


def spec_of(field_name: str, dependencies: Any) -> CondaSpec:
    """The packages of a ``CondaDependencies``, or of any object with v1's
    ``serialize_to_string()``; ValidationError naming ``field_name`` otherwise."""
    if isinstance(dependencies, CondaDependencies):
        return conda_spec(dependencies)
    serialize = getattr(dependencies, "serialize_to_string", None)
    if not callable(serialize):
        raise ValidationError(
            field_name,
            "expected CondaDependencies (with serialize_to_string()), not "
            f"{type(dependencies).__name__}",
        )
    try:
        structure = yaml.safe_load(str(serialize()))
    except yaml.YAMLError as error:
        raise ValidationError(field_name, f"its YAML does not parse: {error}") from None
    if not isinstance(structure, dict):
        raise ValidationError(field_name, "its YAML is not a conda environment file (a mapping)")
    return conda_spec(CondaDependencies(_underlying_structure=structure))


def read_conda_file(
    field_name: str, path: str | os.PathLike[str], source_directory: Path
) -> CondaSpec:
    """Read ``path``: relative to ``source_directory`` as v1 had it, or else to the current
    folder."""
    given = Path(path).expanduser()
    candidates = [given] if given.is_absolute() else [source_directory / given, given]
    for candidate in candidates:
        if candidate.is_file():
            try:
                return conda_spec(CondaDependencies(candidate))
            except ValidationError as error:
                raise ValidationError(field_name, str(error)) from None
    raise ValidationError(
        field_name,
        f"{os.fspath(path)} does not exist (looked in {' and '.join(map(str, candidates))})",
    )
