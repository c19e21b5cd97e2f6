"""A conda environment specification, as v1's ``azureml.core.conda_dependencies`` held it.

:class:`CondaDependencies` is the content of a conda ``environment.yml``: a name, channels, conda
packages (``python=3.11`` among them) and a ``pip`` section. An
:class:`~modelyard.environment.Environment` takes one as ``env.python.conda_dependencies``,
and ``Environment.from_conda_specification`` reads one from a file. How its parts are used by a
run: the pip section as the run's pip packages, ``python=`` as its Python version, the conda
packages with conda where one is on the machine, else as the PyPI packages of the same names
(``runner/envbuild/conda.py``).

v1 specifications name the v1 SDK's own packages (``azureml-defaults``, ``azureml-core``...) in
their pip section. Here the client is modelyard, always present in a run's Python, so those
are dropped, with one warning saying so.

The file is YAML read with ``yaml.safe_load`` and written with ``yaml.safe_dump``: data only.

Example::

    cd = CondaDependencies.create(pip_packages=["scikit-learn==1.9.*"],
                                  conda_packages=["numpy=2.4"], python_version="3.11")
    cd.add_channel("conda-forge")
    print(cd.serialize_to_string())
    cd.save("./environment.yml")
    CondaDependencies("./environment.yml").pip_packages     # ['scikit-learn==1.9.*']
"""

from __future__ import annotations

import copy
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from modelyard.errors import StorageError, ValidationError
from modelyard.store.private import write_private_file

