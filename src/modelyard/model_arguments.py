"""v1's arguments of ``Model.register`` and ``run.register_model`` beyond the files and tags.

Each is honoured where it means something here, and kept with the model version as a property
of the reserved ``modelyard.`` prefix (``Model.properties`` leaves those out):

- ``model_framework`` and ``model_framework_version``: recorded, read back as
  ``model.model_framework`` / ``model_framework_version`` and in ``serialize()``;
  ``Model.Framework`` holds v1's names (any other name is taken too, as v1 took it).
- ``child_paths``: the files or folders inside the ``model_path`` folder to register (the
  others are left out).
- ``datasets``: v1's list of ``(scenario, dataset)`` pairs; each dataset is recorded by its
  name (or id), read back by ``serialize()["datasets"]``.
- ``sample_input_dataset``, ``sample_output_dataset``, ``resource_configuration``: they
  describe a deployment, which modelyard does not make yet; recorded, with one warning.

Any other keyword is refused with a ValidationError naming it (never a bare TypeError).

Example::

    properties = v1_properties("Model.register", model_framework=Framework.SCIKITLEARN,
                               model_framework_version="1.5")
    # {'modelyard.framework': 'ScikitLearn', 'modelyard.framework_version': '1.5'}
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from modelyard.errors import ValidationError
from modelyard.names import MAX_NAME_LENGTH, check_tags, clean_relpath

RESERVED_PREFIX = "modelyard."
FRAMEWORK_PROPERTY = "modelyard.framework"
FRAMEWORK_VERSION_PROPERTY = "modelyard.framework_version"
CREATED_BY_PROPERTY = "modelyard.created_by"
DATASETS_PROPERTY = "modelyard.datasets"
DEPLOYMENT_PROPERTY = "modelyard.deployment_arguments"


class Framework:
    """v1's names of model frameworks (``Model.Framework.TENSORFLOW``...)."""

    CUSTOM = "Custom"
    TFKERAS = "TfKeras"
    KERAS = "Keras"
    MULTI = "Multi"
    ONNX = "Onnx"
    PYTORCH = "PyTorch"
    SCIKITLEARN = "ScikitLearn"
    TENSORFLOW = "TensorFlow"


def _text(field: str, value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_LENGTH:
        raise ValidationError(
            field, f"expected a name of 1 to {MAX_NAME_LENGTH} characters, got {value!r}"
        )
    if not value.isprintable():
        raise ValidationError(field, f"{value!r} holds control or format characters")
    return value


def _dataset_name(field: str, dataset: object) -> str:
    """How a dataset is recorded: its name, else its id."""
    for attribute in ("name", "id"):
        value = getattr(dataset, attribute, None)
        if isinstance(value, str) and value:
            return value
    raise ValidationError(
        field,
        f"{type(dataset).__name__} has no name or id to record; register the dataset first "
        "(dataset.register(ws, name))",
    )


def _datasets(datasets: object) -> dict[str, list[str]]:
    """v1's ``[(scenario, dataset), ...]`` as scenario -> dataset names."""
    if not isinstance(datasets, list | tuple):
        raise ValidationError("datasets", "give a list of (scenario, dataset) pairs")
    found: dict[str, list[str]] = {}
    for pair in datasets:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValidationError("datasets", f"{pair!r} is not a (scenario, dataset) pair")
        scenario = _text("datasets", pair[0])
        found.setdefault(scenario, []).append(_dataset_name("datasets", pair[1]))
    return found


def _describe(value: object) -> Any:
    """A deployment argument as JSON data: a dataset by name, a v1 object by its
    ``serialize()``, anything else by its text."""
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict | list):
        try:
            json.dumps(value)
            return value
        except (TypeError, ValueError):
            return repr(value)
    name = getattr(value, "name", None) or getattr(value, "id", None)
    if isinstance(name, str):
        return {"dataset": name}
    serialize = getattr(value, "serialize", None)
    if callable(serialize):
        data = serialize()
        try:
            json.dumps(data)
            return data
        except (TypeError, ValueError):
            pass
    return repr(value)


def v1_properties(
    caller: str,
    *,
    model_framework: str | None = None,
    model_framework_version: str | None = None,
    datasets: Any = None,
    sample_input_dataset: Any = None,
    sample_output_dataset: Any = None,
    resource_configuration: Any = None,
    **unknown: Any,
) -> dict[str, str]:
    """The reserved properties that record v1's arguments (see the module docstring)."""
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationError(name, f"{caller}() has no such argument (v1's or modelyard's)")
    properties: dict[str, str] = {}
    if model_framework is not None:
        properties[FRAMEWORK_PROPERTY] = _text("model_framework", model_framework)
    if model_framework_version is not None:
        if model_framework is None:
            raise ValidationError(
                "model_framework_version", "give model_framework too: the version is of it"
            )
        properties[FRAMEWORK_VERSION_PROPERTY] = _text(
            "model_framework_version", str(model_framework_version)
        )
    if datasets is not None:
        properties[DATASETS_PROPERTY] = json.dumps(_datasets(datasets), sort_keys=True)
    given = {
        name: value
        for name, value in (
            ("sample_input_dataset", sample_input_dataset),
            ("sample_output_dataset", sample_output_dataset),
            ("resource_configuration", resource_configuration),
        )
        if value is not None
    }
    if given:
        warnings.warn(
            f"{caller}: {', '.join(given)} describe a deployment, which modelyard does not "
            "make yet; recorded with the model version and otherwise ignored",
            # The user's call: their line -> register -> Model._v1_arguments -> here.
            stacklevel=4,
        )
        properties[DEPLOYMENT_PROPERTY] = json.dumps(
            {name: _describe(value) for name, value in given.items()}, sort_keys=True
        )
    return properties


def user_properties(properties: object) -> dict[str, str]:
    """The properties a user gives; the ``modelyard.`` keys are modelyard's own."""
    clean = check_tags("properties", properties)
    for key in clean:
        if key.startswith(RESERVED_PREFIX):
            raise ValidationError(
                "properties", f"{key!r}: keys starting with {RESERVED_PREFIX!r} are modelyard's"
            )
    return clean


def only_children(
    found: list[tuple[str, str]], child_paths: object, source: Path
) -> list[tuple[str, str]]:
    """The files of a model folder that v1's ``child_paths`` choose (each a file or a
    folder inside it); a child path that names nothing there is a ValidationError."""
    if isinstance(child_paths, str) or not isinstance(child_paths, list | tuple):
        raise ValidationError("child_paths", "give a list of paths inside the model_path folder")
    wanted = [clean_relpath("child_paths", path) for path in child_paths]
    chosen: list[tuple[str, str]] = []
    for child in wanted:
        matches = [
            (path, relpath)
            for path, relpath in found
            if relpath == child or relpath.startswith(child + "/")
        ]
        if not matches:
            raise ValidationError("child_paths", f"{child!r} is not a file or folder in {source}")
        chosen.extend(match for match in matches if match not in chosen)
    return chosen


def recorded(properties: dict[str, str], key: str) -> Any:
    """A JSON property of :func:`v1_properties` read back (None when absent or unreadable)."""
    text = properties.get(key)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


__all__ = ["Framework", "v1_properties"]
