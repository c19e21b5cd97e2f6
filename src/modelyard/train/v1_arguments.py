"""The v1 estimator arguments, and what modelyard does with each.

v1's ``Estimator``, ``TensorFlow`` and ``PyTorch`` take some forty keyword arguments. Each is in
one of three groups here:

- **honoured** (:data:`HONOURED`): it does here what it did in v1 (the script, its arguments,
  packages, nodes and distribution, variables, data, time limit, framework version);
- **recorded** (:data:`RECORDED`, with v1's default): it has no meaning on this machine (docker,
  VM sizes and priorities, image registries); a value other than v1's default is kept in the
  run's properties as ``modelyard.v1.<name>``, and the estimator warns once, naming them all;
- **refused** (:data:`REFUSED`): leaving it out would change what the script computes, so
  giving it raises :class:`~modelyard.errors.ValidationError` saying what to do instead.

Any other keyword is a ValidationError naming it and the closest v1 argument, never a bare
``TypeError``.

Example::

    est = TensorFlow("./src", entry_script="train.py", use_docker=True, vm_size="STANDARD_NC6",
                     shm_size="2g")
    # UserWarning: TensorFlow: vm_size='STANDARD_NC6', shm_size='2g' have no meaning here ...
    TensorFlow("./src", entry_script="train.py", scrpt_params={})
    # ValidationError: scrpt_params: not an argument of TensorFlow; did you mean script_params?
"""

from __future__ import annotations

import difflib
import sys
import warnings
from typing import Any

from modelyard.errors import ValidationError
from modelyard.runner.job import RECORDED_PROPERTY_PREFIX

HONOURED = frozenset(
    {
        "source_directory",
        "compute_target",
        "entry_script",
        "script_params",
        "arguments",  # modelyard's own: v1's ScriptRunConfig form, for estimators too
        "node_count",
        "process_count_per_node",
        "distributed_backend",
        "distributed_training",
        "use_gpu",
        "conda_packages",
        "pip_packages",
        "conda_dependencies_file",
        "conda_dependencies_file_path",
        "pip_requirements_file",
        "pip_requirements_file_path",
        "environment_variables",
        "environment_definition",
        "inputs",
        "max_run_duration_seconds",
        "framework_version",
        "worker_count",
        "parameter_server_count",
    }
)

# v1's default of each recorded argument: only other values are recorded and warned about.
RECORDED: dict[str, Any] = {
    "vm_size": None,
    "vm_priority": None,
    "use_docker": True,
    "custom_docker_base_image": None,
    "custom_docker_image": None,
    "image_registry_details": None,
    "user_managed": False,
    "source_directory_data_store": None,
    "shm_size": None,
    "_enable_optimized_mode": False,
    "_disable_validation": True,
    "_show_lint_warnings": False,
    "_show_package_warnings": False,
}

REFUSED: dict[str, str] = {
    "resume_from": (
        "resuming from a previous run's checkpoint (a DataPath) is not supported; pass the "
        "checkpoint's folder as an input instead (inputs=[ds.path('run1/outputs')"
        ".as_download()], or a script argument) and load it in the script"
    ),
}


def check_unknown(owner: str, unknown: dict[str, Any], known: list[str]) -> None:
    """Raise ValidationError for the first keyword of ``unknown``, naming the closest of
    ``known`` (the v1 arguments of ``owner``)."""
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else f"; its arguments are {', '.join(known)}"
        raise ValidationError(name, f"not an argument of {owner}{hint}")


def check_refused(given: dict[str, Any]) -> None:
    """Raise ValidationError for a refused argument given a value (not None)."""
    for name, why in REFUSED.items():
        if given.get(name) is not None:
            raise ValidationError(name, why)


def recorded_values(given: dict[str, Any]) -> dict[str, str]:
    """The recorded arguments of ``given`` whose value is not v1's default, as text."""
    found: dict[str, str] = {}
    for name, default in RECORDED.items():
        value = given.get(name, default)
        if value != default:
            found[name] = value if isinstance(value, str) else repr(value)
    return found


def warn_recorded(owner: str, recorded: dict[str, str]) -> None:
    """One warning naming every recorded argument (none: no warning)."""
    if not recorded:
        return
    named = ", ".join(f"{name}={value}" for name, value in recorded.items())
    warnings.warn(
        f"{owner}: {named} have no meaning here (runs use a built Python environment on the "
        "compute target, not docker images or VM settings); they are recorded in the run's "
        f"properties as {RECORDED_PROPERTY_PREFIX}<name>",
        UserWarning,
        stacklevel=_user_stacklevel(),
    )


def _user_stacklevel() -> int:
    """The stack level of the first caller outside modelyard, so the warning points at the
    user's line (an estimator's constructor is one to three modelyard frames deep)."""
    level, frame = 2, sys._getframe(2)  # 1: warn_recorded, 2: its caller
    while frame.f_back is not None and str(frame.f_globals.get("__name__", "")).startswith(
        "modelyard."
    ):
        frame = frame.f_back
        level += 1
    return level


__all__ = ["HONOURED", "RECORDED", "REFUSED"]
