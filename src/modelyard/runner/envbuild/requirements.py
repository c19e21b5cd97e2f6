"""Requirement lines: what users write, what frameworks add, and what the client needs.

A run's packages are PEP 508 requirement strings (``numpy>=1.26``, ``six==1.17.0``,
``pkg @ https://...``). Requirement files may also hold the installer options that pip and uv
both read in a requirements file (``--index-url``, ``--extra-index-url``, ``--find-links``,
``--no-index``) and ``-r other.txt`` includes, which are inlined when the file is read.

Frameworks: ``TensorFlow`` without a ``framework_version`` means TensorFlow
:data:`DEFAULT_FRAMEWORK_VERSIONS` ``["tensorflow"]`` (2.21, with tf-keras 2.21, which
``tf.distribute`` needs with Keras); TensorFlow 1.x, and 2.x releases with no wheel for this
Python, are refused naming what exists (:data:`TENSORFLOW_RELEASES`). ``PyTorch`` means torch
2.14.1 with the torchvision of the same release (0.29.1) and numpy. Why that pair: torchvision
is built against one torch build, and the only torchvision wheels the package sources hold are
built for the CUDA torch of PyPI; with the CPU build of torch 2.13.0 (``2.13.0+cpu``)
torchvision 0.28.0 imports but its operators do not load (``torchvision::nms does not
exist``). torch 2.14.1 and torchvision 0.29.1 from PyPI are built for each other and run on
a machine without a GPU (``torchvision.ops.nms`` works); they bring the CUDA libraries (about
5 GB installed, shared between environments through uv's cache).

Example::

    clean_requirements("pip_packages", ["six==1.17.0"])     # ['six==1.17.0']
    framework_requirements("tensorflow", None, use_gpu=False)
    # ['tensorflow-cpu==2.21.*', 'tf-keras==2.21.*'] on Linux x86-64
    framework_requirements("pytorch", None, use_gpu=False)
    # ['torch==2.14.1', 'torchvision==0.29.1', 'numpy>=2']
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import re
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from modelyard.errors import ValidationError

# The versions a framework estimator installs when its framework_version is None. TensorFlow
# is the tensorflow-cpu family modelyard is tested with; torch 2.14.1 is the newest release
# whose torchvision works with it here (see the module docstring; DESIGN.md, section 7).
DEFAULT_FRAMEWORK_VERSIONS = {"tensorflow": "2.21", "pytorch": "2.14.1"}

# TensorFlow releases with wheels for CPython 3.11 on PyPI (2.12 was the first; 1.x never had
# one: it stopped at Python 3.7). A static table: asking the index at submit would cost a
# network round trip for an answer that changes once a release. Add a line per release.
TENSORFLOW_RELEASES = tuple(f"2.{minor}" for minor in range(12, 22))
# torchvision's minor version is torch's plus 15 for every torch 2.x (torch 2.0 came with
# torchvision 0.15, torch 2.14 with 0.29): https://github.com/pytorch/vision#installation
_TORCHVISION_OFFSET = 15

# Installer options a requirement list may carry (pip and uv read them in requirement files).
_OPTIONS_WITH_VALUE = {"--index-url", "-i", "--extra-index-url", "--find-links", "-f"}
_FLAG_OPTIONS = {"--no-index", "--pre"}
_OPTION = re.compile(r"(-[A-Za-z]|--[a-z][a-z-]*)(?:[= ](.*))?")
_VERSION = re.compile(r"\d+(\.\d+){0,2}")
# The client's own requirements that a run does not need: uv builds environments, it is not
# imported by a script.
_BUILD_ONLY_REQUIREMENTS = {"uv"}


def is_option(line: str) -> bool:
    """Whether a requirement line is an installer option rather than a requirement."""
    return line.startswith("-")


def _split_option(line: str) -> tuple[str, str]:
    """``--find-links=/x`` or ``-f /x`` as (name, value)."""
    match = _OPTION.fullmatch(line)
    if match is None:
        return line, ""
    return match.group(1), (match.group(2) or "").strip()


def _clean_option(field: str, line: str) -> str:
    name, value = _split_option(line)
    if name in _FLAG_OPTIONS and not value:
        return name
    if name in _OPTIONS_WITH_VALUE and value and len(value.split()) == 1:
        return f"{name} {value}"
    raise ValidationError(
        field,
        f"{line!r} is not supported in a run's requirements: use requirement strings "
        "(name, version specifiers, name @ URL) and, if needed, --index-url, "
        "--extra-index-url, --find-links or --no-index",
    )


def clean_requirements(field: str, lines: Iterable[object]) -> list[str]:
    """The requirement lines with surrounding blanks removed, each checked.

    Raises ValidationError naming ``field`` for a line that is not a PEP 508 requirement or an
    allowed option.
    """
    if isinstance(lines, str | bytes):
        raise ValidationError(field, "must be a list of requirement strings, not one string")
    cleaned = []
    for line in lines:
        if not isinstance(line, str) or not line.strip():
            raise ValidationError(field, f"{line!r} is not a requirement string")
        text = line.strip()
        if "\x00" in text or "\n" in text:
            raise ValidationError(field, f"{text!r}: one requirement per string, no NUL")
        if is_option(text):
            cleaned.append(_clean_option(field, text))
            continue
        try:
            Requirement(text)
        except InvalidRequirement as error:
            raise ValidationError(field, f"{text!r} is not a valid requirement: {error}") from None
        cleaned.append(text)
    return cleaned


def read_requirements_file(
    field: str, path: str | os.PathLike[str], _seen: frozenset[Path] = frozenset()
) -> list[str]:
    """The requirement lines of a pip requirements file: comments and blanks left out,
    continuation lines joined, ``-r`` includes inlined (relative to the including file).

    Example::

        read_requirements_file("pip_requirements_file", "requirements.txt")
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValidationError(field, f"{file} is not a file")
    resolved = file.resolve()
    if resolved in _seen:
        raise ValidationError(field, f"{file} includes itself (through -r)")
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ValidationError(field, f"{file} cannot be read: {error}") from None
    lines: list[str] = []
    for raw in text.replace("\\\n", "").splitlines():
        line = raw.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        name, value = _split_option(line) if is_option(line) else (line, "")
        if name in ("-r", "--requirement"):
            lines += read_requirements_file(field, resolved.parent / value, _seen | {resolved})
        elif name in ("-c", "--constraint"):
            raise ValidationError(
                field,
                f"{line!r}: constraint files are not supported in a run's requirements; "
                "write the pins as requirements, or put the constraint in the machine's pip "
                "configuration (pip config set global.constraint FILE)",
            )
        elif name in ("-e", "--editable"):
            raise ValidationError(
                field,
                f"{line!r}: editable installs cannot be part of a cached environment; "
                "require the package by name, or put its source in the run's source_directory",
            )
        elif name in ("-f", "--find-links") and value and "://" not in value:
            # A folder next to the requirements file, wherever the environment is built.
            lines.append(f"--find-links {(resolved.parent / value).resolve()}")
        else:
            lines.append(line)
    return clean_requirements(field, lines)


