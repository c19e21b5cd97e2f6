"""What notebooks show of runs: the live ``RunDetails`` widget (v1's ``azureml.widgets``) and
the HTML of the SDK objects' ``_repr_html_`` (:mod:`modelyard.widgets.html`).

Example::

    from modelyard.widgets import RunDetails

    RunDetails(run).show()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.widgets.run_details import RunDetails

__all__ = ["RunDetails"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the SDK's _repr_html_ imports this package's html module, and a
    # training script's `from modelyard import Run` must not load anywidget (the `widgets`
    # extra) nor the Jupyter machinery behind it.
    if name == "RunDetails":
        return importlib.import_module("modelyard.widgets.run_details").RunDetails
    raise AttributeError(f"module 'modelyard.widgets' has no attribute {name!r}")
