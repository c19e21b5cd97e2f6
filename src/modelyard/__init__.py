"""modelyard: self-hosted training runs, datastores and a model registry with the workflow of
the Azure Machine Learning v1 SDK. Change the imports of a v1 notebook and it runs here.

Example::

    from modelyard import Workspace, Experiment

    ws = Workspace.create("demo")
    exp = Experiment(ws, "first")
    with exp.start_logging() as run:
        run.log("accuracy", 0.93)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.compute import ComputeTarget
    from modelyard.dataset import Dataset
    from modelyard.datastore import Datastore
    from modelyard.environment import Environment
    from modelyard.errors import ModelyardError
    from modelyard.experiment import Experiment
    from modelyard.model import Model
    from modelyard.run import Run
    from modelyard.runconfig import RunConfiguration
    from modelyard.script_run_config import ScriptRunConfig
    from modelyard.webservice import Webservice
    from modelyard.workspace import Workspace

__version__ = "0.1.0"
# v1 notebooks start with ``print("SDK version:", azureml.core.VERSION)``: one value, two names.
VERSION = __version__

# Where each public name lives. They are imported on first use, so a training script's
# `from modelyard import Run` loads the run and its channel, not the database and storage
# layers a notebook needs.
_EXPORTS = {
    "ComputeTarget": "modelyard.compute",
    "Dataset": "modelyard.dataset",
    "Datastore": "modelyard.datastore",
    "Environment": "modelyard.environment",
    "Experiment": "modelyard.experiment",
    "Model": "modelyard.model",
    "ModelyardError": "modelyard.errors",
    "Run": "modelyard.run",
    "RunConfiguration": "modelyard.runconfig",
    "ScriptRunConfig": "modelyard.script_run_config",
    "Webservice": "modelyard.webservice",
    "Workspace": "modelyard.workspace",
}

__all__ = [
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelyard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