def normalized(line: str) -> str:
    """One spelling per requirement (``Six >= 1.0`` and ``six>=1.0`` are the same)."""
    if is_option(line):
        return line
    requirement = Requirement(line)
    rest = str(requirement)[len(requirement.name) :]
    return canonicalize_name(requirement.name) + rest


def _check_tensorflow_version(version: str) -> None:
    release = ".".join(version.split(".")[:2])
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if version.split(".")[0] == "1":
        raise ValidationError(
            "framework_version",
            f"TensorFlow {version}: no TensorFlow 1.x exists for Python {python} (1.15, the "
            "last, was built for Python 3.7 at most). Run TF1 code on the default version "
            f"({DEFAULT_FRAMEWORK_VERSIONS['tensorflow']}) through its compatibility module: "
            "`import tensorflow.compat.v1 as tf; tf.disable_v2_behavior()`, and leave "
            "framework_version out",
        )
    if release not in TENSORFLOW_RELEASES:
        raise ValidationError(
            "framework_version",
            f"TensorFlow {version} has no release for Python {python}; the versions that "
            f"exist for it are {', '.join(TENSORFLOW_RELEASES)}",
        )


def check_framework_version(framework: str, version: str | None) -> str:
    """The version a framework estimator installs: ``version``, or the documented default.

    Raises ValidationError for a version that cannot be installed for this Python (TensorFlow
    1.x, or a 2.x before 2.12).

    Example::

        check_framework_version("tensorflow", "1.13")   # ValidationError: ... tf.compat.v1
    """
    if version is None:
        return DEFAULT_FRAMEWORK_VERSIONS[framework]
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise ValidationError(
            "framework_version", f"{version!r} is not a version like '2.21' or '2.14.1'"
        )
    if framework == "tensorflow":
        _check_tensorflow_version(version)
    elif framework == "pytorch":
        torchvision_version(version)  # refuses what has no wheel here
    return version


