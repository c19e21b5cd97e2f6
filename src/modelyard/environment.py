"""Environments: the Python packages a run needs, built once and cached by content.

An :class:`Environment` says what a run's Python must have: pip packages (a list, a
requirements file, or both), a Python version, conda packages, environment variables, and
whether to see the packages of modelyard's own Python too. ``ScriptRunConfig(environment=env)``
and ``Estimator(environment_definition=env)`` take one; in the run's Preparing phase the
compute builds it once per content hash and reuses it after (``runner/envbuild``). A run that
asks for nothing modelyard's own Python lacks simply runs with that Python.

Registered environments are versioned per workspace: ``env.register(ws)`` stores a new version
only when the content changed since the latest one.

v1's sections are there too: ``env.python`` (:class:`PythonSection`: ``conda_dependencies``, a
:class:`~modelyard.conda_dependencies.CondaDependencies` whose pip section, conda packages and
``python=`` the run gets; ``user_managed_dependencies`` and ``interpreter_path`` for a Python
you manage) and ``env.docker`` (:class:`DockerSection`: recorded with the environment, never
used: runs here use the built environment, not a container).
``Environment.from_conda_specification`` reads a conda ``environment.yml``. The curated names
of v1 (``AzureML-Minimal``, ``AzureML-sklearn-...``: ``curated_environments.py``) are found by
``Environment.get`` and listed by ``Environment.list``.

Example::

    env = Environment("sklearn-env", pip_packages=["scikit-learn==1.5.2"])
    env.register(ws)                                   # version 1
    env.register(ws).version                           # still 1: nothing changed
    run = exp.submit(ScriptRunConfig("./src", "train.py", environment=env))
    Environment.get(ws, "sklearn-env", version="1").pip_packages   # ['scikit-learn==1.5.2']
    env = Environment.from_conda_specification("conda-env", "./environment.yml")
"""

from __future__ import annotations

import builtins
import copy
import difflib
import os
import shutil
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.backend.base import every_item
from modelyard.backend.records import EnvironmentRecord
from modelyard.conda_dependencies import CondaDependencies, conda_name
from modelyard.curated_environments import (
    CURATED,
    CURATED_VERSION,
    CuratedEnvironment,
    find_curated,
    is_curated_name,
)
from modelyard.errors import NotFoundError, ValidationError
from modelyard.names import check_environment_variables, check_name
from modelyard.runner.envbuild.prepare import check_python_version
from modelyard.runner.envbuild.requirements import (
    clean_requirements,
    framework_requirements,
    read_requirements_file,
)
from modelyard.runner.job import JobSpec

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


# v1's interpreter_path default.
DEFAULT_INTERPRETER = "python"


class PythonSection:
    """v1's ``env.python``: the conda specification, or a Python you manage.

    ``conda_dependencies``: its pip section, conda packages and ``python=`` go into the run's
    environment with the Environment's own. ``user_managed_dependencies=True``: the run uses
    ``interpreter_path`` as it is (a path, or a command found on the PATH when the run is
    submitted), nothing installed. v1's default ``"python"`` means the Python that runs the
    submitting code (``sys.executable``): a notebook's kernel is often started without its
    environment on the PATH, where ``python`` is another interpreter, without modelyard.

    Example::

        env.python.conda_dependencies = CondaDependencies.create(pip_packages=["pandas"])
        env.python.user_managed_dependencies = True
        env.python.interpreter_path = "/opt/conda/envs/ml/bin/python"
    """

    def __init__(self) -> None:
        self.conda_dependencies: CondaDependencies | None = CondaDependencies()
        self.user_managed_dependencies = False
        self.interpreter_path = DEFAULT_INTERPRETER


_DOCKER_DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "base_image": None,
    "base_dockerfile": None,
    "shm_size": None,
    "arguments": [],
    "gpu_support": False,
}


