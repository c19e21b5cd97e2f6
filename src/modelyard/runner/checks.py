"""What the Preparing phase checks on this machine.

Whether modelyard's own Python already has a run's packages (at versions their requirements
allow) and framework: then the run uses it and no environment is built (``envbuild``); and
whether the machine has the GPU that ``use_gpu=True`` needs.

Example::

    missing_packages(["numpy>=1.20", "no-such-package"])     # ['no-such-package (not installed)']
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess

from packaging.requirements import InvalidRequirement, Requirement

from modelyard.runner.job import FRAMEWORK_DISTRIBUTIONS


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing_packages(requirements: list[str]) -> list[str]:
    """Each requirement that the current Python does not satisfy, with the reason."""
    missing = []
    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            missing.append(f"{text} (not a valid requirement)")
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = _installed_version(requirement.name)
        if version is None:
            missing.append(f"{text} (not installed)")
        elif requirement.specifier and not requirement.specifier.contains(
            version, prereleases=True
        ):
            missing.append(f"{text} (version {version} is installed)")
    return missing


def missing_framework(framework: str, version: str | None) -> str | None:
    """Why the framework cannot be used here, or None when it can."""
    for distribution in FRAMEWORK_DISTRIBUTIONS[framework]:
        installed = _installed_version(distribution)
        if installed is None:
            continue
        if version is None or installed == version or installed.startswith(version + "."):
            return None
        return f"{distribution} {version} (version {installed} is installed)"
    wanted = FRAMEWORK_DISTRIBUTIONS[framework][0] + (f"=={version}" if version else "")
    return f"{wanted} (not installed)"


def visible_gpus() -> list[str]:
    """The indices of the GPUs on this machine (NVIDIA, as nvidia-smi lists them)."""
    configured = os.environ.get("CUDA_VISIBLE_DEVICES")
    if configured is not None:
        return [part for part in configured.split(",") if part.strip() and part != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in listing.splitlines() if line.strip()]