def torchvision_version(torch_version: str) -> str:
    """The torchvision release built for a torch release (``"2.14.1"`` -> ``"0.29.1"``,
    ``"2.14"`` -> ``"0.29"``)."""
    major, minor, *rest = torch_version.split(".")
    if major != "2":
        raise ValidationError(
            "framework_version",
            f"PyTorch {torch_version}: only torch 2.x has wheels for this Python; use "
            f"{DEFAULT_FRAMEWORK_VERSIONS['pytorch']} (the default) or another 2.x release",
        )
    return ".".join(["0", str(int(minor) + _TORCHVISION_OFFSET), *rest])


def _pin(version: str) -> str:
    # "2.21" means any 2.21.x; "2.13.0" means exactly that release (local labels such as
    # +cpu match too, PEP 440).
    return f"=={version}.*" if version.count(".") < 2 else f"=={version}"


def framework_requirements(framework: str, version: str | None, use_gpu: bool) -> list[str]:
    """What a framework estimator adds to a run's packages."""
    version = check_framework_version(framework, version)
    if framework == "tensorflow":
        # tensorflow-cpu is the same TensorFlow without the CUDA libraries; it exists for
        # Linux x86-64 only.
        linux_x86 = sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")
        distribution = "tensorflow" if use_gpu or not linux_x86 else "tensorflow-cpu"
        keras = ".".join(version.split(".")[:2])
        if int(keras.split(".")[1]) < 16:
            # Before 2.16 TensorFlow came with Keras 2 inside; tf-keras exists from 2.16 on,
            # for the Keras 3 that TensorFlow brings since.
            return [f"{distribution}{_pin(version)}"]
        return [f"{distribution}{_pin(version)}", f"tf-keras{_pin(keras)}"]
    if framework == "pytorch":
        # numpy too: torch.from_numpy and torchvision's transforms need it, and torch does
        # not require it.
        vision = torchvision_version(version)
        return [f"torch{_pin(version)}", f"torchvision{_pin(vision)}", "numpy>=2"]
    raise ValidationError("framework", f"{framework!r} is not a known framework")


@functools.cache
def client_requirements() -> tuple[str, ...]:
    """What ``import modelyard`` needs inside a built environment: modelyard's own runtime
    requirements (no extras), less the build tools."""
    try:
        declared = importlib.metadata.requires("modelyard") or []
    except importlib.metadata.PackageNotFoundError:
        # Running from a source tree that was never installed: read its pyproject.toml.
        pyproject = Path(__file__).resolve().parents[4] / "pyproject.toml"
        declared = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    found = []
    for text in declared:
        requirement = Requirement(text)
        if requirement.marker is not None and "extra" in str(requirement.marker):
            continue
        if canonicalize_name(requirement.name) in _BUILD_ONLY_REQUIREMENTS:
            continue
        found.append(normalized(text))
    return tuple(found)


@functools.cache
def client_python_requirement() -> str:
    """The Python versions modelyard's client runs on (its Requires-Python)."""
    try:
        return importlib.metadata.metadata("modelyard")["Requires-Python"] or ""
    except importlib.metadata.PackageNotFoundError:
        return f">={sys.version_info[0]}.{sys.version_info[1]}"
