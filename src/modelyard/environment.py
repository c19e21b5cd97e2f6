"""Environments: the Python packages a run needs, built once and cached by content.

An :class:`Environment` says what a run's Python must have: pip packages (a list, a
requirements file, or both), a Python version, conda packages, environment variables, and
whether to see the packages of modelyard's own Python too. ``ScriptRunConfig(environment=env)``
and ``Estimator(environment_definition=env)`` take one; in the run's Preparing phase the
compute builds it once per content hash and reuses it after (``runner/envbuild``). A run that
asks for nothing modelyard's own Python lacks simply runs with that Python.

Registered environments are versioned per workspace: ``env.register(ws)`` stores a new version
only when the content changed since the latest one.

Example::

    env = Environment("sklearn-env", pip_packages=["scikit-learn==1.5.2"])
    env.register(ws)                                   # version 1
    env.register(ws).version                           # still 1: nothing changed
    run = exp.submit(ScriptRunConfig("./src", "train.py", environment=env))
    Environment.get(ws, "sklearn-env", version=1).pip_packages   # ['scikit-learn==1.5.2']
"""

from __future__ import annotations

import builtins
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.backend.base import every_item
from modelyard.backend.records import EnvironmentRecord
from modelyard.errors import ValidationError
from modelyard.names import check_environment_variables, check_name
from modelyard.runner.envbuild.prepare import check_python_version
from modelyard.runner.envbuild.requirements import clean_requirements, read_requirements_file

if TYPE_CHECKING:
    from modelyard.workspace import Workspace


def _check_variables(variables: object) -> dict[str, str]:
    return check_environment_variables("environment_variables", variables)


def _check_conda_packages(packages: object) -> builtins.list[str]:
    if packages is None:
        return []
    if isinstance(packages, str | bytes) or not isinstance(packages, list | tuple):
        raise ValidationError("conda_packages", "must be a list of conda package specs")
    clean = []
    for package in packages:
        if (
            not isinstance(package, str)
            or not package.strip()
            or package.strip().startswith("-")
            or any(character in package for character in "\x00\n\r")
        ):
            raise ValidationError(
                "conda_packages", f"{package!r} is not a conda package spec like 'numpy=1.26'"
            )
        clean.append(package.strip())
    return clean


