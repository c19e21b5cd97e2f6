"""Compute targets: where runs execute.

``local`` (processes on this machine) always exists; ``AmlCompute`` clusters run on Ray
(``compute/ray/``). The v1 pattern works unchanged::

    try:
        target = ComputeTarget(workspace=ws, name="cpucluster")
    except ComputeTargetException:
        config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=4)
        target = ComputeTarget.create(ws, "cpucluster", config)
        target.wait_for_completion(show_output=True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.compute.aml_compute import AmlCompute, AmlComputeStatus
from modelyard.compute.base import Compute
from modelyard.compute.ray.provisioning import AmlComputeProvisioningConfiguration
from modelyard.compute.target import ComputeTarget
from modelyard.errors import ComputeTargetException

if TYPE_CHECKING:
    from modelyard.workspace import Workspace


def compute_for(workspace: Workspace, name: str) -> Compute:
    """The client side of the compute target ``name`` (ComputeTargetException when the
    workspace has none of that name)."""
    return ComputeTarget(workspace, name)._compute


__all__ = [
    "AmlCompute",
    "AmlComputeProvisioningConfiguration",
    "AmlComputeStatus",
    "Compute",
    "ComputeTarget",
    "ComputeTargetException",
    "compute_for",
]
