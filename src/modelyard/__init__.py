"""modelyard: self-hosted training runs, datastores and a model registry with the workflow of
the Azure Machine Learning v1 SDK. Change the imports of a v1 notebook and it runs here.

Example::

    from modelyard import Workspace, Experiment

    ws = Workspace.create("demo")
    exp = Experiment(ws, "first")
    with exp.start_logging() as run:
        run.log("accuracy", 0.93)
"""

try:  # noqa: SIM105 - TEMP while datastore.py is written
    from modelyard.datastore import Datastore
except ImportError:
    pass
from modelyard.errors import ModelyardError
from modelyard.experiment import Experiment
from modelyard.model import Model
from modelyard.run import Run
from modelyard.workspace import Workspace

__version__ = "0.1.0"

__all__ = [
    "Datastore",
    "Experiment",
    "Model",
    "ModelyardError",
    "Run",
    "Workspace",
    "__version__",
]
