"""Compute targets: where runs execute.

``local`` (processes on this machine) always exists. Clusters come with the Ray cluster work;
until then asking for any other name raises :class:`ComputeTargetException`, as v1 does for a
target that does not exist, so the v1 pattern works unchanged::

    try:
        target = ComputeTarget(workspace=ws, name="cpucluster")
    except ComputeTargetException:
        target = ComputeTarget(workspace=ws, name="local")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.compute.base import Compute
from modelyard.compute.local import LocalCompute, LocalFromScript
from modelyard.errors import ComputeTargetException
from modelyard.names import check_name
from modelyard.runner.local_compute import LOCAL

if TYPE_CHECKING:
    from modelyard.workspace import Workspace


def compute_for(workspace: Workspace, name: str) -> Compute:
    """The client side of the compute target ``name`` (ComputeTargetException when the
    workspace has none of that name)."""
    return ComputeTarget(workspace, name)._compute


class ComputeTarget:
    """A named place to run: ``ComputeTarget(ws, "local")``."""

    type = "local"

    def __init__(self, workspace: Workspace, name: str) -> None:
        check_name("name", name)
        if name != LOCAL:
            raise ComputeTargetException(
                f"compute target {name!r} does not exist in workspace {workspace.name!r}; "
                f"'{LOCAL}' (this machine) is available"
            )
        self.workspace = workspace
        self.name = name
        in_script = workspace._script_run_id is not None
        self._compute: Compute = (LocalFromScript if in_script else LocalCompute)(
            workspace.location, workspace.name
        )

    @property
    def max_concurrent_runs(self) -> int:
        """How many runs execute at once here (MODELYARD_LOCAL_MAX_RUNS, default: cores);
        the rest wait in Queued, first in, first out."""
        return self._compute.max_concurrent_runs()

    @staticmethod
    def list(workspace: Workspace) -> dict[str, ComputeTarget]:
        """Every compute target of the workspace, by name."""
        return {LOCAL: ComputeTarget(workspace, LOCAL)}

    def get_status(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "state": "Succeeded"}

    def __repr__(self) -> str:
        return f"ComputeTarget(workspace={self.workspace.name!r}, name={self.name!r})"


__all__ = ["Compute", "ComputeTarget", "ComputeTargetException", "compute_for"]
