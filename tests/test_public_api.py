"""The public API is what these lists say; a change to them is a change users notice."""

from __future__ import annotations

import importlib

import modelyard


def test_top_level_exports() -> None:
    assert modelyard.__all__ == [
        "Dataset",
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


def test_v1_data_imports() -> None:
    """``azureml.data`` and ``azureml.core.dataset`` with only ``azureml`` changed."""
    data = importlib.import_module("modelyard.data")
    for name in data.__all__:
        assert getattr(data, name) is not None
    for module, name in (
        ("modelyard.data.file_dataset", "FileDataset"),
        ("modelyard.data.tabular_dataset", "TabularDataset"),
        ("modelyard.data.dataset_factory", "FileDatasetFactory"),
        ("modelyard.data.dataset_factory", "TabularDatasetFactory"),
        ("modelyard.data.datapath", "DataPath"),
        ("modelyard.data.data_reference", "DataReference"),
        ("modelyard.data.dataset_consumption_config", "DatasetConsumptionConfig"),
    ):
        assert getattr(importlib.import_module(module), name) is getattr(data, name)
    assert importlib.import_module("modelyard.dataset").Dataset is modelyard.Dataset
    assert modelyard.Dataset.File is data.FileDatasetFactory


def test_errors_have_one_root() -> None:
    errors = importlib.import_module("modelyard.errors")
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.ModelyardError)


def test_every_export_is_importable_lazily() -> None:
    assert set(modelyard._EXPORTS) | {"__version__"} == set(modelyard.__all__)
