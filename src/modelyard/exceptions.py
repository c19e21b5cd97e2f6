"""v1's ``azureml.exceptions``: its names, each the modelyard error it means.

v1 code catches these around calls whose modelyard form raises an error of the
:mod:`modelyard.errors` tree; each name here is that error (an alias, not a new class), so
``except ModelNotFoundException`` catches what ``Model(ws, "missing")`` raises here:

=============================  ===============================  =================================
v1 name                        modelyard error                  raised by
=============================  ===============================  =================================
AzureMLException               ModelyardError                   everything (the root)
UserErrorException             UserError                        any call made wrongly
ComputeTargetException         ComputeTargetException           ``ComputeTarget(ws, name)``
WebserviceException            WebserviceException              ``Webservice(ws, name)``, deploying
ModelNotFoundException         NotFoundError                    ``Model(ws, name)``
ModelPathNotFoundException     ValidationError                  ``Model.register(model_path=)``
ProjectSystemException         NotFoundError                    ``Workspace.get``, a missing name
WorkspaceException             NotFoundError                    ``Workspace.get``, a missing name
DiscoveryUrlNotFoundException  ConfigError                      ``Workspace.from_config``
RunConfigurationException      ValidationError                  a bad run configuration
TrainingException              ValidationError                  a bad estimator argument
ExperimentExecutionException   RunFailedError                   ``run.wait_for_completion()``
ActivityFailedException        RunFailedError                   ``run.wait_for_completion()``
AuthenticationException        PermissionDeniedError            a call outside the caller's run
SnapshotException              SnapshotTooLargeError            ``exp.submit``, a folder too big
=============================  ===============================  =================================

An alias catches a little more than v1's class did (``except ModelNotFoundException`` also
catches a missing experiment), never less.

Example::

    from modelyard.exceptions import ModelNotFoundException

    try:
        model = Model(ws, "mnist")
    except ModelNotFoundException:
        model = Model.register(ws, model_path="outputs/model", model_name="mnist")
"""

from __future__ import annotations

from modelyard.backend.snapshot import SnapshotTooLargeError
from modelyard.errors import (
    ComputeTargetException,
    ConfigError,
    ModelyardError,
    NotFoundError,
    PermissionDeniedError,
    RunFailedError,
    UserError,
    ValidationError,
    WebserviceException,
)

AzureMLException = ModelyardError
UserErrorException = UserError
ModelNotFoundException = NotFoundError
ModelPathNotFoundException = ValidationError
ProjectSystemException = NotFoundError
WorkspaceException = NotFoundError
DiscoveryUrlNotFoundException = ConfigError
RunConfigurationException = ValidationError
TrainingException = ValidationError
ExperimentExecutionException = RunFailedError
ActivityFailedException = RunFailedError
AuthenticationException = PermissionDeniedError
SnapshotException = SnapshotTooLargeError

__all__ = [
    "ActivityFailedException",
    "AuthenticationException",
    "AzureMLException",
    "ComputeTargetException",
    "DiscoveryUrlNotFoundException",
    "ExperimentExecutionException",
    "ModelNotFoundException",
    "ModelPathNotFoundException",
    "ProjectSystemException",
    "RunConfigurationException",
    "SnapshotException",
    "TrainingException",
    "UserErrorException",
    "WebserviceException",
    "WorkspaceException",
]