class Environment:
    """The Python packages, version and variables of a run (v1's ``Environment``).

    ``pip_packages`` are requirement strings; ``pip_requirements_file`` is read now, so the
    environment holds its lines (``pip_requirements``) wherever it is used later.
    ``python_version`` picks an interpreter present on the compute (``"3.12"``);
    ``inherit_base_packages=True`` lets the run see modelyard's own packages under its own.

    Example::

        env = Environment("tf-env", pip_packages=["tensorflow-cpu==2.21.*", "tf-keras==2.21.*"],
                          environment_variables={"TF_USE_LEGACY_KERAS": "1"})
    """

    def __init__(
        self,
        name: str,
        pip_packages: builtins.list[str] | None = None,
        pip_requirements_file: str | os.PathLike[str] | None = None,
        python_version: str | None = None,
        environment_variables: dict[str, str] | None = None,
        inherit_base_packages: bool = False,
        conda_packages: builtins.list[str] | None = None,
    ) -> None:
        self.name = check_name("name", name)
        self.version: int | None = None
        self.pip_packages = clean_requirements("pip_packages", pip_packages or [])
        self.pip_requirements_file = (
            os.fspath(pip_requirements_file) if pip_requirements_file is not None else None
        )
        self.pip_requirements = (
            read_requirements_file("pip_requirements_file", pip_requirements_file)
            if pip_requirements_file is not None
            else []
        )
        self.python_version = check_python_version("python_version", python_version)
        self.python_path: str | None = None
        self.environment_variables = _check_variables(environment_variables)
        if not isinstance(inherit_base_packages, bool):
            raise ValidationError("inherit_base_packages", "must be True or False")
        self.inherit_base_packages = inherit_base_packages
        self.conda_packages = _check_conda_packages(conda_packages)

    @classmethod
    def from_pip_requirements(cls, name: str, file_path: str | os.PathLike[str]) -> Environment:
        """An environment with the packages of a pip requirements file.

        Example::

            env = Environment.from_pip_requirements("train-env", "./requirements.txt")
        """
        return cls(name, pip_requirements_file=file_path)

    @classmethod
    def from_existing_python(cls, name: str, python_path: str | os.PathLike[str]) -> Environment:
        """An environment that is a Python you manage: runs use it as it is, with nothing
        built or installed (it needs modelyard installed for ``Run.get_context()``).

        Example::

            env = Environment.from_existing_python("my-conda", "/opt/conda/envs/ml/bin/python")
        """
        path = os.fspath(python_path)
        if not path or "\x00" in path:
            raise ValidationError("python_path", f"{path!r} is not a path")
        environment = cls(name)
        environment.python_path = os.path.abspath(os.path.expanduser(path))
        return environment

    # -- the workspace's registry --------------------------------------------------------

    def _definition(self) -> dict[str, Any]:
        """The content that versions compare (JSON-ready)."""
        return {
            "pip_packages": builtins.list(self.pip_packages),
            "pip_requirements": builtins.list(self.pip_requirements),
            "pip_requirements_file": self.pip_requirements_file,
            "python_version": self.python_version,
            "python_path": self.python_path,
            "environment_variables": dict(self.environment_variables),
            "inherit_base_packages": self.inherit_base_packages,
            "conda_packages": builtins.list(self.conda_packages),
        }

    @classmethod
    def _from_record(cls, record: EnvironmentRecord) -> Environment:
        definition = record.definition
        environment = cls(
            record.name,
            pip_packages=definition.get("pip_packages") or [],
            python_version=definition.get("python_version"),
            environment_variables=definition.get("environment_variables") or {},
            inherit_base_packages=bool(definition.get("inherit_base_packages")),
            conda_packages=definition.get("conda_packages") or [],
        )
        # The file's lines were kept when it was registered; the file may be gone since.
        environment.pip_requirements = clean_requirements(
            "pip_requirements", definition.get("pip_requirements") or []
        )
        environment.pip_requirements_file = definition.get("pip_requirements_file")
        environment.python_path = definition.get("python_path")
        environment.version = record.version
        return environment

    def register(self, workspace: Workspace) -> Environment:
        """Store this environment in the workspace: a new version when its content differs
        from the latest version's, else that version. Sets ``self.version`` and returns
        ``self``.

        Example::

            env.register(ws).version      # 1, then 1 again until the content changes
        """
        record = workspace._backend.register_environment(self.name, self._definition())
        self.version = record.version
        return self

    @staticmethod
    def get(workspace: Workspace, name: str, version: int | None = None) -> Environment:
        """A registered environment (the latest version when ``version`` is None), or
        NotFoundError.

        Example::

            env = Environment.get(ws, "sklearn-env")
        """
        check_name("name", name)
        if version is not None and (
            not isinstance(version, int) or isinstance(version, bool) or version < 1
        ):
            raise ValidationError("version", f"{version!r} is not a version number (1, 2, ...)")
        return Environment._from_record(workspace._backend.get_environment(name, version))

    @staticmethod
    def list(workspace: Workspace) -> dict[str, Environment]:
        """The latest version of each registered environment, by name (as v1 returned them).

        Example::

            for name, env in Environment.list(ws).items():
                print(name, env.version)
        """
        latest: dict[str, Environment] = {}
        records = every_item(
            lambda limit, after: workspace._backend.list_environments(limit=limit, after=after)
        )
        for record in records:
            if record.name not in latest:  # newest version first within a name
                latest[record.name] = Environment._from_record(record)
        return latest

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, version={self.version})"


@dataclass(frozen=True)
class RunEnvironment:
    """An estimator's packages and an Environment merged: what a JobSpec carries."""

    pip_packages: builtins.list[str]
    conda_packages: builtins.list[str]
    python_version: str | None
    python_path: str | None
    inherit_base_packages: bool
    environment_variables: dict[str, str]
    name: str | None


def run_environment(
    definition: object,
    *,
    pip_packages: builtins.list[str],
    pip_requirements_file: str | os.PathLike[str] | None,
    conda_packages: builtins.list[str],
) -> RunEnvironment:
    """Merge an estimator's own package arguments with its ``environment_definition`` (the
    Environment's packages first; each requirement once)."""
    if definition is not None and not isinstance(definition, Environment):
        raise ValidationError(
            "environment_definition",
            f"expected a modelyard Environment, not {type(definition).__name__}",
        )
    lines: builtins.list[str] = []
    conda: builtins.list[str] = []
    if definition is not None:
        lines += [*definition.pip_packages, *definition.pip_requirements]
        conda += definition.conda_packages
    lines += clean_requirements("pip_packages", pip_packages)
    if pip_requirements_file is not None:
        lines += read_requirements_file("pip_requirements_file", pip_requirements_file)
    conda += _check_conda_packages(conda_packages)
    name = None
    if definition is not None:
        name = definition.name + (f":{definition.version}" if definition.version else "")
    return RunEnvironment(
        pip_packages=builtins.list(dict.fromkeys(lines)),
        conda_packages=builtins.list(dict.fromkeys(conda)),
        python_version=definition.python_version if definition is not None else None,
        python_path=definition.python_path if definition is not None else None,
        inherit_base_packages=definition.inherit_base_packages if definition else False,
        environment_variables=dict(definition.environment_variables) if definition else {},
        name=name,
    )


__all__ = ["Environment"]
