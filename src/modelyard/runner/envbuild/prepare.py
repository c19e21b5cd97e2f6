"""Preparing: from a run's JobSpec to the Python interpreter its script starts with.

1. A user-managed interpreter (``Environment.from_existing_python``) is used as it is.
2. When the run asks for nothing that modelyard's own Python lacks (its packages and framework
   are installed at versions that fit, no other ``python_version``, no conda packages), the
   script runs with modelyard's Python, as it always did: nothing to build or cache.
3. Otherwise the environment's **content hash** is computed: the requirements (the run's,
   its framework's and the client's, normalised and sorted), the interpreter (implementation,
   version, path), the platform, the installer, the package sources (pip configuration, with
   constraint files by content), conda packages and ``inherit_base_packages``. These are what
   was *asked*, not what a resolver picked: a cache hit then costs a hash and a file read,
   with no index query, and an environment stays as built until pruned. Pin versions for
   exact environments.
4. With the key held shared (a lease), the cache is looked up; on a miss the build lock is
   taken (a run building the same key elsewhere makes this one wait, then find it built) and
   the environment is built.

The installer is uv, unless ``MODELYARD_ENV_INSTALLER=pip``.

Example::

    prepared = prepare_environment(spec, log=print, poll=lambda: None,
                                   on_process=lambda pgid: None)
    prepared.python          # '~/.cache/modelyard/envs/3f9c.../env/bin/python'
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from modelyard.errors import ValidationError
from modelyard.runner import checks
from modelyard.runner.envbuild.builder import ENV_FOLDER, Builder
from modelyard.runner.envbuild.cache import EnvironmentCache, Lease, cache_root
from modelyard.runner.envbuild.conda import conda_to_pip
from modelyard.runner.envbuild.errors import EnvironmentBuildError
from modelyard.runner.envbuild.horovod import HorovodBuild, horovod_build
from modelyard.runner.envbuild.interpreters import (
    Interpreter,
    current_interpreter,
    find_interpreter,
)
from modelyard.runner.envbuild.requirements import (
    check_framework_version,
    clean_requirements,
    client_python_requirement,
    client_requirements,
    framework_requirements,
    is_option,
    normalized,
)
from modelyard.runner.envbuild.sources import PackageSources, read_pip_configuration
from modelyard.runner.job import JobSpec

INSTALLER_ENV = "MODELYARD_ENV_INSTALLER"
INSTALLERS = ("uv", "pip")
CONDA_TOOLS = ("micromamba", "mamba", "conda")
_PYTHON_VERSION = re.compile(r"3(\.\d+){0,2}")


@functools.cache
def find_uv() -> str | None:
    """The uv binary: the one the ``uv`` package installed, else one on the PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def find_conda() -> str | None:
    """micromamba, mamba or conda, the first on the PATH."""
    for tool in CONDA_TOOLS:
        found = shutil.which(tool)
        if found is not None:
            return found
    return None


def check_python_version(field_name: str, value: object) -> str | None:
    """A ``python_version`` as users give it (``"3.12"``), checked; ValidationError naming
    ``field_name`` when it is not a version modelyard's client can run in."""
    if value is None:
        return None
    if not isinstance(value, str) or not _PYTHON_VERSION.fullmatch(value):
        raise ValidationError(field_name, f"{value!r} is not a Python version like '3.12'")
    try:
        supported = SpecifierSet(client_python_requirement())
    except InvalidSpecifier:
        supported = SpecifierSet()
    parts = value.split(".")
    # "3" or "3.12" stand for their newest release: check the last one they can be.
    probe = ".".join([*parts, *["999"] * (3 - len(parts))])
    if not supported.contains(probe, prereleases=True):
        raise ValidationError(
            field_name,
            f"{value}: modelyard's client, which a run's script imports, needs Python "
            f"{supported}; choose a version it supports",
        )
    return value


