"""Conda packages on a machine without conda: the PyPI package of the same name.

A v1 conda specification (``environment.yml``) lists conda packages such as ``numpy=1.26`` or
``conda-forge::scikit-learn>=1.5``. Where micromamba, mamba or conda is on the PATH, the build
installs them with it. Where none is, each one is translated to the pip requirement of the same
name and version (:func:`conda_to_pip`), the build checks that the package index the installer
uses has it (a dry-run install, no download), writes the mapping to the build log and installs
it with the other pip packages. Packages the index does not have fail the build, named.

Conda's version syntax, translated:

- ``name=1.26`` (conda's fuzzy match, any 1.26.x) -> ``name==1.26.*``;
- ``name==1.26.4``, ``name>=1.2``, ``name>=1.2,<2`` -> the same PEP 440 specifier;
- ``name 1.26`` (space-separated, as ``conda list`` writes it) -> ``name==1.26.*``;
- a build string (``name=1.26=py311_0``) and a channel (``conda-forge::name``) are dropped.

Example::

    conda_to_pip("numpy=1.26")                      # 'numpy==1.26.*'
    conda_to_pip("conda-forge::scikit-learn>=1.5")  # 'scikit-learn>=1.5'
"""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement, Requirement

from modelyard.errors import ValidationError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_OPERATOR = re.compile(r"(==|>=|<=|!=|~=|>|<|=)")


def _specifier(version: str) -> str:
    """One conda version constraint (``1.26``, ``>=1.2``, ``1.26.*``) as PEP 440."""
    match = _OPERATOR.match(version)
    if match is None or match.group(1) == "=":
        bare = version[1:] if match is not None else version
        if not bare:
            return ""
        # Conda's "=1.26" (or a bare version) is a prefix match: 1.26, 1.26.4, ...
        return f"=={bare}" if bare.endswith(".*") else f"=={bare}.*"
    return version


def conda_to_pip(spec: str) -> str:
    """The pip requirement of a conda package spec; ValidationError naming ``conda_packages``
    when it cannot be read."""
    text = spec.strip().split("::", 1)[-1].strip()
    name_match = _NAME.match(text)
    if name_match is None:
        raise ValidationError("conda_packages", f"{spec!r} is not a conda package spec")
    name = name_match.group(0)
    rest = text[len(name) :].strip()
    if rest and not _OPERATOR.match(rest):
        rest = rest.split()[0]  # "numpy 1.26 py311_0": the version, then the build string
    elif rest.startswith("=") and not rest.startswith("=="):
        rest = "=" + rest[1:].split("=")[0]  # "=1.26=py311_0": the build string dropped
    constraints = [part.strip() for part in rest.replace(" ", "").split(",") if part.strip()]
    requirement = name + ",".join(_specifier(part) for part in constraints)
    try:
        Requirement(requirement)
    except InvalidRequirement as error:
        raise ValidationError(
            "conda_packages",
            f"{spec!r}: its pip equivalent {requirement!r} is not a valid requirement ({error})",
        ) from None
    return requirement


__all__ = ["conda_to_pip"]