DEFAULT_NAME = "project_environment"
CONDA_FILE = "conda_dependencies.yml"  # v1's file name in save_to_file
_CONDA_NAME = re.compile(r"(?:[^:\s]+::)?\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_PYTHON_PIN = re.compile(r"python\s*(==|=|\s)\s*(3(?:\.\d+){0,2})(?:\.\*)?")


def conda_name(spec: str) -> str:
    """A conda spec's package name, lower case (``conda-forge::NumPy=2`` -> ``numpy``)."""
    match = _CONDA_NAME.match(spec.strip())
    return match.group(1).lower() if match else spec.strip().lower()


def _pip_name(line: str) -> str:
    """A pip line's package name (canonical), or the line itself for options and URLs."""
    if line.startswith("-"):
        return line.split()[0]
    try:
        return canonicalize_name(Requirement(line).name)
    except InvalidRequirement:
        return line


def is_v1_sdk_package(line: str) -> bool:
    """Whether a pip line names one of the v1 SDK's own packages (``azureml-*``)."""
    name = _pip_name(line)
    return name == "azureml" or name.startswith("azureml-")


def _note_dropped(packages: Iterable[str]) -> None:
    dropped = list(packages)
    if dropped:
        warnings.warn(
            f"{', '.join(dropped)}: the v1 SDK's packages are not installed in a run; "
            "modelyard's client takes their place in every run's Python",
            UserWarning,
            stacklevel=3,
        )


class CondaDependencies:
    """The conda and pip packages of an environment (v1's ``CondaDependencies``).

    ``CondaDependencies()`` is empty; ``CondaDependencies(conda_dependencies_file_path=...)``
    reads a conda ``environment.yml``. Adding a package that is there (by name) replaces it.

    Example::

        cd = CondaDependencies()
        cd.add_pip_package("pillow==11.*")
        cd.add_conda_package("numpy=2.4")
        env.python.conda_dependencies = cd
    """

    def __init__(
        self,
        conda_dependencies_file_path: str | os.PathLike[str] | None = None,
        _underlying_structure: dict[str, Any] | None = None,
    ) -> None:
        if conda_dependencies_file_path is not None:
            structure = _read_file(Path(conda_dependencies_file_path))
        elif _underlying_structure is not None:
            structure = copy.deepcopy(_underlying_structure)
        else:
            structure = {"name": DEFAULT_NAME, "dependencies": [], "channels": []}
        self._structure = _checked(structure, "conda_dependencies_file_path")
        _note_dropped(self._drop_v1_sdk_packages())

    # -- v1's constructors ----------------------------------------------------------------

    @staticmethod
    def create(
        pip_packages: Iterable[str] | None = None,
        conda_packages: Iterable[str] | None = None,
        python_version: str | None = None,
        pin_sdk_version: bool = True,
        pip_indexurl: str | None = None,
    ) -> CondaDependencies:
        """A specification with these packages. ``pin_sdk_version`` is accepted for v1 code
        and changes nothing (the client is modelyard's); ``pip_indexurl`` becomes the pip
        section's ``--index-url``.

        Example::

            cd = CondaDependencies.create(pip_packages=["pandas==3.1.*"], python_version="3.11")
        """
        del pin_sdk_version  # v1 pinned its SDK here; modelyard's client is always there
        dependencies = CondaDependencies()
        if python_version is not None:
            dependencies.set_python_version(python_version)
        for package in conda_packages or []:
            dependencies.add_conda_package(package)
        if pip_indexurl is not None:
            dependencies.set_pip_option(f"--index-url {pip_indexurl}")
        for package in pip_packages or []:
            dependencies.add_pip_package(package)
        return dependencies

    @staticmethod
    def _from_file(file_path: str | os.PathLike[str]) -> CondaDependencies:
        """Read a conda ``environment.yml`` (v1's private name, used by notebooks).

        Example::

            cd = CondaDependencies._from_file("./environment.yml")
        """
        return CondaDependencies(conda_dependencies_file_path=file_path)

    # -- what it holds ----------------------------------------------------------------------

    def _dependencies(self) -> list[Any]:
        found: list[Any] = self._structure.setdefault("dependencies", [])
        return found

    def _pip_section(self, create: bool = False) -> list[str] | None:
        for entry in self._dependencies():
            if isinstance(entry, dict) and "pip" in entry:
                section: list[str] = entry["pip"]
                return section
        if not create:
            return None
        section = []
        self._dependencies().append({"pip": section})
        return section

    @property
    def name(self) -> str:
        """The environment's name in the file (``name:``)."""
        return str(self._structure.get("name", DEFAULT_NAME))

    @property
    def conda_channels(self) -> list[str]:
        """The channels, in order."""
        return list(self._structure.get("channels") or [])

    @property
    def conda_packages(self) -> list[str]:
        """The conda packages (``python=`` among them when set), in order."""
        return [entry for entry in self._dependencies() if isinstance(entry, str)]

    @property
    def pip_packages(self) -> list[str]:
        """The pip section's packages (its options left out: :attr:`pip_options`)."""
        return [line for line in self._pip_section() or [] if not line.startswith("-")]

    @property
    def pip_options(self) -> list[str]:
        """The pip section's installer options (``--index-url URL``...)."""
        return [line for line in self._pip_section() or [] if line.startswith("-")]

    def get_python_version(self) -> str | None:
        """The version of the ``python=`` entry (``"3.11"``), or None.

        Example::

            CondaDependencies.create(python_version="3.11").get_python_version()   # '3.11'
        """
        for entry in self.conda_packages:
            if conda_name(entry) == "python":
                match = _PYTHON_PIN.fullmatch(entry.strip().split("::")[-1])
                return match.group(2) if match else None
        return None

    def python_entry(self) -> str | None:
        """The ``python`` conda entry as written (``python=3.11``), or None."""
        for entry in self.conda_packages:
            if conda_name(entry) == "python":
                return entry
        return None

    def is_empty(self) -> bool:
        """Whether it holds no package, pip line or channel."""
        return not (self._dependencies() or self.conda_channels)

    # -- changing it ----------------------------------------------------------------------

    def add_pip_package(self, pip_package: str) -> None:
        """Add a pip requirement, replacing one of the same package.

        Example::

            cd.add_pip_package("scikit-learn==1.9.*")
        """
        line = _check_line("pip_package", pip_package)
        if is_v1_sdk_package(line):
            _note_dropped([line])
            return
        self.remove_pip_package(line)
        section = self._pip_section(create=True)
        assert section is not None
        section.append(line)

    def remove_pip_package(self, pip_package: str) -> None:
        """Remove the pip requirement of this package (any version)."""
        section = self._pip_section()
        if section is not None:
            name = _pip_name(pip_package.strip())
            section[:] = [line for line in section if _pip_name(line) != name]

    def set_pip_option(self, pip_option: str) -> None:
        """Add an installer option to the pip section (``--extra-index-url URL``), replacing
        one of the same option."""
        line = _check_line("pip_option", pip_option)
        if not line.startswith("-"):
            raise ValidationError("pip_option", f"{line!r} is not an option like --index-url URL")
        self.remove_pip_package(line)
        section = self._pip_section(create=True)
        assert section is not None
        section.insert(len(self.pip_options), line)

    def add_conda_package(self, conda_package: str) -> None:
        """Add a conda package (``numpy=2.4``), replacing one of the same name.

        Example::

            cd.add_conda_package("numpy=2.4")
        """
        spec = _check_line("conda_package", conda_package)
        self.remove_conda_package(spec)
        dependencies = self._dependencies()
        position = next(
            (index for index, entry in enumerate(dependencies) if isinstance(entry, dict)),
            len(dependencies),
        )
        dependencies.insert(position, spec)  # before the pip section, as conda writes it

    def remove_conda_package(self, conda_package: str) -> None:
        """Remove the conda package of this name (any version)."""
        name = conda_name(conda_package)
        self._dependencies()[:] = [
            entry
            for entry in self._dependencies()
            if not (isinstance(entry, str) and conda_name(entry) == name)
        ]

    def add_channel(self, channel: str) -> None:
        """Add a conda channel (once)."""
        name = _check_line("channel", channel)
        channels = self._structure.setdefault("channels", [])
        if name not in channels:
            channels.append(name)

    def remove_channel(self, channel: str) -> None:
        """Remove a conda channel."""
        self._structure["channels"] = [c for c in self.conda_channels if c != channel.strip()]

    def set_python_version(self, version: str) -> None:
        """Pin Python (``"3.11"``): the ``python=`` entry.

        Example::

            cd.set_python_version("3.12")
        """
        text = _check_line("version", version)
        if not re.fullmatch(r"3(\.\d+){0,2}", text):
            raise ValidationError("version", f"{text!r} is not a Python version like '3.11'")
        self.remove_conda_package("python")
        self._dependencies().insert(0, f"python={text}")

    # -- the file ---------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        """The specification as data (what the YAML holds)."""
        return copy.deepcopy(self._structure)

    def serialize_to_string(self) -> str:
        """The specification as a conda ``environment.yml``.

        Example::

            print(cd.serialize_to_string())
        """
        return yaml.safe_dump(self._structure, sort_keys=False, default_flow_style=False)

    def save(self, path: str | os.PathLike[str] | None = None) -> str:
        """Write the YAML to ``path`` (default ``./conda_dependencies.yml``), atomically and
        readable by its owner only (the store's one atomic writer); returns the path.

        Example::

            cd.save("./environment.yml")
        """
        target = Path(path if path is not None else CONDA_FILE)
        if target.is_dir():
            target = target / CONDA_FILE
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_private_file(target, self.serialize_to_string().encode())
        except OSError as error:
            raise StorageError(f"{target} cannot be written: {error}") from None
        return str(target)

    def save_to_file(
        self, base_directory: str | os.PathLike[str], conda_file_path: str | None = None
    ) -> str:
        """Write the YAML to ``conda_file_path`` inside ``base_directory`` (v1's form).

        Example::

            cd.save_to_file("./src", "environment.yml")
        """
        return self.save(Path(base_directory) / (conda_file_path or CONDA_FILE))

    def _drop_v1_sdk_packages(self) -> list[str]:
        section = self._pip_section()
        if section is None:
            return []
        dropped = [line for line in section if is_v1_sdk_package(line)]
        section[:] = [line for line in section if not is_v1_sdk_package(line)]
        return dropped

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CondaDependencies) and other._structure == self._structure

    def __hash__(self) -> int:
        return hash(self.serialize_to_string())

    def __repr__(self) -> str:
        return (
            f"CondaDependencies(conda_packages={self.conda_packages!r}, "
            f"pip_packages={self.pip_packages!r})"
        )


