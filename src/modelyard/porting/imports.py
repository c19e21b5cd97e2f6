"""The v1 modules notebooks import, and the modelyard module each one becomes.

The rule is mechanical: ``azureml.core`` is ``modelyard``, ``azureml.core.X`` is
``modelyard.X``, and any other ``azureml.X`` is ``modelyard.X``. ``V1_MODULES`` lists the
modules the documented table (``docs/v1-mapping.md``) covers.

Example::

    modelyard_module("azureml.core")                 # 'modelyard'
    modelyard_module("azureml.core.compute")         # 'modelyard.compute'
    modelyard_module("azureml.train.dnn")            # 'modelyard.train.dnn'
    modelyard_module("numpy")                        # None: not v1
"""

from __future__ import annotations

V1_ROOT = "azureml"
V1_CORE = "azureml.core"
ROOT = "modelyard"

V1_MODULES = (
    "azureml.core",
    "azureml.core.workspace",
    "azureml.core.experiment",
    "azureml.core.run",
    "azureml.core.model",
    "azureml.core.datastore",
    "azureml.core.dataset",
    "azureml.core.environment",
    "azureml.core.conda_dependencies",
    "azureml.core.runconfig",
    "azureml.core.compute",
    "azureml.core.compute_target",
    "azureml.core.script_run_config",
    "azureml.core.authentication",
    "azureml.train.estimator",
    "azureml.train.dnn",
    "azureml.data",
    "azureml.data.data_reference",
    "azureml.data.file_dataset",
    "azureml.data.tabular_dataset",
    "azureml.data.dataset_factory",
    "azureml.data.datapath",
    "azureml.exceptions",
    "azureml.telemetry",
    "azureml.train.hyperdrive",
    "azureml.train.hyperdrive.runconfig",
    "azureml.train.hyperdrive.sampling",
    "azureml.train.hyperdrive.policy",
    "azureml.train.hyperdrive.parameter_expressions",
    "azureml.train.hyperdrive.run",
    "azureml.widgets",
    "azureml.tensorboard",
    "azureml.core.webservice",
    "azureml.core.webservice.webservice",
    "azureml.core.webservice.local",
    "azureml.core.webservice.aci",
    "azureml.core.webservice.aks",
    "azureml.contrib.services.aml_request",
    "azureml.contrib.services.aml_response",
)


def is_v1(module: str) -> bool:
    """Whether ``module`` is ``azureml`` or below it."""
    return module == V1_ROOT or module.startswith(V1_ROOT + ".")


def modelyard_module(module: str) -> str | None:
    """The modelyard module that v1's ``module`` becomes; None when it is not a v1 module."""
    if module == V1_CORE or module.startswith(V1_CORE + "."):
        return ROOT + module[len(V1_CORE) :]
    if is_v1(module):
        return ROOT + module[len(V1_ROOT) :]
    return None


__all__ = ["V1_MODULES", "is_v1", "modelyard_module"]