class DockerSection:
    """v1's ``env.docker`` (``enabled``, ``base_image``, ``base_dockerfile``, ``shm_size``,
    ``arguments``, ``gpu_support``): recorded with the environment so v1 code that sets it
    runs and reads it back, never used. Runs here use the built environment on the compute's
    own system, not a container.

    Example::

        env.docker.enabled = True
        env.docker.base_image = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04"
    """

    def __init__(self) -> None:
        self.enabled: bool = False
        self.base_image: str | None = None
        self.base_dockerfile: str | None = None
        self.shm_size: str | None = None
        self.arguments: builtins.list[str] = []
        self.gpu_support: bool = False

    def _definition(self) -> dict[str, Any]:
        """What differs from the defaults (JSON-ready)."""
        recorded = {}
        for key, default in _DOCKER_DEFAULTS.items():
            value = getattr(self, key)
            if value == default:
                continue
            if key in ("enabled", "gpu_support"):
                if not isinstance(value, bool):
                    raise ValidationError(f"docker.{key}", "must be True or False")
            elif key == "arguments":
                if not isinstance(value, list | tuple) or not all(
                    isinstance(a, str) for a in value
                ):
                    raise ValidationError("docker.arguments", "must be a list of strings")
                value = builtins.list(value)
            elif not isinstance(value, str):
                raise ValidationError(f"docker.{key}", f"must be a string, not {value!r}")
            recorded[key] = value
        return recorded

    def _restore(self, recorded: dict[str, Any]) -> None:
        for key, value in recorded.items():
            if key in _DOCKER_DEFAULTS:
                setattr(self, key, copy.deepcopy(value))


