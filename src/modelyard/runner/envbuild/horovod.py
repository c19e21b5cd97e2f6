"""Horovod: compiled once per environment, against the framework the environment holds.

Horovod has no wheels: pip builds it from source, against the TensorFlow or PyTorch already
installed (its build imports them to find their headers), with MPI from the system. So an
environment that asks for ``horovod`` is built in two installs: everything else first, then
Horovod with ``--no-build-isolation``, its build tools, and ``HOROVOD_WITH_MPI=1`` plus
``HOROVOD_WITH_<FRAMEWORK>=1`` / ``HOROVOD_WITHOUT_<OTHER>=1``, so a missing piece fails the
build instead of leaving Horovod without it. The environment is cached like any other: the
compile happens once per content hash.

Horovod 0.28.1 (its last release, 2023) builds here against TensorFlow 2.12 (tensorflow-cpu
2.12.1, with numpy < 1.24, which that TensorFlow needs) and OpenMPI 4.1: about 7 minutes on two
cores. It does not build against torch 2.13 (C++17 errors) and no older torch has a wheel in
the package sources here, so PyTorch with Horovod is refused, naming what builds.
:data:`HOROVOD_FRAMEWORKS` is that table; add a line when another pair is known to build.

Example::

    horovod_build(["horovod==0.28.1", "tensorflow-cpu==2.12.*"], None, None)
    # HorovodBuild(framework='tensorflow', ...)
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from modelyard.errors import ValidationError

HOROVOD_VERSION = "0.28.1"
# framework -> the releases of it that Horovod HOROVOD_VERSION builds against here.
HOROVOD_FRAMEWORKS: dict[str, tuple[str, ...]] = {"tensorflow": ("2.12",), "pytorch": ()}
# What the framework of each release needs beside it for the build (TensorFlow 2.12 was built
# against numpy 1.23's C API).
_COMPANIONS = {("tensorflow", "2.12"): ("numpy<1.24",)}
# Horovod's build requirements (its setup.py's setup_requires and what it imports), installed
# into the environment because the build sees the environment, not an isolated one.
BUILD_TOOLS = ("setuptools", "wheel", "packaging", "cmake", "cffi>=1.4", "cloudpickle", "psutil")
_DISTRIBUTIONS = {
    "tensorflow": "tensorflow",
    "tensorflow-cpu": "tensorflow",
    "torch": "pytorch",
}


@dataclass(frozen=True)
class HorovodBuild:
    """How to build Horovod in one environment."""

    framework: str
    requirements: tuple[str, ...]  # the horovod lines, built last
    companions: tuple[str, ...]

    def variables(self) -> dict[str, str]:
        """The build's HOROVOD_* settings."""
        others = {"tensorflow": "PYTORCH", "pytorch": "TENSORFLOW"}
        return {
            "HOROVOD_WITH_MPI": "1",
            "HOROVOD_CPU_OPERATIONS": "MPI",
            f"HOROVOD_WITH_{self.framework.upper()}": "1",
            f"HOROVOD_WITHOUT_{others[self.framework]}": "1",
            "HOROVOD_WITHOUT_MXNET": "1",
            "HOROVOD_WITHOUT_GLOO": "1",  # the MPI launcher starts the ranks
        }


def _name(line: str) -> str | None:
    try:
        return canonicalize_name(Requirement(line).name)
    except InvalidRequirement:
        return None


def _releases_that_build() -> str:
    pairs = [
        f"{'TensorFlow' if framework == 'tensorflow' else 'PyTorch'} {release}"
        for framework, releases in HOROVOD_FRAMEWORKS.items()
        for release in releases
    ]
    return ", ".join(pairs)


def _refuse(what: str) -> ValidationError:
    return ValidationError(
        "pip_packages",
        f"horovod: {what}. Horovod {HOROVOD_VERSION} builds here with "
        f"{_releases_that_build()} only: use TensorFlow(framework_version='2.12', "
        "pip_packages=['horovod']), or an Environment with tensorflow-cpu==2.12.* and horovod",
    )


def _release(line: str) -> str | None:
    """The X.Y a requirement line pins (``==2.12.*``, ``==2.12.1``), or None."""
    specifier = str(Requirement(line).specifier)
    if not specifier.startswith("=="):
        return None
    return ".".join(specifier[2:].rstrip(".*").split(".")[:2])


def horovod_build(
    requirements: list[str], framework: str | None, framework_version: str | None
) -> HorovodBuild | None:
    """The Horovod build an environment's requirements ask for (None when they do not name
    horovod); ValidationError naming the releases that build when the framework is not one.

    ``framework`` and ``framework_version`` are the estimator's (``TensorFlow(...)``), when
    the environment comes from one; otherwise the framework is found among the requirements.
    """
    lines = [line for line in requirements if _name(line) == "horovod"]
    if not lines:
        return None
    found: dict[str, str | None] = {}
    if framework is not None:
        found[framework] = (
            ".".join(framework_version.split(".")[:2]) if framework_version is not None else None
        )
    for line in requirements:
        name = _name(line)
        if name in _DISTRIBUTIONS:
            found.setdefault(_DISTRIBUTIONS[name], _release(line))
    if not found:
        raise _refuse("it needs TensorFlow or PyTorch in the same environment, and none is")
    if len(found) > 1:
        raise _refuse("the environment holds both TensorFlow and PyTorch")
    chosen, release = next(iter(found.items()))
    builds = HOROVOD_FRAMEWORKS.get(chosen, ())
    if release is None or release not in builds:
        label = "TensorFlow" if chosen == "tensorflow" else "PyTorch"
        asked = release or "an unpinned version"
        raise _refuse(f"it does not build against {label} {asked} here")
    return HorovodBuild(chosen, tuple(lines), _COMPANIONS.get((chosen, release), ()))


__all__ = ["BUILD_TOOLS", "HOROVOD_FRAMEWORKS", "HorovodBuild", "horovod_build"]
