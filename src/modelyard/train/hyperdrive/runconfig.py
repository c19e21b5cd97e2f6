"""v1's ``azureml.train.hyperdrive.runconfig``: where v1 notebooks import ``HyperDriveConfig``
from (it lives in :mod:`.config`).

Example::

    from modelyard.train.hyperdrive.runconfig import HyperDriveConfig
"""

from __future__ import annotations

from modelyard.train.hyperdrive.config import HyperDriveConfig

__all__ = ["HyperDriveConfig"]