def _version_number(version: object) -> int | None:
    """A version as v1 gives it (``"1"``) or as modelyard does (``1``)."""
    if version is None:
        return None
    if isinstance(version, str) and version.strip().isdigit():
        version = int(version.strip())
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValidationError("version", f"{version!r} is not a version number (1, 2, ...)")
    return version


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
        self.python = PythonSection()
        self.docker = DockerSection()
        self.environment_variables = _check_variables(environment_variables)
        if not isinstance(inherit_base_packages, bool):
            raise ValidationError("inherit_base_packages", "must be True or False")
        self.inherit_base_packages = inherit_base_packages
        self.conda_packages = _check_conda_packages(conda_packages)
        self._curated = False

    @property
    def python_path(self) -> str | None:
        """The user-managed interpreter the run uses as it is (``python.interpreter_path``
        when ``python.user_managed_dependencies``), or None: modelyard provides the Python."""
        if not self.python.user_managed_dependencies:
            return None
        path = self.python.interpreter_path
        if not isinstance(path, str) or not path or "\x00" in path:
            raise ValidationError("python.interpreter_path", f"{path!r} is not a path")
        if path == DEFAULT_INTERPRETER:
            return sys.executable  # see PythonSection
        if os.sep not in path:
            path = shutil.which(path) or path
        return os.path.abspath(os.path.expanduser(path))

    @python_path.setter
    def python_path(self, path: str | None) -> None:
        self.python.user_managed_dependencies = path is not None
        self.python.interpreter_path = path if path is not None else DEFAULT_INTERPRETER

    @property
    def curated(self) -> bool:
        """Whether this is one of the curated environments (``AzureML-...``)."""
        return self._curated

    @classmethod
    def from_conda_specification(cls, name: str, file_path: str | os.PathLike[str]) -> Environment:
        """An environment from a conda ``environment.yml``: its pip section becomes the
        run's pip packages, ``python=`` its Python version, its conda packages are installed
        with conda where one is on the compute, else from PyPI under the same names.

        Example::

            env = Environment.from_conda_specification("conda-env", "./environment.yml")
        """
        environment = cls(name)
        environment.python.conda_dependencies = CondaDependencies(file_path)
        try:
            environment._packages()
        except ValidationError as error:
            raise ValidationError("file_path", f"{os.fspath(file_path)}: {error}") from None
        return environment

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

    def clone(self, new_name: str) -> Environment:
        """A copy under another name, not registered (how a curated environment is changed).

        Example::

            env = Environment.get(ws, "AzureML-Minimal").clone("my-env")
        """
        environment = copy.deepcopy(self)
        environment.name = check_name("new_name", new_name)
        environment.version = None
        environment._curated = False
        return environment

    def _conda(self) -> CondaDependencies:
        found = self.python.conda_dependencies
        if found is None:
            return CondaDependencies()
        if not isinstance(found, CondaDependencies):
            raise ValidationError(
                "python.conda_dependencies",
                f"expected a CondaDependencies, not {type(found).__name__}",
            )
        return found

    def _packages(self) -> tuple[builtins.list[str], builtins.list[str], str | None]:
        """What a run gets: pip lines, conda packages, Python version (the Environment's
        own first, then its conda specification's), each checked."""
        conda = self._conda()
        pip = clean_requirements(
            "python.conda_dependencies", [*conda.pip_options, *conda.pip_packages]
        )
        packages = _check_conda_packages(
            [spec for spec in conda.conda_packages if conda_name(spec) not in ("python", "pip")]
        )
        python_version = self.python_version
        entry = conda.python_entry()
        if python_version is None and entry is not None:
            pinned = conda.get_python_version()
            if pinned is None and entry.strip().lower() != "python":
                raise ValidationError(
                    "python.conda_dependencies",
                    f"{entry!r}: give Python as python=3.11 (a version), or leave the version "
                    "out to use modelyard's own Python",
                )
            python_version = check_python_version(f"python.conda_dependencies ({entry})", pinned)
        return (
            [*self.pip_packages, *self.pip_requirements, *pip],
            [*self.conda_packages, *packages],
            python_version,
        )

    # -- the workspace's registry --------------------------------------------------------

    def _definition(self) -> dict[str, Any]:
        """The content that versions compare (JSON-ready). v1's sections are there only when
        they hold something, so an environment that does not use them keeps the content
        hash, and the version, it had before they existed."""
        self._packages()  # refuse now what a run would refuse
        definition: dict[str, Any] = {
            "pip_packages": builtins.list(self.pip_packages),
            "pip_requirements": builtins.list(self.pip_requirements),
            "pip_requirements_file": self.pip_requirements_file,
            "python_version": self.python_version,
            "python_path": self.python_path,
            "environment_variables": dict(_check_variables(self.environment_variables)),
            "inherit_base_packages": self.inherit_base_packages,
            "conda_packages": builtins.list(self.conda_packages),
        }
        conda = self._conda()
        if not conda.is_empty():
            definition["conda_dependencies"] = conda.as_dict()
        docker = self.docker._definition()
        if docker:
            definition["docker"] = docker
        return definition

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
        if definition.get("conda_dependencies") is not None:
            environment.python.conda_dependencies = CondaDependencies(
                _underlying_structure=definition["conda_dependencies"]
            )
        environment.docker._restore(definition.get("docker") or {})
        environment.version = record.version
        return environment

    @classmethod
    def _from_curated(cls, curated: CuratedEnvironment) -> Environment:
        environment = cls(curated.name, environment_variables=dict(curated.environment_variables))
        # Where v1 kept a curated environment's packages, and where notebooks print them from
        # (env.python.conda_dependencies.serialize_to_string()).
        environment.python.conda_dependencies = CondaDependencies.create(
            pip_packages=curated.pip_packages
        )
        environment.version = CURATED_VERSION
        environment._curated = True
        return environment

    @classmethod
    def _of_job(cls, workspace: Workspace, spec: JobSpec, run_id: str) -> Environment:
        """The environment a run was submitted with: the registered or curated one it
        names, else one made of what its job asked for."""
        if spec.environment_name is not None and ":" in spec.environment_name:
            name, _, version = spec.environment_name.rpartition(":")
            try:
                return cls.get(workspace, name, version)
            except NotFoundError:
                pass  # deleted since: rebuild it from the job
        framework = (
            framework_requirements(spec.framework, spec.framework_version, spec.use_gpu)
            if spec.framework is not None
            else []
        )
        name = (spec.environment_name or f"{run_id}-environment").partition(":")[0]
        environment = cls(
            name,
            pip_packages=builtins.list(dict.fromkeys([*spec.pip_packages, *framework])),
            python_version=spec.python_version,
            environment_variables=dict(spec.environment_variables),
            inherit_base_packages=spec.inherit_base_packages,
            conda_packages=builtins.list(spec.conda_packages),
        )
        environment.python_path = spec.python_path
        return environment

    def register(self, workspace: Workspace) -> Environment:
        """Store this environment in the workspace: a new version when its content differs
        from the latest version's, else that version. Sets ``self.version`` and returns
        ``self``.

        Example::

            env.register(ws).version      # 1, then 1 again until the content changes
        """
        if is_curated_name(self.name):
            raise ValidationError(
                "name",
                f"{self.name!r}: names starting with 'AzureML-' are the curated environments' "
                "and are not registered; register a copy under a name of your own: "
                f"env.clone('my-env').register(ws)",
            )
        record = workspace._backend.register_environment(self.name, self._definition())
        self.version = record.version
        return self

    @staticmethod
    def get(workspace: Workspace, name: str, version: int | str | None = None) -> Environment:
        """A registered environment (the latest version when ``version`` is None; ``"1"``
        or ``1``), else the curated environment of that name, else NotFoundError naming
        close names.

        Example::

            env = Environment.get(ws, "sklearn-env", version="2")
            env = Environment.get(ws, "AzureML-Minimal")
        """
        check_name("name", name)
        number = _version_number(version)
        try:
            return Environment._from_record(workspace._backend.get_environment(name, number))
        except NotFoundError:
            registered = _registered_names(workspace)
            if name in registered:
                raise  # the name is there; that version is not
        curated = find_curated(name)
        if curated is not None:
            if number not in (None, CURATED_VERSION):
                raise NotFoundError(
                    f"the curated environment {curated.name} has version {CURATED_VERSION} only"
                )
            return Environment._from_curated(curated)
        close = difflib.get_close_matches(name, [*registered, *CURATED], n=5, cutoff=0.6)
        hint = f"; close names: {', '.join(close)}" if close else ""
        raise NotFoundError(
            f"no environment {name!r} is registered in workspace {workspace.name!r} or "
            f"curated{hint}. See Environment.list(ws) or `modelyard env curated`"
        )

    @staticmethod
    def list(workspace: Workspace) -> dict[str, Environment]:
        """The latest version of each registered environment, by name (as v1 returned them),
        then the curated ones (``env.curated`` is True).

        Example::

            for name, env in Environment.list(ws).items():
                print(name, env.version, env.curated)
        """
        latest: dict[str, Environment] = {}
        for record in _records(workspace):
            if record.name not in latest:  # newest version first within a name
                latest[record.name] = Environment._from_record(record)
        for name, curated in CURATED.items():
            latest.setdefault(name, Environment._from_curated(curated))
        return latest

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, version={self.version})"


def _records(workspace: Workspace) -> builtins.list[EnvironmentRecord]:
    return builtins.list(
        every_item(
            lambda limit, after: workspace._backend.list_environments(limit=limit, after=after)
        )
    )


def _registered_names(workspace: Workspace) -> builtins.list[str]:
    return builtins.list(dict.fromkeys(record.name for record in _records(workspace)))


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
    docker: dict[str, Any]  # env.docker's settings, recorded with the run (never used)


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
    python_version = None
    if definition is not None:
        pip, packages, python_version = definition._packages()
        lines += pip
        conda += packages
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
        python_version=python_version,
        python_path=definition.python_path if definition is not None else None,
        inherit_base_packages=definition.inherit_base_packages if definition else False,
        environment_variables=dict(definition.environment_variables) if definition else {},
        name=name,
        docker=definition.docker._definition() if definition is not None else {},
    )


__all__ = ["DockerSection", "Environment", "PythonSection"]
