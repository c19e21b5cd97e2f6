"""v1's ``azureml.core.compute_target``: where v1 code imports ``ComputeTargetException``.

Example::

    from modelyard.compute_target import ComputeTargetException
"""

from modelyard.compute import ComputeTarget
from modelyard.errors import ComputeTargetException

__all__ = ["ComputeTarget", "ComputeTargetException"]