def check_submittable(spec: JobSpec) -> None:
    """What can be refused at submit, before a run is made: bad versions and requirements,
    conda specs that have no pip spelling on a machine with no conda. (The interpreter for
    ``python_version`` is looked for on the compute, in Preparing, and so is each conda
    package's PyPI twin: the compute's package index is the one that counts.)"""
    check_python_version("python_version", spec.python_version)
    if spec.framework is not None:
        check_framework_version(spec.framework, spec.framework_version)
    pip_packages = clean_requirements("pip_packages", spec.pip_packages)
    horovod_build(pip_packages, spec.framework, spec.framework_version)
    if spec.conda_packages and find_conda() is None:
        for package in spec.conda_packages:
            conda_to_pip(package)


@dataclass(frozen=True)
class BuildRequest:
    """An environment to build; its ``key`` is the content hash."""

    requirements: tuple[str, ...]
    client_requirements: tuple[str, ...]
    options: tuple[str, ...]
    interpreter: Interpreter
    installer: str
    sources: PackageSources
    uv: str | None
    conda_tool: str | None = None
    conda_packages: tuple[str, ...] = ()
    # Without a conda tool: (conda spec, the PyPI requirement of the same name) for each.
    conda_on_pypi: tuple[tuple[str, str], ...] = ()
    horovod: HorovodBuild | None = None
    inherit_base_packages: bool = False
    base_site_packages: tuple[str, ...] = ()
    client_package: str = field(default="")

    def content(self) -> dict[str, Any]:
        """What the key is the hash of."""
        import modelyard

        return {
            "format": 1,
            "platform": sysconfig.get_platform(),
            "python": [
                self.interpreter.implementation,
                self.interpreter.version,
                self.interpreter.path,
            ],
            "installer": self.installer,
            "requirements": list(self.requirements),
            "options": list(self.options),
            "client": [modelyard.__version__, self.client_package, *self.client_requirements],
            "conda": [os.path.basename(self.conda_tool), *self.conda_packages]
            if self.conda_tool
            else None,
            # Only when used, so the keys of every other environment stay as they were.
            **(
                {"conda_on_pypi": [list(pair) for pair in self.conda_on_pypi]}
                if self.conda_on_pypi
                else {}
            ),
            **({"horovod": self.horovod.variables()} if self.horovod is not None else {}),
            "inherit": list(self.base_site_packages) if self.inherit_base_packages else None,
            "sources": self.sources.fingerprint(),
        }

    @functools.cached_property
    def key(self) -> str:
        text = json.dumps(self.content(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Plan:
    """What Preparing does: use ``python`` as it is, or build ``request``."""

    python: str
    reason: str
    request: BuildRequest | None = None


def _installer() -> str:
    installer = os.environ.get(INSTALLER_ENV, "uv").strip().lower()
    if installer not in INSTALLERS:
        raise EnvironmentBuildError(
            f"{INSTALLER_ENV}={installer!r}: use 'uv' (the default) or 'pip'",
            field=INSTALLER_ENV,
        )
    return installer


def _unsatisfied(spec: JobSpec, requirements: list[str], version: str | None) -> list[str]:
    """What modelyard's own Python lacks for this run."""
    missing = checks.missing_packages([line for line in requirements if not is_option(line)])
    if spec.framework is not None:
        problem = checks.missing_framework(spec.framework, version)
        if problem is not None:
            missing.insert(0, problem)
    return missing


def plan(spec: JobSpec, cache: EnvironmentCache) -> Plan:
    """Decide how the run gets its interpreter; see the module docstring."""
    try:
        user = clean_requirements("pip_packages", spec.pip_packages)
        check_python_version("python_version", spec.python_version)
        framework: list[str] = []
        version = None
        if spec.framework is not None:
            version = check_framework_version(spec.framework, spec.framework_version)
            framework = framework_requirements(spec.framework, version, spec.use_gpu)
        horovod = horovod_build(user + framework, spec.framework, spec.framework_version)
    except ValidationError as error:
        raise EnvironmentBuildError(str(error), field=error.field) from None
    if spec.python_path is not None:
        if not os.path.isfile(spec.python_path) or not os.access(spec.python_path, os.X_OK):
            raise EnvironmentBuildError(
                f"python_path {spec.python_path!r}: there is no such interpreter on this "
                "machine; give the path of a Python executable here",
                field="python_path",
            )
        return Plan(spec.python_path, f"the user-managed Python {spec.python_path}, as it is")
    current = current_interpreter()
    interpreter = (
        find_interpreter(spec.python_version, cache.root) if spec.python_version else current
    )
    conda_tool = find_conda() if spec.conda_packages else None
    conda_on_pypi: tuple[tuple[str, str], ...] = ()
    if spec.conda_packages and conda_tool is None:
        try:
            conda_on_pypi = tuple(
                (package, conda_to_pip(package)) for package in sorted(set(spec.conda_packages))
            )
        except ValidationError as error:
            raise EnvironmentBuildError(str(error), field=error.field) from None
    on_current = interpreter.path == current.path
    if spec.inherit_base_packages and not on_current:
        raise EnvironmentBuildError(
            f"inherit_base_packages=True needs modelyard's own Python ({current.version}), "
            f"but python_version asks for {spec.python_version}",
            field="inherit_base_packages",
        )
    # What a framework brings beyond itself (tf-keras, torchvision, numpy) must be there too;
    # the framework's own distribution is checked by version (checks.missing_framework).
    extra = framework[1:]
    if on_current and not spec.conda_packages and not _unsatisfied(spec, user + extra, version):
        return Plan(
            sys.executable,
            f"modelyard's own Python {current.version} ({sys.executable}): it has every "
            "package this run asks for",
        )
    import modelyard

    installer = _installer()
    uv = find_uv()
    if installer == "uv" and uv is None:
        installer = "pip"  # the setting's other choice; its venv comes from python -m venv
    requirements = sorted({normalized(line) for line in user + framework if not is_option(line)})
    request = BuildRequest(
        requirements=tuple(requirements),
        client_requirements=() if spec.inherit_base_packages else client_requirements(),
        options=tuple(line for line in user if is_option(line)),
        interpreter=interpreter,
        installer=installer,
        sources=read_pip_configuration(),
        uv=uv,
        conda_tool=conda_tool,
        conda_packages=tuple(sorted(set(spec.conda_packages))) if conda_tool else (),
        conda_on_pypi=conda_on_pypi,
        horovod=horovod,
        inherit_base_packages=spec.inherit_base_packages,
        base_site_packages=tuple(site.getsitepackages()) if spec.inherit_base_packages else (),
        client_package=str(Path(modelyard.__file__).resolve().parent),
    )
    return Plan("", f"environment {request.key}", request)


def _imports_modelyard(python: str) -> bool:
    check = "import importlib.util, sys; sys.exit(importlib.util.find_spec('modelyard') is None)"
    try:
        return (
            subprocess.run([python, "-c", check], capture_output=True, timeout=60).returncode == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


@dataclass
class Preparation:
    """The outcome of Preparing: the interpreter, and what the script's process needs."""

    python: str
    summary: str
    variables: dict[str, str] = field(default_factory=dict)
    lease: Lease | None = None
    built: bool = False


def _describe(request: BuildRequest) -> str:
    interpreter = request.interpreter
    lines = [
        f"Python {interpreter.version} ({interpreter.path}), installer {request.installer}",
        f"requirements: {', '.join(request.requirements) or 'none'}"
        + (
            f" (+ {len(request.client_requirements)} for the modelyard client)"
            if request.client_requirements
            else ""
        ),
        f"package sources: {request.sources.describe()}",
    ]
    if request.conda_packages:
        lines.append(f"conda packages ({request.conda_tool}): {', '.join(request.conda_packages)}")
    if request.conda_on_pypi:
        lines.append(
            "conda packages, with no conda here, from PyPI: "
            + ", ".join(f"{conda} -> {pip}" for conda, pip in request.conda_on_pypi)
        )
    if request.inherit_base_packages:
        lines.append(f"inherits the packages of {', '.join(request.base_site_packages)}")
    if request.horovod is not None:
        settings = " ".join(f"{k}={v}" for k, v in request.horovod.variables().items())
        lines.append(f"Horovod compiled against {request.horovod.framework} ({settings})")
    return "".join(f"  {line}\n" for line in lines)


def prepare_environment(
    spec: JobSpec,
    *,
    log: Callable[[str], None],
    poll: Callable[[], None],
    on_process: Callable[[int | None], None],
    run_id: str | None = None,
    cache: EnvironmentCache | None = None,
) -> Preparation:
    """Give the run its interpreter, building its environment when needed.

    ``log`` receives the build log; ``poll`` runs often while waiting or building and may
    raise to stop (a cancel request); ``on_process`` is told each build step's process group.
    Raises EnvironmentBuildError with the reason (and the installer's output) on failure.
    """
    cache = cache or EnvironmentCache(cache_root())
    chosen = plan(spec, cache)
    if chosen.request is None:
        log(f"Using {chosen.reason}.\n")
        if spec.python_path is not None and not _imports_modelyard(spec.python_path):
            log(
                f"Note: {spec.python_path} cannot import modelyard, so Run.get_context() will "
                "fail there; install modelyard into it, or let modelyard build the environment "
                "(Environment(name, pip_packages=...)).\n"
            )
        return Preparation(chosen.python, chosen.reason)
    request = chosen.request
    key = request.key
    lease = cache.lease(key)
    try:
        found = cache.find(key)
        built = False
        if found is None:
            with cache.build_lock(
                key,
                on_wait=lambda: log(
                    f"Environment {key} is being built by another run; waiting for it.\n"
                ),
                poll=poll,
            ):
                found = cache.find(key)
                if found is None:
                    leftovers = cache.discard_leftovers(key)
                    log(f"Building environment {key} into {cache.root}:\n{_describe(request)}")
                    if leftovers:
                        log(f"  (removed {leftovers} unfinished earlier build(s) of it)\n")
                    started = time.monotonic()
                    try:
                        found = Builder(cache, log, poll, on_process).build(request, run_id)
                    except EnvironmentBuildError as error:
                        log(f"The build failed: {error}\n")
                        raise
                    except OSError as error:
                        log(f"The build failed: {error}\n")
                        raise EnvironmentBuildError(
                            f"building the environment failed: {error}"
                        ) from None
                    built = True
                    log(
                        f"Built environment {key} in {time.monotonic() - started:.1f} s "
                        f"({found.size_bytes / 1e6:.1f} MB, {len(found.record['packages'])} "
                        "packages).\n"
                    )
                else:
                    log(f"Environment {key} was built by another run meanwhile; no install.\n")
        else:
            built_at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(found.created_at))
            log(f"Environment {key} is in the cache (built {built_at}); no install.\n")
        cache.touch(key)
    except BaseException:
        lease.close()
        raise
    environment = found.path / ENV_FOLDER
    path = spec.environment_variables.get("PATH", os.environ.get("PATH", ""))
    variables = {"PATH": f"{environment / 'bin'}{os.pathsep}{path}"}
    variables["CONDA_PREFIX" if request.conda_tool else "VIRTUAL_ENV"] = str(environment)
    return Preparation(
        found.python,
        f"environment {key} (Python {request.interpreter.version}, {found.path})",
        variables,
        lease,
        built,
    )


__all__ = [
    "BuildRequest",
    "Plan",
    "Preparation",
    "check_python_version",
    "check_submittable",
    "plan",
    "prepare_environment",
]
