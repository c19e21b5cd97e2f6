"""The public API is what these lists say; a change to them is a change users notice."""

from __future__ import annotations

import importlib

import modelyard


def test_top_level_exports() -> None:
    assert modelyard.__all__ == [
        "Datastore",
        "Environment",
        "Experiment",
        "Model",
        "ModelyardError",
        "Run",
        "ScriptRunConfig",
        "Workspace",
        "__version__",
    ]
    for name in modelyard.__all__:
        assert getattr(modelyard, name) is not None


def test_walkthrough_imports() -> None:
    """The imports of DESIGN.md's walkthrough, with only `azureml` changed."""
    compute = importlib.import_module("modelyard.compute")
    train = importlib.import_module("modelyard.train")
    for name in ("ComputeTarget", "ComputeTargetException"):
        assert hasattr(compute, name)
    for name in ("Estimator", "TensorFlow", "PyTorch"):
        assert hasattr(train, name)


def test_errors_have_one_root() -> None:
    errors = importlib.import_module("modelyard.errors")
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.ModelyardError)


def test_every_export_is_importable_lazily() -> None:
    assert set(modelyard._EXPORTS) | {"__version__"} == set(modelyard.__all__)
