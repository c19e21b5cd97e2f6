"""The public API is what these lists say; a change to them is a change users notice."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys

import pytest

import modelyard
from modelyard import Model, Workspace


def test_top_level_exports() -> None:
    assert modelyard.__all__ == [
        "VERSION",
        "ComputeTarget",
        "Dataset",
        "Datastore",
        "Environment",
        "Experiment",
        "Model",
        "ModelyardError",
        "Run",
        "RunConfiguration",
        "ScriptRunConfig",
        "Webservice",
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
    assert set(modelyard._EXPORTS) | {"__version__", "VERSION"} == set(modelyard.__all__)


def test_version_is_the_installed_packages() -> None:
    """v1 notebooks print ``azureml.core.VERSION`` first thing; it is the package version."""
    assert modelyard.VERSION == modelyard.__version__ == importlib.metadata.version("modelyard")


def test_v1_exceptions_catch_what_modelyard_raises(workspace: Workspace) -> None:
    """Each v1 exception name catches the error modelyard raises where v1 raised it."""
    from modelyard.compute import ComputeTarget
    from modelyard.exceptions import (
        AzureMLException,
        ComputeTargetException,
        ModelNotFoundException,
        ModelPathNotFoundException,
        ProjectSystemException,
        UserErrorException,
    )

    with pytest.raises(ModelNotFoundException):
        Model(workspace, "missing")
    with pytest.raises(ComputeTargetException):
        ComputeTarget(workspace=workspace, name="cpucluster")
    with pytest.raises(ModelPathNotFoundException):
        Model.register(workspace, model_path="no/such/path", model_name="m")
    with pytest.raises(ProjectSystemException):
        Workspace.get("missing", folder=workspace.folder.parent / "missing")
    for error in (ModelNotFoundException, ComputeTargetException, ModelPathNotFoundException):
        assert issubclass(error, UserErrorException) and issubclass(error, AzureMLException)
    assert importlib.import_module("modelyard.compute_target").ComputeTargetException is (
        ComputeTargetException
    )


def test_set_diagnostics_collection_says_once_that_nothing_is_collected(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = (
        "from modelyard.telemetry import set_diagnostics_collection\n"
        "set_diagnostics_collection(send_diagnostics=True)\n"
        "set_diagnostics_collection(send_diagnostics=False, reset=True)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.count("modelyard collects no diagnostics") == 1


def test_v1_authentication_is_accepted_and_keeps_no_secret(workspace: Workspace) -> None:
    from modelyard.authentication import (
        AzureCliAuthentication,
        InteractiveLoginAuthentication,
        MsiAuthentication,
        ServicePrincipalAuthentication,
        TokenAuthentication,
    )

    secret = "s3cr3t-password-value"
    auths = [
        InteractiveLoginAuthentication(force=True, tenant_id="t"),
        ServicePrincipalAuthentication("t", "client-id", secret),
        MsiAuthentication(identity_config={"client_id": "c"}),
        AzureCliAuthentication(),
        TokenAuthentication(lambda audience: secret),
    ]
    for auth in auths:
        assert secret not in repr(auth) and secret not in repr(vars(auth))
        ws = Workspace.get(workspace.name, folder=workspace.folder, auth=auth)
        assert ws.name == workspace.name
    assert secret not in b"".join(
        p.read_bytes() for p in workspace.folder.rglob("*") if p.is_file()
    ).decode(errors="replace")