def _check_line(field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "\x00\n\r"):
        raise ValidationError(field, f"{value!r} is not a package spec")
    return value.strip()


def _read_file(path: Path) -> dict[str, Any]:
    field = "conda_dependencies_file_path"
    try:
        text = path.expanduser().read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ValidationError(field, f"{path} cannot be read: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValidationError(field, f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ValidationError(field, f"{path} is not a conda environment file (a mapping)")
    return data


def _checked(structure: dict[str, Any], field: str) -> dict[str, Any]:
    """The structure of a conda environment file, its types checked."""
    channels = structure.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise ValidationError(field, "channels must be a list of channel names")
    dependencies = structure.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise ValidationError(field, "dependencies must be a list")
    clean: list[Any] = []
    for entry in dependencies:
        if isinstance(entry, str | int | float) and str(entry).strip():
            clean.append(_check_line(field, str(entry)))
        elif isinstance(entry, dict) and set(entry) == {"pip"}:
            pip = entry["pip"] or []
            if not isinstance(pip, list) or not all(isinstance(line, str) for line in pip):
                raise ValidationError(field, "the pip section must be a list of requirements")
            clean.append({"pip": [_check_line(field, line) for line in pip]})
        else:
            raise ValidationError(
                field, f"{entry!r} is neither a conda package nor a pip section ({{pip: [...]}})"
            )
    return {**structure, "channels": list(channels), "dependencies": clean}


__all__ = ["CondaDependencies"]
